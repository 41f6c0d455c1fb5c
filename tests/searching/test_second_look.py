"""The second look at a timing far above its prediction or taken on a busy machine: the
queue, the rule that the faster timing stands, and how looks are stored with a study (real
Optuna storages); the real search path is tested in test_run.py."""

from __future__ import annotations

from dataclasses import replace

import optuna
import pytest
from conftest import random_config
from util import timed

from autosq.arch.cost import cost_of
from autosq.arch.plan import plan
from autosq.errors import MeasurementError, TimingUnavailable
from autosq.measure.protocol import LatencyResult
from autosq.searching.objectives import Objectives
from autosq.searching.records import TrialRecord, load_record, load_records, write_record
from autosq.searching.second_look import (
    LOOK_ATTR,
    LOOK_DELAY_S,
    MAX_LOOKS,
    SecondLooks,
    busy_notes,
    read_looks,
    take_look,
    write_look,
)
from autosq.searching.storage import storage_for


def record(ms: float, trial: int | None = 0, seed: int = 0) -> TrialRecord:
    import random

    config = random_config(random.Random(seed), input_size=64, num_classes=10)
    c = cost_of(plan(config))
    return TrialRecord({}, config, "fp32", c.params, c.macs, c.size_mb("fp32"), c.peak_mem_mb,
                       {"size_mb": -1.0, "latency_ms": ms - 10.0}, latency=timed(ms),
                       search_accuracy=0.5, search_accuracy_kind="proxy", trial=trial)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Timer:
    kind = "measured"
    threads = 1

    def __init__(self, *ms: float | Exception | LatencyResult) -> None:
        self.ms = list(ms)
        self.models: list[bytes] = []

    def time(self, onnx_bytes: bytes, budget_ms: float | None = None) -> LatencyResult:
        self.models.append(onnx_bytes)
        answer = self.ms.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer if isinstance(answer, LatencyResult) else timed(answer)


def test_the_faster_timing_stands_and_the_first_is_kept() -> None:
    r = record(6.0)
    take_look(r, timed(7.0))  # slower: the first stands
    assert r.latency_ms == 6.0 and r.first_look_ms is None
    take_look(r, timed(5.0))
    take_look(r, timed(4.0))
    assert r.latency_ms == 4.0 and r.first_look_ms == 6.0
    assert r.constraints["latency_ms"] == pytest.approx(-6.0)  # 4 ms against a 10-ms budget


def test_a_look_waits_a_second_and_a_candidate_slow_every_time_is_let_be() -> None:
    clock = Clock()
    looks = SecondLooks(clock)
    slow, believed = record(6.0, trial=3), record(4.0, trial=4)
    looks.note(slow, lambda: b"slow", high_ms=5.0)
    looks.note(believed, lambda: b"fine", high_ms=5.0)  # within its bound: no look
    timer = Timer(5.8, 5.5, 1.0)
    assert len(looks.pending) == 1 and looks.take(timer, None) is None  # not due
    clock.now += LOOK_DELAY_S
    got = looks.take(timer, 10.0)
    assert got is not None and got[0] == 3 and got[1].latency_ms == 5.8
    assert slow.latency_ms == 5.8 and slow.first_look_ms == 6.0
    assert looks.take(timer, None) is None  # still above its bound: again, a second later
    clock.now += LOOK_DELAY_S
    assert looks.take(timer, None) is not None and slow.latency_ms == 5.5
    clock.now += 10 * LOOK_DELAY_S
    assert MAX_LOOKS == 2 and not looks.pending and looks.take(timer, None) is None
    assert timer.models == [b"slow", b"slow"]


def test_a_look_that_clears_the_bound_ends_the_looks() -> None:
    clock = Clock()
    looks = SecondLooks(clock)
    r = record(9.0, trial=1)
    looks.note(r, lambda: b"m", high_ms=5.0)
    clock.now += LOOK_DELAY_S
    assert looks.take(Timer(4.5), None) is not None
    assert r.latency_ms == 4.5 and not looks.pending


def test_a_contended_timing_is_looked_at_with_or_without_a_prediction() -> None:
    """A timing during which other processes kept the other CPUs busy half the time or more
    gets looks until one is quiet (at most MAX_LOOKS); a quiet one without a prediction none."""
    clock = Clock()
    looks = SecondLooks(clock)
    busy, quiet = record(6.0, trial=1), record(6.0, trial=2)
    busy.latency = timed(6.0, contention=0.5)
    quiet.latency = timed(6.0, contention=0.49)
    looks.note(busy, lambda: b"busy")  # no prediction (before the first fit, --no-predict)
    looks.note(quiet, lambda: b"quiet")
    assert [p.record.trial for p in looks.pending] == [1]
    clock.now += LOOK_DELAY_S
    # Faster but contended again: looked at once more; then a quiet, slower look ends it
    # (with a third look still allowed: MAX_LOOKS is not what stops it).
    timer = Timer(timed(5.5, contention=1.0), timed(5.8, contention=0.0))
    assert looks.take(timer, None) is not None and busy.latency_ms == 5.5
    assert len(looks.pending) == 1
    clock.now += LOOK_DELAY_S
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("autosq.searching.second_look.MAX_LOOKS", 3)
        assert looks.take(timer, None) is not None and busy.latency_ms == 5.5
        assert not looks.pending
    assert busy.latency is not None and busy.latency.contended  # the faster timing stands
    quiet_now = record(6.0, trial=3)
    quiet_now.latency = timed(6.0, contention=0.0)
    looks.note(quiet_now, lambda: b"x", high_ms=7.0)
    predicted = record(6.0, trial=4)
    predicted.latency = timed(6.0, kind="predicted", contention=1.0)
    looks.note(predicted, lambda: b"x")
    assert not looks.pending


