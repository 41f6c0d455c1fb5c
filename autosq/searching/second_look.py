"""A second look, a second later, at a timing far above its prediction or taken while other
processes kept the machine busy.

Noise only ever adds time. On a shared machine a burst of interference (15-60% slower, for a
tenth of a second to several seconds) can cover a whole screen, all its blocks alike, so the
screen's own check (its quietest blocks agree) cannot see it; the candidate then looks slower
than it is and may never be confirmed. A timing above its prediction's
:attr:`~autosq.searching.screening.Prediction.high_ms` (the predictor's 90th-percentile error
above it, at least 10%) is therefore timed again by a later trial of the same process, at
least :data:`LOOK_DELAY_S` after, so that the look falls outside the burst, and the faster
timing stands (:func:`take_look`). So is a contended timing (other processes kept the
machine's other CPUs busy at least half of it: :data:`~autosq.measure.protocol.CONTENDED`),
prediction or not. The timings taken before the predictor's first fit are checked against the
first prediction (the evaluator keeps them until then). The look is stored with the trial that
took it and applied wherever records are read. How often it happens and what it changes:
docs/search.md.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autosq.errors import AutosqError, TimingUnavailable
from autosq.measure.protocol import LatencyResult

if TYPE_CHECKING:
    import optuna

    from autosq.measure import Timer
    from autosq.searching.records import TrialRecord

# Bursts seen here lasted 0.1-0.7 s in most rounds (a look 0.05 s later fell in the same burst
# for about half the candidates it was meant for, in the noisiest round measured).
LOOK_DELAY_S = 1.0
MAX_LOOKS = 2  # later looks at one candidate, at most: slow every time, it is the model
MAX_PENDING = 32  # candidates waiting for a look
LOOK_ATTR = "autosq_second_look"  # the trial user attribute a look is stored in


@dataclass
class Pending:
    """A candidate waiting for its next look."""

    record: TrialRecord
    model: Callable[[], bytes]
    high_ms: float
    due: float
    looks: int = 0


class SecondLooks:
    """The candidates of this process waiting for a second look, oldest first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.pending: deque[Pending] = deque()

    def note(self, record: TrialRecord, model: Callable[[], bytes],
             high_ms: float = float("inf")) -> None:
        """Queue ``record`` for a look when its timing is :func:`suspect`; ``model()``
        exports its model again then (not held meanwhile: a compressed precision's timing
        graph is the dense network). A full queue takes no more (a look is a refinement)."""
        if suspect(record.latency, high_ms) and len(self.pending) < MAX_PENDING:
            self.pending.append(Pending(record, model, high_ms, self.clock() + LOOK_DELAY_S))

    def take(self, timer: Timer, budget_ms: float | None) -> tuple[int, LatencyResult] | None:
        """Time the oldest candidate whose look is due, if any: returns its trial number and
        the new timing (already taken into its record), for the caller to store. A candidate
        whose standing timing and latest look are both still :func:`suspect` is looked at
        again later, :data:`MAX_LOOKS` times in all. A look
        that fails is dropped (it must not fail the trial that takes it), unless the machine
        cannot time at all."""
        if not self.pending or self.pending[0].due > self.clock():
            return None
        p = self.pending.popleft()
        if p.record.trial is None or p.record.skipped is not None:
            return None  # never stored, or skipped (not scored): nothing a look would change
        try:
            look = timer.time(p.model(), budget_ms)
        except TimingUnavailable:
            raise
        except AutosqError:
            return None
        take_look(p.record, look)
        p.looks += 1
        # Again only while the standing timing and this look are both suspect: a quiet look
        # within the bound ends it, even when slower than a contended first timing.
        if (suspect(p.record.latency, p.high_ms) and suspect(look, p.high_ms)
                and p.looks < MAX_LOOKS):
            p.due = self.clock() + LOOK_DELAY_S
            self.pending.append(p)
        return p.record.trial, look


