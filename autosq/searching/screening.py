"""Predict before timing: a latency predictor fitted online to the search's own measurements,
and the rule that lets a candidate go untimed.

Every candidate's latency is predicted from its plan (:mod:`autosq.measure.features`) once the
search has timed :data:`MIN_FIT` candidates; the predictor is fitted again as measurements
arrive. A candidate whose latency is only predicted is recorded with latency kind
``predicted`` and is never timed when the prediction leaves no doubt:

- *clearly over the latency budget*: even its latency lowered by the predictor's worst
  leave-one-out error is over the budget;
- *clearly dominated*: a measured, feasible candidate is at least as accurate, no worse on the
  study's third objective (size or memory, when it has one), and faster by more than
  :data:`~autosq.measure.protocol.SCREEN_MARGIN` than its latency lowered by that worst error
  (so the dominated one could not reach the front however it timed).

Everything else is timed. The worst error (not the mean) makes the rule conservative: a
predictor that is often wrong skips nothing.

A timing far *above* its prediction (by more than the predictor's 90th-percentile error, and
at least :data:`SECOND_LOOK`: :attr:`Prediction.high_ms`) gets a second look a second later
(:mod:`autosq.searching.second_look`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from autosq.errors import AutosqError
from autosq.measure.features import latency_features
from autosq.measure.protocol import SCREEN_MARGIN, LatencyResult
from autosq.searching.pareto import (
    Point,
    clearly_dominates,
    entry_gate,
    hypervolume,
    pareto_front,
)

if TYPE_CHECKING:
    from autosq.measure.predictor import Predictor
    from autosq.searching.objectives import Objectives
    from autosq.searching.records import Budget, TrialRecord

# Timed candidates before the first fit (the predictor's cross-validation needs a few dozen to
# be trusted; with fewer its worst error is large and the rule skips little anyway).
MIN_FIT = 16
# A timing this far above its prediction, at least, gets a second look (also when the
# predictor's 90th-percentile error is smaller). Replayed over six stored 60-s searches of the
# peer bench (ad hoc, not kept), fixed bounds of 8% and 12% ranked the screens within 0.001
# Spearman of each other against the common clock, flagging 72 and 40 screens in all; this
# rule (10%, or the predictor's p90 error when larger) flagged 46.
SECOND_LOOK = 0.10
REFIT_GROWTH = 1.2  # refit once the timed samples grew by this factor (and by >= 1)


@dataclass(frozen=True)
class Prediction:
    """A candidate's predicted latency, the lowest latency its error allows, and the highest
    timing that is believed without a second look."""

    latency_ms: float
    low_ms: float
    error: str
    high_ms: float = float("inf")

    def result(self, threads: int) -> LatencyResult:
        """The prediction as a stored latency (kind ``predicted``)."""
        return LatencyResult(
            latency_ms=self.latency_ms, p90_ms=self.latency_ms, min_ms=self.low_ms,
            mean_ms=self.latency_ms, runs=0, blocks=0, block_gap=float("inf"),
            spread=float("inf"), latency_kind="predicted", threads=threads, stop="predicted",
            over_budget=False, seconds=0.0, run_seconds=0.0,
            protocol={"predictor": self.error})


class LatencyScreen:
    """The search's latency predictor and its skip rule (see the module docstring)."""

    def __init__(self, budget: Budget, device: str, objectives: Objectives,
                 enabled: bool = True) -> None:
        self.budget = budget
        self.objectives = objectives
        self.enabled = enabled
        self.device = device
        self.rows: list[tuple[float, ...]] = []
        self.latencies: list[float] = []
        self.measured: list[TrialRecord] = []
        self.predictor: Predictor | None = None
        self._fitted_at = 0
        self._front: tuple[int, list[Point], Point, float] | None = None

    def add(self, record: TrialRecord) -> None:
        """Learn from a timed candidate (a predicted one teaches nothing)."""
        lat = record.latency
        if lat is None or lat.latency_kind == "predicted" or lat.over_budget:
            return  # an early-stopped timing is a lower bound, not a latency
        self.rows.append(latency_features(record.config, record.precision))
        self.latencies.append(lat.latency_ms)
        if record.feasible and record.accuracy is not None:
            self.measured.append(record)

    def _fit(self) -> Predictor | None:
        n = len(self.rows)
        if n < MIN_FIT:
            return None
        if self.predictor is None or n >= max(self._fitted_at + 1,
                                              self._fitted_at * REFIT_GROWTH):
            from autosq.measure.predictor import Calibration, fit_predictor  # numpy

            calibration = Calibration(self.device, "search", 0, "", "", "", "")
            try:
                self.predictor = fit_predictor(calibration, self.rows, self.latencies)
            except AutosqError:
                return None
            self._fitted_at = n
        return self.predictor

    def predict(self, record: TrialRecord) -> Prediction | None:
        """The candidate's predicted latency, or None before the first fit (or when the
        candidate's precision has no timed sample yet)."""
        p = self._fit() if self.enabled else None
        if p is None:
            return None
        row = latency_features(record.config, record.precision)
        used = [i for i, v in enumerate(row[:-1]) if v]
        if any(all(r[i] == 0 for r in self.rows) for i in used):
            return None  # a term no timed sample had (another precision): no basis
        ms = p.predict_row(row)
        if ms <= 0:
            return None
        return Prediction(ms, ms / (1 + p.cv_worst), p.error_text(),
                          high_ms=ms * (1 + max(SECOND_LOOK, p.cv_p90)))

    def skip_reason(self, record: TrialRecord, prediction: Prediction) -> str | None:
        """Why the candidate need not be timed, or None when it must be."""
        max_ms = self.budget.max_ms
        if max_ms is not None and prediction.low_ms > max_ms:
            return "predicted over the latency budget"
        if record.accuracy is None:
            return None
        # The candidate at its lowest plausible latency against each measured one.
        point = self.objectives.point(record.accuracy, prediction.low_ms, record.size_mb,
                                      record.peak_mem_mb)
        for m in self.measured:
            if clearly_dominates(m.point(self.objectives), point, SCREEN_MARGIN):
                return f"predicted dominated by trial {m.trial}"
        return None

    def promise(self, record: TrialRecord, prediction: Prediction) -> tuple[float, float]:
        """How much a scored candidate is expected to add to the front of the measured ones,
        at its predicted latency, larger first: the hypervolume it would add, then how much
        faster it would be than the fastest front member at least as accurate (its entry
        ratio, :func:`~autosq.searching.confirmation.entry_ratio`). The hypervolume's
        reference: the front's least accurate member less a tenth of its accuracy range, the
        latency budget (or 1.5 times the slowest member), 1.5 times the front's largest third
        objective (1 without one). A candidate predicted over the latency budget promises
        nothing: (0, 0)."""
        assert record.accuracy is not None
        max_ms = self.budget.max_ms
        if max_ms is not None and prediction.latency_ms > max_ms:
            return 0.0, 0.0  # it would not fit: nothing to add, however accurate
        front, reference, area = self._measured_front()
        point = self.objectives.point(record.accuracy, prediction.latency_ms, record.size_mb,
                                      record.peak_mem_mb)
        gain = hypervolume([*front, point], reference) - area if front else 0.0
        # A dominated point with a third objective splits a slab: its "gain" is rounding.
        gain = gain if gain > 1e-12 * area else 0.0
        return gain, entry_gate(front, point) / prediction.latency_ms

    def _measured_front(self) -> tuple[list[Point], Point, float]:
        """The measured candidates' front, its hypervolume reference and its hypervolume
        (kept until another candidate is measured)."""
        if self._front is None or self._front[0] != len(self.measured):
            points = [m.point(self.objectives) for m in self.measured]
            front = [points[i] for i in pareto_front(points)]
            if not front:
                self._front = (len(self.measured), [], (0.0, 0.0, 0.0), 0.0)
            else:
                accs = [p[0] for p in front]
                reference = (min(accs) - 0.1 * (max(accs) - min(accs)),
                             self.budget.max_ms or 1.5 * max(p[1] for p in front),
                             1.5 * max(p[2] for p in front) or 1.0)
                self._front = (len(self.measured), front, reference,
                               hypervolume(front, reference))
        return self._front[1], self._front[2], self._front[3]


def predicted_record(record: TrialRecord, prediction: Prediction, threads: int,
                     budget: Budget) -> TrialRecord:
    """``record`` with its predicted latency and latency constraint set."""
    out = replace(record, latency=prediction.result(threads),
                  constraints=dict(record.constraints))
    if budget.max_ms is not None:
        out.constraints["latency_ms"] = prediction.latency_ms - budget.max_ms
    return out


__all__ = ["MIN_FIT", "SECOND_LOOK", "LatencyScreen", "Prediction", "predicted_record"]