def test_what_stayed_contended_is_said_once_per_kind() -> None:
    busy, quiet = record(6.0, trial=1), record(5.0, trial=2, seed=1)
    busy.latency = timed(6.0, contention=0.9)
    again = busy.reused_as({})  # the same architecture sampled again: counted once
    assert busy_notes([quiet], [timed(5.0, contention=0.0), timed(4.0)]) == []
    notes = busy_notes([busy, again, quiet], [timed(5.0, contention=0.7), timed(4.0)])
    assert len(notes) == 2
    assert notes[0].startswith("1 of 2 timed candidates kept a timing taken while other "
                               "processes kept this machine's other CPUs busy")
    assert notes[1].startswith("1 of 2 confirmations ran while other processes kept")


def test_a_failing_look_is_dropped_unless_the_machine_cannot_time() -> None:
    clock = Clock()
    looks = SecondLooks(clock)
    for n in (1, 2):
        looks.note(record(9.0, trial=n), lambda: b"m", high_ms=5.0)
    clock.now += LOOK_DELAY_S
    timer = Timer(MeasurementError("ONNX Runtime failed"), TimingUnavailable("no process"))
    assert looks.take(timer, None) is None  # the trial taking it goes on with its own
    with pytest.raises(TimingUnavailable):
        looks.take(timer, None)


def test_no_look_for_a_skipped_record_and_none_changes_a_predicted_one() -> None:
    clock = Clock()
    looks = SecondLooks(clock)
    skipped = record(9.0, trial=1)
    looks.note(skipped, lambda: b"m", high_ms=5.0)
    skipped.skipped = "over the latency budget: accuracy not estimated"
    clock.now += LOOK_DELAY_S
    assert looks.take(Timer(), None) is None and not looks.pending
    predicted = record(9.0)
    assert predicted.latency is not None
    predicted.latency = replace(predicted.latency, latency_kind="predicted")
    take_look(predicted, timed(1.0))
    assert predicted.latency_ms == 9.0 and predicted.first_look_ms is None


def test_the_queue_is_bounded() -> None:
    looks = SecondLooks(Clock())
    for i in range(100):
        looks.note(record(9.0, trial=i), lambda: b"m", high_ms=5.0)
    assert len(looks.pending) == 32


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask/tell on a server storage
def test_looks_are_stored_with_the_trial_that_took_them(storage: str) -> None:
    url = storage_for(storage)
    study = optuna.create_study(study_name="s", storage=url,
                                directions=["maximize", "minimize"])
    objectives = Objectives()
    first = record(6.0, trial=None, seed=1)
    t0 = study.ask()
    study.tell(t0, write_record(t0, first, objectives))
    t1 = study.ask()  # the same architecture sampled again
    study.tell(t1, write_record(t1, first.reused_as({}), objectives))
    t2 = study.ask()  # a later trial takes the look, then fails: the look stands
    write_look(t2, t0.number, timed(4.0))
    study.tell(t2, state=optuna.trial.TrialState.FAIL)
    t3 = study.ask()
    t3.set_user_attr(LOOK_ATTR, {"trial": "x"})  # not one autosq wrote: left out
    study.tell(t3, write_record(t3, record(3.0, trial=None, seed=2), objectives))
    t4 = study.ask()  # another worker timed the same architecture; a look at it, slower
    study.tell(t4, write_record(t4, record(6.0, trial=None, seed=1), objectives))
    t5 = study.ask()
    write_look(t5, t4.number, timed(5.0))
    study.tell(t5, write_record(t5, record(3.5, trial=None, seed=3), objectives))
    assert sorted(read_looks(study.get_trials())) == [t0.number, t4.number]
    recs = {r.trial: r for r in load_records(study)}
    assert [recs[n].latency_ms for n in (0, 1, 3, 4)] == [4.0, 4.0, 3.0, 4.0]
    assert recs[0].first_look_ms == 6.0 and recs[3].first_look_ms is None
    one = load_record(study, 0)
    assert one is not None and one.latency_ms == 4.0
    assert study.trials[0].user_attrs["autosq"]["latency"]["latency_ms"] == 6.0  # as timed
