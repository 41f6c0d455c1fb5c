"""The timing protocol: ONNX Runtime latency that is repeatable and says where it came from.

One protocol for every model:

1. a session with the profile's settings (threads, provider, graph optimisation), created and
   run with this process pinned to as many CPUs as it has threads;
2. warm-up runs (a count and a minimum time);
3. timed blocks of runs (each at least a count and a time) until the two quietest blocks'
   medians agree within ``target_gap``, or ``max_seconds`` is reached; and an early stop once
   even the fastest run is clearly over the latency budget;
4. the median of the quietest block (the reported latency), p90, min, mean, the number of runs
   and their spread, with the protocol and the versions.

Timings never overlap between processes on one machine: warm-up and runs hold an exclusive file
lock in autosq's cache folder, since two timings at once corrupt each other.

Latency kinds: ``measured`` (timed here), ``estimated`` (timed here, scaled to a device by a
calibration, see :class:`EstimatedTimer`) and ``device`` (timed on the device by an agent).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from autosq.errors import MeasurementError

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime as ort

    from autosq.profiles import Calibration, DeviceProfile

CACHE_ENV = "AUTOSQ_CACHE_DIR"
# Estimates time candidates here on one thread: on shared 2-core machines it is the setting
# whose medians repeat between processes (see device_profiles/host.toml).
ESTIMATE_HOST_THREADS = 1
_GRAPH_OPT = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


@dataclass(frozen=True)
class TimingProtocol:
    """How long to warm up, how to group runs into blocks, and when to stop.

    Shared machines have bursts of interference lasting 0.5-3 s that slow every run by 15-20%
    (measured while building autosq). Noise only ever adds time, so runs are grouped into
    blocks of at least ``block_seconds``; the reported median is the median of the quietest
    block, and timing stops once the two quietest blocks agree within ``target_gap``.
    """

    warmup_runs: int = 5
    warmup_seconds: float = 0.2
    block_runs: int = 5
    block_seconds: float = 0.15
    min_blocks: int = 4
    target_gap: float = 0.03
    min_seconds: float = 0.0
    max_seconds: float = 3.0
    over_budget_factor: float = 1.1
    over_budget_min_runs: int = 3

    @classmethod
    def careful(cls) -> TimingProtocol:
        """For a single model a user asked about (``autosq measure``): a window of at least
        2 s, so that interference bursts of a second or so cannot fill it."""
        return cls(min_seconds=2.0, max_seconds=6.0)


@dataclass
class LatencyResult:
    """One model's latency. ``latency_ms`` is the median; the kind says how it was obtained."""

    latency_ms: float
    p90_ms: float
    min_ms: float
    mean_ms: float
    runs: int
    blocks: int
    block_gap: float
    spread: float
    latency_kind: str
    threads: int
    stop: str
    over_budget: bool
    seconds: float
    run_seconds: float
    protocol: dict[str, Any] = field(default_factory=dict)
    host_ms: float | None = None
    scale: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- statistics -----------------------------------------------------------------------------------
