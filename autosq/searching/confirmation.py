"""Confirming the front, sized by evidence: which candidates are timed again together at the
end of a search, how far the search's own latencies were from the confirmed ones in this
study, and what confirming costs in time.

Pure Python (no optuna, numpy, onnxruntime or torch). The rounds themselves run in
:mod:`autosq.searching.retime`.

The rule. Round 1 confirms the exact Pareto front of the search's latencies. Every later round
measures the screen's error on what was confirmed so far (confirmed / search latency, see
:class:`ScreenError`) and confirms each candidate that could still enter the front: one that no
confirmed, feasible candidate dominates even at its search latency lowered by the error's
margin (the worst overstatement seen: 1 minus the smallest confirmed / search ratio, never less
than :data:`ERROR_FLOOR`). The rounds stop when no unconfirmed candidate could enter. A
candidate whose latency was only predicted is lowered first by the predictor's worst error (the
``min_ms`` of its prediction).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from autosq.measure.protocol import LatencyResult, TimingProtocol, quantile
from autosq.searching.pareto import Point, entry_gate, pareto_front

if TYPE_CHECKING:
    from autosq.searching.objectives import Objectives
    from autosq.searching.records import TrialRecord

# The margin never goes below this: a study whose first confirmations agree to 0.1% still has
# candidates whose screen fell in a burst of interference (15-20% slower for 0.5-3 s here).
ERROR_FLOOR = 0.02
# The margin is 1 minus this quantile of confirmed / search latency over the candidates
# confirmed so far: 0, the smallest ratio, i.e. the worst overstatement the screen has been
# seen to make in this study. The sample is the front and its neighbours, which a quantile
# would understate: a candidate far from the front at its screen is there because its screen
# overstated it most.
ERROR_QUANTILE = 0.0
PLAN_CALL_S = 0.3  # one time_many call beside its models: the request, the groups
REFINE_FACTOR = 4.0  # a refined member trains 4 times the search's budget (refine's default)
RESERVE_EVERY = 8  # new candidates after which the reserve is recomputed even far from the end


@dataclass(frozen=True)
class ScreenError:
    """How far the search's own latencies were from the confirmed ones, in this study:
    ratios confirmed / search latency over the ``n`` timed candidates confirmed so far, and
    the ``margin`` by which an unconfirmed candidate's latency is lowered when asking whether
    it could still enter the front."""

    n: int
    median: float
    p10: float
    p90: float
    low: float
    high: float
    margin: float

    @classmethod
    def measure(cls, ratios: Sequence[float]) -> ScreenError:
        """From confirmed / search latency ratios (the floor alone when there are none)."""
        if not ratios:
            return cls(0, 1.0, 1.0, 1.0, 1.0, 1.0, ERROR_FLOOR)
        r = sorted(ratios)
        margin = max(ERROR_FLOOR, 1.0 - quantile(r, ERROR_QUANTILE))
        return cls(len(r), quantile(r, 0.5), quantile(r, 0.1), quantile(r, 0.9), r[0], r[-1],
                   margin)

    def describe(self) -> str:
        """One line: the ratios and the margin."""
        if not self.n:
            return f"no timed candidate confirmed; margin {self.margin:.1%} (the floor)"
        return (f"confirmed / search latency over {self.n} confirmed: median {self.median:.4f}, "
                f"p10 {self.p10:.4f}, p90 {self.p90:.4f}, range {self.low:.3f}-{self.high:.3f}; "
                f"margin {self.margin:.1%}")

    def to_dict(self) -> dict[str, float]:
        """The stored form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScreenError:
        """Read the stored form."""
        return cls(int(data["n"]), *(float(data[k]) for k in
                                     ("median", "p10", "p90", "low", "high", "margin")))


