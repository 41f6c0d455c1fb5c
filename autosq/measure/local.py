"""Timing ONNX models with ONNX Runtime in this process: latency kind ``measured``.

One protocol for every model (:class:`~autosq.measure.protocol.TimingProtocol`):

1. a session with the profile's settings (threads, provider, graph optimisation), created and
   run with this process pinned to as many CPUs as it has threads;
2. warm-up runs (a count and a minimum time);
3. timed blocks of runs (each at least a count and a time) until the two quietest blocks'
   medians agree within ``target_gap``, or ``max_seconds`` is reached; and an early stop once
   even the fastest run is clearly over the latency budget (models timed together, block by
   block: each leaves the rotation once it agrees, or after :data:`ROTATION_BLOCKS` times the
   blocks agreement needs once ``max_seconds`` has passed, all by the rotation's own cap);
4. the median of the quietest block (the reported latency), p90, min, mean, the number of runs
   and their spread, with the protocol and the versions.

Timings never overlap between processes on one machine: warm-up and runs hold an exclusive file
lock in autosq's cache folder, since two timings at once corrupt each other.

A model is untrusted: by default it is timed in a child process bounded by
:class:`~autosq.measure.limits.Limits` (:mod:`autosq.measure.contained`), and the input it
declares is checked before it is allocated.
"""

from __future__ import annotations

import copy
import gc
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from autosq.errors import MeasurementError
from autosq.measure.contained import TimingProcess
from autosq.measure.host import (
    allowed_cpus,
    contention,
    cpu_model,
    cpu_times,
    exclusive_machine,
    pinned_cpus,
    timing_lock,
)
from autosq.measure.limits import Limits, input_shape, interleaved_groups
from autosq.measure.protocol import LatencyResult, TimingProtocol, block_gap, summarize

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime as ort

# Models timed together: one leaves the rotation unsettled after this many times the blocks
# agreement needs, once one model's own cap has passed (its result says "block_cap").
ROTATION_BLOCKS = 3

_GRAPH_OPT = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "allocate" in text or "bad_alloc" in text


