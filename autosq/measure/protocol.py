"""The timing protocol's settings and its results, and the statistics behind them: a leaf
module (no onnxruntime, numpy or torch), shared by every timer and by the stored trial records.

Latency kinds: ``measured`` (timed here), ``estimated`` (timed here, scaled to a device by a
calibration), ``device`` (timed on the device by its agent) and ``predicted`` (from a fitted
latency model, never timed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

LATENCY_KINDS = ("measured", "estimated", "device", "predicted")
_MAYBE_INFINITE = ("block_gap", "spread")
AGENT_MAX_BATCH = 256  # models in one request to the agent


@dataclass(frozen=True)
class TimingProtocol:
    """How long to warm up, how to group runs into blocks, and when to stop.

    Shared machines have bursts of interference lasting 0.5-3 s that slow every run by 15-20%
    (measured while building autosq). Noise only ever adds time, so runs are grouped into
    blocks of at least ``block_seconds``; the reported median is the median of the quietest
    block, and timing stops once the two quietest blocks agree within ``target_gap``.

    Warm-up runs at least ``warmup_runs`` runs and ``warmup_seconds``; with ``warmup_steady``
    above 0 it then goes on until the last run is within that fraction of the fastest so far
    (ONNX Runtime's first runs allocate and are slow; later ones are steady), at most
    ``warmup_max_seconds`` in all.

    Three protocols are named: the default (one model at a time, trustworthy alone),
    :meth:`screen` (a brief look at every candidate of a search) and :meth:`confirm` (the
    front's candidates timed together, interleaved, at the end of a search).
    """

    warmup_runs: int = 5
    warmup_seconds: float = 0.2
    warmup_steady: float = 0.0
    warmup_max_seconds: float = 1.0
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

    @classmethod
    def screen(cls) -> TimingProtocol:
        """A search's first look at a candidate: three short blocks after a steady warm-up.
        Its noise is covered by :data:`SCREEN_MARGIN` when the front is chosen, and every
        candidate that could be on the front is timed again with :meth:`confirm`."""
        return cls(warmup_runs=2, warmup_seconds=0.0, warmup_steady=0.1,
                   warmup_max_seconds=0.3, block_runs=2, block_seconds=0.01, min_blocks=3,
                   target_gap=0.05, max_seconds=0.4)

    @classmethod
    def confirm(cls) -> TimingProtocol:
        """The front's candidates timed together, interleaved block by block, so that drift
        and interference hit them alike: much shorter blocks than the default suffice, since
        every round visits every model and the rounds of a 50-model front span seconds, longer
        than an interference burst (blocks of 0.04 s cost 80% of a peer-bench confirmation's
        time and ranked no closer to the common clock than the screen: docs/benchmarks.md)."""
        return cls(warmup_runs=2, warmup_seconds=0.0, warmup_steady=0.1,
                   warmup_max_seconds=0.3, block_runs=3, block_seconds=0.02, min_blocks=4,
                   target_gap=0.03, max_seconds=3.0)


# A timing during which other processes kept the machine's other CPUs busy at least this share
# of the time is *contended*. Measured on this project's 2-CPU VM (2026-12-04, one thread pinned
# to one CPU, a 1.5 ms model): a busy loop on the other CPU slowed it by 3-20%, a memory-bound
# one by 13-25% (shared caches and memory bandwidth).
CONTENDED = 0.5

# How much faster a screened candidate must be for another to be ruled off the front without
# confirmation. Measured on the 108 candidates re-timed in two default searches (rpi4, 5 MiB,
# 100 trials; this project's 2-CPU VM): screen / confirmed latency - 1 was 0.9% in median,
# 2.8% at the 90th percentile, 6.2% at worst. 15% leaves room for interference bursts, which
# slow every run by 15-20% for 0.5-3 s on shared machines.
SCREEN_MARGIN = 0.15


@dataclass
class LatencyResult:
    """One model's latency. ``latency_ms`` is the median; the kind says how it was obtained.
    ``contention``: the share of the timing during which other processes kept the machine's
    other CPUs busy, or the hypervisor took the timing's own, whichever is larger
    (:func:`~autosq.measure.host.contention`; None where unknown)."""

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
    contention: float | None = None

    @property
    def contended(self) -> bool:
        """Whether :attr:`contention` reached :data:`CONTENDED` (a predicted latency was not
        timed: never)."""
        return self.latency_kind != "predicted" and (self.contention or 0.0) >= CONTENDED

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored with a trial (and answered by the agent): strict JSON, so an
        undefined gap or spread (one block; a zero median) is null."""
        d = asdict(self)
        for name in _MAYBE_INFINITE:
            if isinstance(d[name], float) and not math.isfinite(d[name]):
                d[name] = None
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyResult:
        """Read a stored or received result; raises ValueError when it is not one."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in _MAYBE_INFINITE:
            if name in values and values[name] is None:
                values[name] = math.inf
        try:
            result = cls(**values)
        except TypeError as exc:
            raise ValueError(f"not a latency result: {exc}") from None
        if result.latency_kind not in LATENCY_KINDS:
            raise ValueError(f"unknown latency kind {result.latency_kind!r}")
        for name in ("latency_ms", "p90_ms", "min_ms", "mean_ms"):
            value = getattr(result, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
        busy = result.contention
        if busy is not None and (isinstance(busy, bool) or not isinstance(busy, (int, float))
                                 or not 0 <= busy <= 1):
            raise ValueError(f"contention must be a share from 0 to 1 or null; got {busy!r}")
        return result


class RunStats(NamedTuple):
    """The reported figures of timed blocks of runs (milliseconds)."""

    latency_ms: float
    p90_ms: float
    min_ms: float
    mean_ms: float
    runs: int
    blocks: int
    block_gap: float
    spread: float


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


def summarize(blocks: Sequence[Sequence[float]]) -> RunStats:
    """The reported figures of timed blocks of runs (milliseconds).

    latency_ms is the median of the quietest block; p90, min, mean and spread ((p90 - p10) /
    median) are over every run, so the noise stays visible.
    """
    runs = sorted(x for b in blocks for x in b)
    med = min(_median(b) for b in blocks)
    return RunStats(
        latency_ms=med,
        p90_ms=quantile(runs, 0.9),
        min_ms=runs[0],
        mean_ms=sum(runs) / len(runs),
        runs=len(runs),
        blocks=len(blocks),
        block_gap=block_gap(blocks),
        spread=(quantile(runs, 0.9) - quantile(runs, 0.1)) / med if med > 0 else math.inf,
    )