@dataclass
class Retiming:
    """A confirmation as stored with the study: each confirmed trial's latency, the screen's
    error measured on them, the models timed per round, its wall time, the cost estimate it
    was planned with, and how many candidates that could still enter the front were left
    unconfirmed (the time budget ran out)."""

    at: float
    trials: dict[int, LatencyResult]
    error: ScreenError | None = None
    rounds: list[int] | None = field(default_factory=list)  # None: an earlier version's
    seconds: float = 0.0
    estimated_s: float = 0.0
    left: int = 0

    @property
    def cost_scale(self) -> float | None:
        """Measured over estimated seconds (None when unknown): plans the next confirmation."""
        return self.seconds / self.estimated_s if self.estimated_s > 0 and self.seconds else None

    def describe(self) -> str:
        """``re-timed together, interleaved: 74 models in 3 rounds (60, 12, 2), 14.2 s``."""
        if self.rounds is None:  # stored by an earlier version
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.at))
            return f"re-timed together, interleaved, at {when}"
        if not self.rounds:
            return (f"not re-timed: the time budget ran out before the front could be "
                    f"confirmed ({self.left} candidates at the search's latency)")
        n = sum(self.rounds)
        text = (f"re-timed together, interleaved: {n} models in {len(self.rounds)} round"
                f"{'s' if len(self.rounds) > 1 else ''} ({', '.join(map(str, self.rounds))}), "
                f"{self.seconds:.1f} s")
        if self.left:
            text += (f"; {self.left} candidates that could still be on the front were left "
                     "at the search's latency (the time budget ran out)")
        return text

    def to_dict(self) -> dict[str, Any]:
        """The stored form (``at`` and ``trials`` as earlier versions wrote them)."""
        return {"at": self.at,
                "trials": {str(k): v.to_dict() for k, v in self.trials.items()},
                "screen_error": None if self.error is None else self.error.to_dict(),
                "rounds": self.rounds, "seconds": self.seconds,
                "estimated_s": self.estimated_s, "left": self.left}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Retiming:
        """Read the stored form (also an earlier version's: ``at`` and ``trials`` only)."""
        err = data.get("screen_error")
        return cls(at=float(data["at"]),
                   trials={int(k): LatencyResult.from_dict(v)
                           for k, v in data["trials"].items()},
                   error=None if err is None else ScreenError.from_dict(err),
                   rounds=(None if "rounds" not in data
                           else [int(n) for n in data["rounds"]]),
                   seconds=float(data.get("seconds", 0.0)),
                   estimated_s=float(data.get("estimated_s", 0.0)),
                   left=int(data.get("left", 0)))


def search_low_ms(record: TrialRecord) -> float:
    """The lowest latency the search's own figure allows before the screen's error: a timed
    candidate's median, or a prediction lowered by the predictor's worst error."""
    lat = record.latency
    assert lat is not None
    return lat.min_ms if record.timing == "predicted" else lat.latency_ms


def entry_ratio(record: TrialRecord, front: Sequence[Point], objectives: Objectives) -> float:
    """How much faster than its search latency (its low end, :func:`search_low_ms`) the
    candidate would have to be to stop being dominated by ``front`` (confirmed points): the
    fastest of them that is at least as accurate and no worse on the third objective, over its
    own latency. Above 1: it is on the front as it stands; infinite: nothing could dominate it.
    """
    return entry_gate(front, record.point(objectives)) / search_low_ms(record)


def could_enter(candidates: Sequence[TrialRecord], confirmed: Sequence[Point],
                objectives: Objectives, margin: float) -> list[TrialRecord]:
    """The candidates (unconfirmed) that could still enter the front of ``confirmed`` points
    (confirmed, feasible) once confirmed: their latency lowered by ``margin`` would not be
    dominated. Ordered from the most likely to enter (largest :func:`entry_ratio`) down."""
    front = [confirmed[i] for i in pareto_front(confirmed)]
    ratios = [(entry_ratio(r, front, objectives), r) for r in candidates]
    keep = [(q, r) for q, r in ratios if q > 1.0 - margin]
    keep.sort(key=lambda qr: (-qr[0], qr[1].trial or 0))
    return [r for _, r in keep]


def exact_front(candidates: Sequence[TrialRecord], objectives: Objectives
                ) -> list[TrialRecord]:
    """The Pareto front of the candidates at their search latencies."""
    points = [r.point(objectives) for r in candidates]
    return [candidates[i] for i in pareto_front(points)]