def suspect(latency: LatencyResult | None, high_ms: float = float("inf")) -> bool:
    """Whether a timing deserves another look: above ``high_ms``, or contended
    (:attr:`~autosq.measure.protocol.LatencyResult.contended`). A predicted latency was not
    timed: never."""
    if latency is None or latency.latency_kind == "predicted":
        return False
    return latency.latency_ms > high_ms or latency.contended


def take_look(record: TrialRecord, look: LatencyResult) -> None:
    """A second timing of ``record``'s candidate: the faster one stands (noise only adds
    time), the latency constraint follows, and the first is kept in ``first_look_ms``. A
    record whose latency was only predicted keeps it (it was not timed: nothing to compare)."""
    lat = record.latency
    if lat is None or lat.latency_kind == "predicted" or look.latency_ms >= lat.latency_ms:
        return
    if record.first_look_ms is None:
        record.first_look_ms = lat.latency_ms
    if "latency_ms" in record.constraints:
        record.constraints["latency_ms"] += look.latency_ms - lat.latency_ms
    record.latency = look


def busy_notes(records: list[TrialRecord], confirmed: list[LatencyResult]) -> list[str]:
    """What a search kept that was timed while other processes kept the machine busy (its
    distinct ``records`` and ``confirmed`` latencies), for the result's notes; none when
    nothing was."""
    out = []
    timed = [r.latency for r in records if not r.duplicate and r.latency is not None
             and r.latency.latency_kind != "predicted"]
    if busy := sum(t.contended for t in timed):
        out.append(f"{busy} of {len(timed)} timed candidates kept a timing taken while other "
                   "processes kept this machine's other CPUs busy at least half the time: "
                   "their latencies may read high; time on an idle machine for the truth")
    if busy := sum(t.contended for t in confirmed):
        out.append(f"{busy} of {len(confirmed)} confirmations ran while other processes kept "
                   "this machine's other CPUs busy at least half the time: the front's "
                   "latencies may read high; time the model you choose on an idle machine "
                   "(autosq measure)")
    return out


def apply_looks(records: list[TrialRecord], trials: Iterable[optuna.trial.FrozenTrial]
                ) -> None:
    """Take into ``records`` the second looks stored with ``trials``; an architecture sampled
    again (its duplicates) carries the same timing."""
    looks = read_looks(trials)
    if looks:
        key = {r.trial: r.key for r in records}
        by_key: dict[str, list[LatencyResult]] = {}
        for n, taken in looks.items():  # two workers may have timed and looked at one key
            if n in key:
                by_key.setdefault(key[n], []).extend(taken)
        for r in records:
            for look in by_key.get(r.key, ()):
                take_look(r, look)


def read_looks(trials: Iterable[optuna.trial.FrozenTrial]) -> dict[int, list[LatencyResult]]:
    """Trial number -> the second looks other trials took at its candidate (any state: a look
    stands even when the trial that took it failed afterwards); an unreadable one is left out."""
    looks: dict[int, list[LatencyResult]] = {}
    for t in trials:
        stored: Any = t.user_attrs.get(LOOK_ATTR)
        try:
            number, look = int(stored["trial"]), LatencyResult.from_dict(stored["latency"])
        except (TypeError, KeyError, ValueError, AttributeError):
            continue  # none, or not one autosq wrote
        looks.setdefault(number, []).append(look)
    return looks


def write_look(trial: optuna.Trial, of_trial: int, look: LatencyResult) -> None:
    """Store, with the running ``trial``, a second look at trial ``of_trial``'s candidate."""
    trial.set_user_attr(LOOK_ATTR, {"trial": of_trial, "latency": look.to_dict()})


__all__ = ["LOOK_ATTR", "LOOK_DELAY_S", "MAX_LOOKS", "MAX_PENDING", "SecondLooks", "apply_looks",
           "busy_notes", "read_looks", "suspect", "take_look", "write_look"]
