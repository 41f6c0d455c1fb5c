"""Confirming a study's front for real: each round's candidates (the rule and the rounds are
:mod:`autosq.searching.confirmation`'s) exported and timed together, interleaved, within the
time the run has left; the result stored with the study
(:func:`~autosq.searching.records.write_retiming`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from autosq.measure.protocol import LatencyResult, TimingProtocol
from autosq.searching.confirmation import ERROR_FLOOR, Retiming, TimeBudget, confirm_rounds
from autosq.searching.records import TrialRecord, read_retiming, write_retiming

if TYPE_CHECKING:
    import optuna

    from autosq.measure import Timer
    from autosq.searching.objectives import Objectives


def confirm_front(study: optuna.Study, timer: Timer, recs: Sequence[TrialRecord],
                  objectives: Objectives, max_ms: float | None, protocol: TimingProtocol,
                  deadline: float | None = None,
                  clock: Callable[[], float] = time.monotonic) -> Retiming:
    """Confirm the study's front by rounds (:func:`~autosq.searching.confirmation.confirm_rounds`),
    each round's models exported and timed together with ``timer``, within ``deadline``
    (``clock()`` seconds); the result is stored with the study and returned."""
    from autosq.searching.evaluate import export_model

    def measure(batch: Sequence[TrialRecord]) -> list[LatencyResult]:
        return timer.time_many([export_model(r.config, r.precision, seed=r.trial or 0)
                                for r in batch])

    previous = read_retiming(study)
    retiming = confirm_rounds(recs, objectives, max_ms, protocol, measure, deadline, clock,
                              scale=(previous.cost_scale if previous else None) or 1.0)
    write_retiming(study, retiming)
    return retiming


# Kept from a whole-run timeout for building and showing the result after the confirmation.
RESULT_SECONDS = 1.5
RESULT_SECONDS_PER_TRIAL = 0.002


def time_budget(study: optuna.Study, started: float, timeout: float | None,
                objectives: Objectives, protocol: TimingProtocol | None, refine: int,
                retime: bool) -> TimeBudget | None:
    """The plan that stops sampling in time to confirm (and refine) within ``timeout`` seconds
    from ``started`` (None without a timeout): the cost of confirming one candidate as this
    study last measured it, the margin its screen error last called for, and the time to build
    and show the result (a storage read per trial)."""
    if timeout is None:
        return None
    last = read_retiming(study)
    margin = ERROR_FLOOR if last is None or last.error is None else last.error.margin
    return TimeBudget(started + timeout, objectives, protocol or TimingProtocol.confirm(),
                      margin=margin, scale=(last.cost_scale if last else None) or 1.0,
                      result_seconds=RESULT_SECONDS + RESULT_SECONDS_PER_TRIAL
                      * len(study.get_trials(deepcopy=False)),
                      confirming=retime, refine=refine, per_trial=RESULT_SECONDS_PER_TRIAL)


def stopper(plan: TimeBudget | None, records: Callable[[], Iterable[TrialRecord]]
            ) -> Callable[[], bool] | None:
    """The search loop's stop rule of ``plan`` (None without one)."""
    return None if plan is None else plan.stopper(records)


def confirm_by(plan: TimeBudget | None) -> float | None:
    """When the confirmation must end under ``plan`` (None without one)."""
    return None if plan is None else plan.confirm_by


__all__ = ["RESULT_SECONDS", "confirm_by", "confirm_front", "stopper", "time_budget"]
