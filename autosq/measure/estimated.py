"""Latency on a device estimated from timings here: latency kind ``estimated``.

estimate = (model's median here) x (reference's published device latency / reference's median
here), both timed here with the same settings. The reference timing is cached per machine, ONNX
Runtime version and thread count. It assumes that the device and this machine rank and space
SqueezeNet variants alike, which holds roughly for CPUs running the same kinds of convolution
kernels and not at all for GPUs or NPUs.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from autosq._io import cache_dir, read_json_cache, write_json
from autosq.measure.host import machine_key
from autosq.measure.local import LocalTimer
from autosq.measure.protocol import LatencyResult, TimingProtocol

if TYPE_CHECKING:
    from autosq.measure.profiles import Calibration

# Estimates time candidates here on one thread: on shared 2-core machines it is the setting
# whose medians repeat between processes (see device_profiles/host.toml).
ESTIMATE_HOST_THREADS = 1


class EstimatedTimer:
    """Latency on a device estimated from timings here (latency kind ``estimated``).

    estimate = (model's median here) x (reference's published device latency / reference's
    median here), both timed here with the same settings. The reference timing is cached per
    machine, ONNX Runtime version and thread count. It assumes that the device and this machine
    rank and space SqueezeNet variants alike, which holds roughly for CPUs running the same
    kinds of convolution kernels and not at all for GPUs or NPUs.
    """

    kind = "estimated"

    def __init__(self, calibration: Calibration, host: LocalTimer | None = None) -> None:
        self.calibration = calibration
        self.host = host or LocalTimer(threads=ESTIMATE_HOST_THREADS)
        self.threads = self.host.threads
        # The reference is timed with the host timer's own protocol, whatever protocol the
        # candidates are timed with later (with_protocol).
        self.reference_host = self.host
        self._reference_ms: float | None = None

    def _cache_key(self) -> str:
        import onnxruntime as ort

        c = self.calibration
        return (
            f"{machine_key()}|ort {ort.__version__}|threads {self.host.threads}|"
            f"{self.host.graph_optimization}|{c.reference}@{c.reference_input_size}"
        )

    def reference_ms(self) -> float:
        """The reference model's median here (from the cache, or timed now and cached)."""
        if self._reference_ms is not None:
            return self._reference_ms
        path = cache_dir() / "reference_timings.json"
        key = self._cache_key()
        cache = read_json_cache(path)
        if key in cache:
            self._reference_ms = float(cache[key]["latency_ms"])
            return self._reference_ms
        from autosq.arch.model import build
        from autosq.arch.presets import preset
        from autosq.measure.onnx import export_bytes

        c = self.calibration
        config = preset(c.reference, input_size=c.reference_input_size)
        model = export_bytes(build(config, seed=0), c.reference_input_size)
        result = self.reference_host.time(model)
        if result.contended:  # once more: every estimate of this run is scaled by it
            result = min(result, self.reference_host.time(model), key=lambda r: r.latency_ms)
        self._reference_ms = result.latency_ms
        if result.contended:  # a busy machine's figure serves this run, not the next ones
            return self._reference_ms
        cache = read_json_cache(path)  # again: another process may have added entries meanwhile
        cache[key] = {
            "latency_ms": result.latency_ms,
            "runs": result.runs,
            "block_gap": result.block_gap,
            "timed_at": time.time(),
        }
        with contextlib.suppress(OSError):  # the cache only saves time (a full disk, say)
            write_json(path, cache)
        return self._reference_ms

    def with_protocol(self, protocol: TimingProtocol) -> EstimatedTimer:
        """This timer, timing candidates here with another protocol (the reference keeps
        its own)."""
        other = copy.copy(self)
        other.host = self.host.with_protocol(protocol)
        return other

    @property
    def scale(self) -> float:
        """Device milliseconds per millisecond here."""
        return self.calibration.device_ms / self.reference_ms()

    def time(self, onnx_bytes: bytes, budget_ms: float | None = None) -> LatencyResult:
        scale = self.scale
        host_budget = None if budget_ms is None else budget_ms / scale
        return self._scaled(self.host.time(onnx_bytes, host_budget), budget_ms)

    def time_many(self, models: Sequence[bytes]) -> list[LatencyResult]:
        """Interleaved timing here (see :meth:`LocalTimer.time_many`), each result scaled."""
        self.reference_ms()  # the reference first, outside the interleaved runs
        return [self._scaled(r, None) for r in self.host.time_many(models)]

    def _scaled(self, r: LatencyResult, budget_ms: float | None) -> LatencyResult:
        scale = self.scale
        c = self.calibration
        return replace(
            r,
            latency_ms=r.latency_ms * scale,
            p90_ms=r.p90_ms * scale,
            min_ms=r.min_ms * scale,
            mean_ms=r.mean_ms * scale,
            latency_kind=self.kind,
            over_budget=budget_ms is not None and r.latency_ms * scale > budget_ms,
            host_ms=r.latency_ms,
            scale=scale,
            protocol={
                **r.protocol,
                "calibration": {
                    "reference": c.reference,
                    "reference_input_size": c.reference_input_size,
                    "device_ms": c.device_ms,
                    "device_threads": c.device_threads,
                    "reference_host_ms": self.reference_ms(),
                    "source": c.source,
                },
            },
        )