def distinct(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The first record of each architecture and precision (a repeat is the same model)."""
    first: dict[str, TrialRecord] = {}
    for r in records:
        first.setdefault(r.key, r)
    return list(first.values())


# -- cost ---------------------------------------------------------------------------------------
def model_seconds(record: TrialRecord, protocol: TimingProtocol) -> tuple[float, float] | None:
    """What confirming one candidate costs outside the interleaved rounds (its export, its
    session and warm-up: the screen's time outside timed runs, the confirm protocol warming up
    alike) and one block of the confirm protocol at its latency here, as the search measured
    them; None for a candidate the search never timed."""
    lat = record.latency
    if lat is None or record.timing == "predicted" or lat.runs == 0:
        return None
    here_ms = lat.host_ms if lat.host_ms is not None else lat.latency_ms
    block = max(protocol.block_seconds, protocol.block_runs * here_ms / 1e3)
    return record.seconds.get("export", 0.0) + max(0.0, lat.seconds - lat.run_seconds), block


def confirm_seconds(records: Sequence[TrialRecord], protocol: TimingProtocol) -> float:
    """The most that confirming ``records`` together (one round) is expected to take: each
    one's export, session and warm-up, then the interleaved blocks until the timing's own cap
    (the protocol's ``max_seconds``, or 1.5 times the blocks agreement needs, whichever is
    longer; :meth:`~autosq.measure.local.LocalTimer.time_many`) and the round that passes it.
    An untimed candidate costs the median of the timed ones."""
    if not records:
        return 0.0
    known = [model_seconds(r, protocol) for r in records]
    timed = [k for k in known if k is not None]
    fill = ((statistics.median(k[0] for k in timed), statistics.median(k[1] for k in timed))
            if timed else (0.2, protocol.block_seconds))
    parts = [fill if k is None else k for k in known]
    cap = max(protocol.max_seconds,
              1.5 * protocol.min_blocks * protocol.block_seconds * len(records))
    return PLAN_CALL_S + sum(p[0] for p in parts) + cap + sum(p[1] for p in parts)


Measure = Callable[[Sequence["TrialRecord"]], list[LatencyResult]]


def _twins(batch: Sequence[TrialRecord], fp32: dict[str, TrialRecord],
           confirmed: dict[str, LatencyResult]) -> list[TrialRecord]:
    """The fp32 form of each int8 candidate in ``batch``, when the search timed it: timed in
    the same round, the two say fairly whether int8 is the faster here."""
    return [fp32[r.arch_id] for r in batch if r.precision == "int8" and r.arch_id in fp32
            and fp32[r.arch_id].key not in confirmed]


def _fitting(batch: list[TrialRecord], protocol: TimingProtocol, scale: float,
             room: float | None) -> list[TrialRecord]:
    """The longest prefix of ``batch`` expected to be confirmed within ``room`` seconds."""
    if room is None:
        return batch
    n = len(batch)
    while n and confirm_seconds(batch[:n], protocol) * scale > room:
        n -= 1
    return batch[:n]


def confirm_rounds(recs: Sequence[TrialRecord], objectives: Objectives, max_ms: float | None,
                   protocol: TimingProtocol, measure: Measure, deadline: float | None = None,
                   clock: Callable[[], float] = time.monotonic,
                   scale: float = 1.0) -> Retiming:
    """Confirm the front of ``recs`` (a study's records) by rounds, as the module docstring
    says: ``measure(batch)`` times a round's candidates together. Each int8 candidate's fp32
    form, when the search timed it, is confirmed in the same round. A round that would not end
    before ``deadline`` (``clock()`` seconds; cost from :func:`confirm_seconds` times ``scale``,
    then as measured) confirms only what fits, most likely entrants first; another round follows
    only while time for one more model remains (the bound is loose: in a 60-s search on the
    project's VM a two-round confirmation took 0.64 of its bounds, 2026-12-04, and left 5 s
    unused). ``left`` counts the candidates of the last round asked for not confirmed."""
    reps = distinct([r for r in recs if r.feasible])
    fp32 = {r.arch_id: r for r in recs
            if r.precision == "fp32" and r.latency is not None and r.timing != "predicted"}
    confirmed: dict[str, LatencyResult] = {}
    rounds: list[int] = []
    spent = estimated = 0.0
    left = 0
    error: ScreenError | None = None
    targets = exact_front(reps, objectives)
    while targets:
        batch = distinct(targets + _twins(targets, fp32, confirmed))
        fits = _fitting(batch, protocol, scale, None if deadline is None else deadline - clock())
        taken = {r.key for r in fits}
        left = sum(r.key not in taken for r in targets)
        if not fits:
            break
        fits.sort(key=lambda r: (r.latency_ms or 0.0, r.trial or 0))  # neighbours together
        t0 = clock()
        results = measure(fits)
        planned = confirm_seconds(fits, protocol)
        spent, estimated = spent + clock() - t0, estimated + planned
        scale = max(1.0, spent / estimated)  # as measured, when over the bound
        confirmed.update({r.key: res for r, res in zip(fits, results, strict=True)})
        rounds.append(len(fits))
        error = ScreenError.measure([
            confirmed[r.key].latency_ms / r.latency.latency_ms
            for r in distinct([*reps, *fp32.values()])
            if r.key in confirmed and r.latency is not None and r.timing != "predicted"])
        if left and (deadline is None or deadline - clock()
                     < confirm_seconds(fits[:1], protocol) * scale):
            break  # cut short, and no time for another round
        points = [objectives.point(r.accuracy or 0.0, confirmed[r.key].latency_ms, r.size_mb,
                                   r.peak_mem_mb)
                  for r in reps if r.key in confirmed
                  and (max_ms is None or confirmed[r.key].latency_ms <= max_ms)]
        targets = could_enter([r for r in reps if r.key not in confirmed], points, objectives,
                              error.margin)
        left = 0
    return Retiming(at=time.time(),
                    trials={r.trial: confirmed[r.key] for r in recs
                            if r.key in confirmed and r.trial is not None},
                    error=error, rounds=rounds, seconds=spent, estimated_s=estimated, left=left)


class TimeBudget:
    """A time budget for the whole run: when to stop sampling so the front can be confirmed
    (and shown) before ``deadline`` (``time.monotonic()`` seconds).

    The reserve is the expected cost of confirming the exact front and the candidates within
    ``margin`` of it when ``confirming`` (:func:`confirm_seconds`, times ``scale``: measured
    over estimated cost of this study's last confirmation, when there was one), of refining
    ``refine`` members (each :data:`REFINE_FACTOR` times a trial's median training), plus
    ``result_seconds`` to build and print the result; sampling stops when the next trial (as
    long as the longest of the last ten) would eat into it. ``result_seconds`` grows by
    ``per_trial`` with each trial run (the result reads every trial).
    """

    def __init__(self, deadline: float, objectives: Objectives, protocol: TimingProtocol,
                 margin: float = ERROR_FLOOR, scale: float = 1.0, result_seconds: float = 1.0,
                 confirming: bool = True, refine: int = 0, per_trial: float = 0.0) -> None:
        self.deadline = deadline
        self.objectives = objectives
        self.protocol = protocol
        self.margin = margin
        self.scale = max(1.0, scale)
        self.base_result_seconds, self.per_trial = result_seconds, per_trial
        self.confirming = confirming
        self.refine = refine
        self.trial_seconds: list[float] = []  # between calls of should_stop: one trial each
        self._reserve = 0.0
        self._count = -1
        self._last: float | None = None

    def reserve(self, feasible: Sequence[TrialRecord]) -> float:
        """Seconds to keep for confirming and showing the front of ``feasible``."""
        if len(feasible) != self._count:  # recomputed only when a candidate came in
            cost = 0.0
            if self.confirming:
                front = distinct(exact_front(feasible, self.objectives))
                keys = {r.key for r in front}
                near = could_enter(distinct([r for r in feasible if r.key not in keys]),
                                   [r.point(self.objectives) for r in front], self.objectives,
                                   self.margin)
                cost = confirm_seconds(front, self.protocol)
                if near:
                    cost += confirm_seconds(near, self.protocol)
                cost *= self.scale
            trained = [r.seconds["accuracy"] for r in feasible if "accuracy" in r.seconds]
            if self.refine and trained:
                cost += self.refine * REFINE_FACTOR * statistics.median(trained)
            self._reserve = cost
            self._count = len(feasible)
        return self._reserve + self.result_seconds

    @property
    def result_seconds(self) -> float:
        """Seconds to build and show the result, with the trials run so far."""
        return self.base_result_seconds + self.per_trial * len(self.trial_seconds)

    def next_trial(self) -> float:
        """How long the next trial may take: the longest of the last ten."""
        return max(self.trial_seconds[-10:], default=0.0)

    @property
    def confirm_by(self) -> float:
        """When the confirmation must end, leaving the time to build and show the result."""
        return self.deadline - self.result_seconds

    def stopper(self, records: Callable[[], Iterable[TrialRecord]]) -> Callable[[], bool]:
        """:meth:`should_stop` on the feasible ones of ``records()``, for the search loop."""
        return lambda: self.should_stop([r for r in records() if r.feasible])

    def should_stop(self, feasible: Sequence[TrialRecord], now: float | None = None) -> bool:
        """True when another trial would leave too little time to confirm."""
        now = time.monotonic() if now is None else now
        if self._last is not None:
            self.trial_seconds.append(now - self._last)
        self._last = now
        ahead = now + self.next_trial()
        if (0 <= len(feasible) - self._count < RESERVE_EVERY
                and ahead + 2 * self._reserve + self.result_seconds < self.deadline):
            return False  # far from it: a recent reserve, doubled, still fits
        return ahead + self.reserve(feasible) >= self.deadline


__all__ = [
    "ERROR_FLOOR",
    "ERROR_QUANTILE",
    "Retiming",
    "ScreenError",
    "TimeBudget",
    "confirm_seconds",
    "could_enter",
    "distinct",
    "entry_ratio",
    "exact_front",
    "model_seconds",
    "search_low_ms",
]