def quantile(sorted_ms: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of already sorted values."""
    pos = (len(sorted_ms) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (pos - lo)


def _median(values: Sequence[float]) -> float:
    return quantile(sorted(values), 0.5)


def block_gap(blocks: Sequence[Sequence[float]]) -> float:
    """How far the second-quietest block's median is above the quietest one's (relative)."""
    if len(blocks) < 2:
        return math.inf
    first, second = sorted(_median(b) for b in blocks)[:2]
    return second / first - 1 if first > 0 else math.inf


def summarize(blocks: Sequence[Sequence[float]]) -> dict[str, Any]:
    """The reported figures of timed blocks of runs (milliseconds).

    latency_ms is the median of the quietest block; p90, min, mean and spread ((p90 - p10) /
    median) are over every run, so the noise stays visible.
    """
    runs = sorted(x for b in blocks for x in b)
    med = min(_median(b) for b in blocks)
    return {
        "latency_ms": med,
        "p90_ms": quantile(runs, 0.9),
        "min_ms": runs[0],
        "mean_ms": sum(runs) / len(runs),
        "runs": len(runs),
        "blocks": len(blocks),
        "block_gap": block_gap(blocks),
        "spread": (quantile(runs, 0.9) - quantile(runs, 0.1)) / med if med > 0 else math.inf,
    }


# -- machine state ---------------------------------------------------------------------------
def cache_dir() -> Path:
    """autosq's cache folder (``AUTOSQ_CACHE_DIR``, else ``~/.cache/autosq``), created."""
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "autosq")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def timing_lock() -> Iterator[None]:
    """Exclusive across processes on this machine (an flock on the cache folder's lock file)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
        yield
        return
    with open(cache_dir() / "timing.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def pinned_cpus(threads: int) -> Iterator[list[int]]:
    """Pin this thread (and the ONNX Runtime threads it creates) to ``threads`` CPUs."""
    if not hasattr(os, "sched_setaffinity"):  # pragma: no cover - macOS, Windows
        yield []
        return
    before = os.sched_getaffinity(0)
    cpus = sorted(before)[-threads:] if threads < len(before) else sorted(before)
    os.sched_setaffinity(0, cpus)
    try:
        yield cpus
    finally:
        os.sched_setaffinity(0, before)


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo or platform reports it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key() -> str:
    """What identifies this machine for cached timings: host name, CPU model, CPU count."""
    return f"{platform.node()}|{cpu_model()}|{os.cpu_count()}"


# -- timers ------------------------------------------------------------------------------------
class Timer(Protocol):
    """Anything that times an ONNX model: here, scaled from here, or on a device."""

    kind: str
    threads: int

    def time(self, onnx_bytes: bytes, budget_ms: float | None = None) -> LatencyResult: ...

    def time_many(self, models: Sequence[bytes]) -> list[LatencyResult]: ...


class LocalTimer:
    """Times ONNX models with ONNX Runtime in this process (latency kind ``measured``)."""

    kind = "measured"

    def __init__(
        self,
        threads: int = 1,
        provider: str = "CPUExecutionProvider",
        graph_optimization: str = "all",
        protocol: TimingProtocol | None = None,
    ) -> None:
        import onnxruntime as ort

        if provider not in ort.get_available_providers():
            raise MeasurementError(
                f"execution provider {provider} is not available here; available: "
                f"{', '.join(ort.get_available_providers())}"
            )
        self.threads = threads
        self.provider = provider
        self.graph_optimization = graph_optimization
        self.protocol = protocol or TimingProtocol()

    def session(self, onnx_bytes: bytes) -> ort.InferenceSession:
        """An inference session with this timer's settings (create it while pinned)."""
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, _GRAPH_OPT[self.graph_optimization]
        )
        so.log_severity_level = 3
        try:
            return ort.InferenceSession(onnx_bytes, so, providers=[self.provider])
        except Exception as exc:  # ORT raises its own exception types for bad models
            raise MeasurementError(f"ONNX Runtime cannot load the model: {exc}") from exc

    def protocol_dict(self, cpus: list[int]) -> dict[str, Any]:
        import onnxruntime as ort

        return {
            **asdict(self.protocol),
            "statistic": "median",
            "threads": self.threads,
            "provider": self.provider,
            "graph_optimization": self.graph_optimization,
            "cpus": cpus,
            "onnxruntime": ort.__version__,
            "cpu": cpu_model(),
            "machine": platform.machine(),
        }

    @staticmethod
    def feed(session: ort.InferenceSession) -> dict[str, np.ndarray]:
        """A fixed random input for the session's first input (batch and sizes as exported)."""
        import numpy as np

        inp = session.get_inputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        dtype = np.float32 if "float" in inp.type else np.int64
        data = np.random.default_rng(0).standard_normal(shape).astype(dtype)
        return {inp.name: data}

    def _warm_up(self, session: ort.InferenceSession, feed: dict[str, np.ndarray]) -> None:
        start = time.perf_counter()
        n = 0
        while (
            n < self.protocol.warmup_runs
            or time.perf_counter() - start < self.protocol.warmup_seconds
        ):
            session.run(None, feed)
            n += 1

    def _block(
        self,
        session: ort.InferenceSession,
        feed: dict[str, np.ndarray],
        budget_ms: float | None = None,
    ) -> tuple[list[float], bool]:
        """One block of timed runs; True when even its fastest run is clearly over budget."""
        proto = self.protocol
        run = session.run
        block: list[float] = []
        block_end = time.perf_counter() + proto.block_seconds
        while len(block) < proto.block_runs or time.perf_counter() < block_end:
            t0 = time.perf_counter()
            run(None, feed)
            block.append((time.perf_counter() - t0) * 1e3)
            if (
                budget_ms is not None
                and len(block) >= proto.over_budget_min_runs
                and min(block) > budget_ms * proto.over_budget_factor
            ):
                return block, True
        return block, False

    def _settled(self, blocks: list[list[float]], t_start: float) -> bool:
        proto = self.protocol
        return (
            len(blocks) >= proto.min_blocks
            and block_gap(blocks) <= proto.target_gap
            and time.perf_counter() - t_start >= proto.min_seconds
        )

    def _runs(
        self, session: ort.InferenceSession, feed: dict[str, np.ndarray], budget_ms: float | None
    ) -> tuple[list[list[float]], str]:
        """Warm up, then timed blocks until the quietest two agree (or a cap, or over budget)."""
        self._warm_up(session, feed)
        blocks: list[list[float]] = []
        t_start = time.perf_counter()
        while True:
            block, over = self._block(session, feed, budget_ms)
            blocks.append(block)
            if over:
                return blocks, "over_budget"
            if self._settled(blocks, t_start):
                return blocks, "agreement"
            if time.perf_counter() > t_start + self.protocol.max_seconds:
                return blocks, "time_cap"

    def time(self, onnx_bytes: bytes, budget_ms: float | None = None) -> LatencyResult:
        """Time one model by the protocol; ``budget_ms`` allows the early stop."""
        t0 = time.perf_counter()
        with timing_lock(), pinned_cpus(self.threads) as cpus:
            session = self.session(onnx_bytes)
            feed = self.feed(session)
            try:
                blocks, stop = self._runs(session, feed, budget_ms)
            except Exception as exc:
                raise MeasurementError(f"ONNX Runtime failed running the model: {exc}") from exc
        return self._result(blocks, stop, budget_ms, time.perf_counter() - t0, cpus)

    def time_many(self, models: Sequence[bytes]) -> list[LatencyResult]:
        """Time several models together, interleaved block by block, so that drift and
        interference hit them alike (the search re-times its front this way)."""
        if not models:
            return []
        t0 = time.perf_counter()
        with timing_lock(), pinned_cpus(self.threads) as cpus:
            sessions = [self.session(m) for m in models]
            feeds = [self.feed(s) for s in sessions]
            pairs = list(zip(sessions, feeds, strict=True))
            blocks: list[list[list[float]]] = [[] for _ in models]
            try:
                for session, feed in pairs:
                    self._warm_up(session, feed)
                t_start = time.perf_counter()
                # Half as many rounds again as the agreement rule needs, and never less than
                # one model's own cap.
                p = self.protocol
                t_end = t_start + max(
                    p.max_seconds, 1.5 * p.min_blocks * p.block_seconds * len(models)
                )
                while True:
                    for i, (session, feed) in enumerate(pairs):
                        blocks[i].append(self._block(session, feed)[0])
                    if all(self._settled(b, t_start) for b in blocks):
                        stop = "agreement"
                        break
                    if time.perf_counter() > t_end:
                        stop = "time_cap"
                        break
            except Exception as exc:
                raise MeasurementError(f"ONNX Runtime failed running a model: {exc}") from exc
        each = (time.perf_counter() - t0) / len(models)
        return [self._result(b, stop, None, each, cpus) for b in blocks]

    def _result(
        self,
        blocks: list[list[float]],
        stop: str,
        budget_ms: float | None,
        seconds: float,
        cpus: list[int],
    ) -> LatencyResult:
        stats = summarize(blocks)
        return LatencyResult(
            **stats,
            latency_kind=self.kind,
            threads=self.threads,
            stop=stop,
            over_budget=budget_ms is not None and stats["latency_ms"] > budget_ms,
            seconds=seconds,
            run_seconds=sum(map(sum, blocks)) / 1e3,
            protocol=self.protocol_dict(cpus),
        )


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
        cache = _read_json(path)
        if key in cache:
            self._reference_ms = float(cache[key]["latency_ms"])
            return self._reference_ms
        from autosq.arch import preset
        from autosq.model import build
        from autosq.onnx_io import export_bytes

        c = self.calibration
        config = preset(c.reference, input_size=c.reference_input_size)
        result = self.host.time(export_bytes(build(config, seed=0), c.reference_input_size))
        self._reference_ms = result.latency_ms
        cache = _read_json(path)  # again: another process may have added entries meanwhile
        cache[key] = {
            "latency_ms": result.latency_ms,
            "runs": result.runs,
            "block_gap": result.block_gap,
            "timed_at": time.time(),
        }
        _write_json_atomic(path, cache)
        return self._reference_ms

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


def timer_for(profile: DeviceProfile, protocol: TimingProtocol | None = None) -> Timer:
    """The timer a profile asks for: measured here, estimated from here, or its agent."""
    if profile.latency_source == "measured":
        return LocalTimer(profile.threads, profile.provider, profile.graph_optimization, protocol)
    if profile.latency_source == "estimated":
        assert profile.calibration is not None
        return EstimatedTimer(
            profile.calibration,
            LocalTimer(
                ESTIMATE_HOST_THREADS, "CPUExecutionProvider", profile.graph_optimization, protocol
            ),
        )
    from autosq.agent_client import AgentTimer

    assert profile.agent_url is not None
    return AgentTimer(profile.agent_url, profile.threads, profile.graph_optimization, protocol)


# -- small JSON cache helpers ---------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a missing or unreadable cache is an empty one: it is rebuilt
    return data if isinstance(data, dict) else {}


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write through a temporary file and a rename, so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