class LocalTimer:
    """Times ONNX models with ONNX Runtime in this process (latency kind ``measured``)."""

    kind = "measured"

    def __init__(
        self,
        threads: int = 1,
        provider: str = "CPUExecutionProvider",
        graph_optimization: str = "all",
        protocol: TimingProtocol | None = None,
        *,
        limits: Limits | None = None,
        input_size: int | None = None,
        contained: bool = True,
        max_input_mb: float | None = None,
        process: TimingProcess | None = None,
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
        self.limits = limits or Limits()
        self.input_size = input_size
        self.max_input_mb = max_input_mb or self.limits.max_input_mb
        self._process = process or (TimingProcess(self.limits) if contained else None)
        # Polled while a contained timing runs; true stops it (the agent: its client left).
        self.abandoned: Callable[[], bool] | None = None

    def with_protocol(self, protocol: TimingProtocol) -> LocalTimer:
        """This timer with another protocol (sharing its timing process)."""
        other = copy.copy(self)
        other.protocol = protocol
        return other

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

    def feed(self, session: ort.InferenceSession) -> dict[str, np.ndarray]:
        """Fixed random values for every input the model declares, each checked (type,
        dynamic dimensions, size) before it is allocated."""
        import numpy as np

        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise MeasurementError(f"the model has {len(inputs) or 'no'} input"
                                   f"{'s' if len(inputs) != 1 else ''}; autosq times image "
                                   "models, which take one float tensor")
        dtypes = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
                  "tensor(double)": np.float64}
        shapes = [input_shape(i.name, i.shape, i.type, self.input_size, self.max_input_mb)
                  for i in inputs]
        rng = np.random.default_rng(0)
        return {i.name: rng.standard_normal(shape).astype(dtypes[i.type])
                for i, shape in zip(inputs, shapes, strict=True)}

    def _warm_up(self, session: ort.InferenceSession, feed: dict[str, np.ndarray]) -> None:
        p = self.protocol
        start = time.perf_counter()
        runs, fastest = 0, float("inf")
        while True:
            t0 = time.perf_counter()
            session.run(None, feed)
            now = time.perf_counter()
            last = now - t0
            fastest = min(fastest, last)
            runs += 1
            if runs < p.warmup_runs or now - start < p.warmup_seconds:
                continue
            if p.warmup_steady <= 0 or now - start >= p.warmup_max_seconds:
                return
            if last <= fastest * (1 + p.warmup_steady):
                return

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

    def _contained(self, op: str, models: Sequence[bytes],
                   budget_ms: float | None) -> list[LatencyResult]:
        assert self._process is not None
        header = {"op": op, "budget_ms": budget_ms, "timer": {
            "threads": self.threads, "provider": self.provider,
            "graph_optimization": self.graph_optimization, "protocol": asdict(self.protocol),
            "input_size": self.input_size, "max_input_mb": self.max_input_mb,
            "max_memory_mb": self.limits.max_memory_mb}}
        answer = self._process.request(header, models,
                                       self.limits.max_seconds * max(1, len(models)),
                                       self.abandoned)
        return [LatencyResult.from_dict(r) for r in answer["results"]]

    def close(self) -> None:
        """Stop the timing process (a later timing starts another)."""
        if self._process is not None:
            self._process.stop()

    def time(self, onnx_bytes: bytes, budget_ms: float | None = None) -> LatencyResult:
        """Time one model by the protocol; ``budget_ms`` allows the early stop."""
        self.limits.check_model_size(len(onnx_bytes))
        with timing_lock(), exclusive_machine():
            if self._process is not None:
                return self._contained("time", [onnx_bytes], budget_ms)[0]
            return self.time_here(onnx_bytes, budget_ms)

    def time_many(self, models: Sequence[bytes]) -> list[LatencyResult]:
        """Time several models together, interleaved block by block, so that drift and
        interference hit them alike (the search re-times its front this way)."""
        if not models:
            return []
        for m in models:
            self.limits.check_model_size(len(m))
        with timing_lock(), exclusive_machine():
            if self._process is not None:
                return self._contained("time_many", models, None)
            return self.time_many_here(models)

    def time_here(self, onnx_bytes: bytes, budget_ms: float | None = None) -> LatencyResult:
        """:meth:`time` in this process, without the lock (the caller holds it)."""
        t0 = time.perf_counter()
        allowed = allowed_cpus()
        with pinned_cpus(self.threads) as cpus:
            session = self.session(onnx_bytes)
            feed = self.feed(session)
            before = cpu_times()
            try:
                blocks, stop = self._runs(session, feed, budget_ms)
            except Exception as exc:
                raise MeasurementError(f"ONNX Runtime failed running the model: {exc}") from exc
            busy = contention(before, cpu_times(), cpus, allowed)
        return self._result(blocks, stop, budget_ms, time.perf_counter() - t0, cpus, busy)

    def time_many_here(self, models: Sequence[bytes]) -> list[LatencyResult]:
        """:meth:`time_many` in this process, without the lock (the caller holds it). Models
        are interleaved in groups whose sessions fit the timing process's memory together
        (:func:`interleaved_groups`); a group is timed as a whole, then the next."""
        out: list[LatencyResult] = []
        for start, stop in interleaved_groups([len(m) for m in models],
                                              self.limits.max_memory_mb, self.input_size):
            out += self._time_split(models, start, stop)
        return out

    def _time_split(self, models: Sequence[bytes], start: int, stop: int
                    ) -> list[LatencyResult]:
        """Time ``models[start:stop]`` together; when their sessions do not fit in memory
        after all (the estimate is rough), time each half in turn."""
        try:
            return self._time_group(models[start:stop], start, len(models))
        except (MeasurementError, MemoryError) as exc:
            if stop - start < 2 or not _out_of_memory(exc):
                raise
        gc.collect()  # the failed group's sessions
        middle = (start + stop) // 2
        return self._time_split(models, start, middle) + self._time_split(models, middle, stop)

    def _time_group(self, models: Sequence[bytes], first: int, total: int
                    ) -> list[LatencyResult]:
        t0 = time.perf_counter()
        allowed = allowed_cpus()
        with pinned_cpus(self.threads) as cpus:
            sessions, feeds = [], []
            for i, m in enumerate(models):
                try:
                    sessions.append(self.session(m))
                    feeds.append(self.feed(sessions[-1]))
                except MeasurementError as exc:
                    raise MeasurementError(f"model {first + i + 1} of {total}: {exc}") from exc
            pairs = list(zip(sessions, feeds, strict=True))
            blocks: list[list[list[float]]] = [[] for _ in models]
            before = cpu_times()
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
                # A model leaves the rotation once its own blocks agree: the rest are not held
                # up by it, and it is not held up by the slowest to settle. Once one model's
                # own cap has passed, one that has not agreed after ROTATION_BLOCKS times the
                # blocks agreement needs leaves too: in a 96-model round, 6 models of 2-3 ms
                # kept their two quietest blocks 3.1-4.0% apart for 30 blocks each, a fifth of
                # the round's time.
                stops = ["time_cap"] * len(pairs)  # for those still in at the end
                active = list(range(len(pairs)))
                most = ROTATION_BLOCKS * p.min_blocks
                while active and time.perf_counter() <= t_end:
                    for i in active:
                        blocks[i].append(self._block(*pairs[i])[0])
                    # Past one model's own cap, and only where the rotation's end is later.
                    late = t_start + p.max_seconds <= time.perf_counter() < t_end
                    for i in active:
                        if self._settled(blocks[i], t_start):
                            stops[i] = "agreement"
                        elif late and len(blocks[i]) >= most:
                            stops[i] = "block_cap"
                    active = [i for i in active if stops[i] == "time_cap"]
            except Exception as exc:
                raise MeasurementError(f"ONNX Runtime failed running one of models {first + 1}"
                                       f"-{first + len(models)} of {total}: {exc}") from exc
            busy = contention(before, cpu_times(), cpus, allowed)
        each = (time.perf_counter() - t0) / len(models)
        return [self._result(b, stop, None, each, cpus, busy)
                for b, stop in zip(blocks, stops, strict=True)]

    def _result(
        self,
        blocks: list[list[float]],
        stop: str,
        budget_ms: float | None,
        seconds: float,
        cpus: list[int],
        busy: float | None,
    ) -> LatencyResult:
        stats = summarize(blocks)
        return LatencyResult(
            **stats._asdict(),
            latency_kind=self.kind,
            threads=self.threads,
            stop=stop,
            over_budget=budget_ms is not None and stats.latency_ms > budget_ms,
            seconds=seconds,
            run_seconds=sum(map(sum, blocks)) / 1e3,
            protocol=self.protocol_dict(cpus),
            contention=busy,
        )

