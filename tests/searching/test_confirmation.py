"""Confirmation sized by evidence and the whole-run time budget: the rule and the rounds with
synthetic latencies (a stand-in for the timer, logic only), then the real path (a search with
``timeout``, real ONNX Runtime timing and storage)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import random_config
from util import FAST, timed

from autosq.arch.cost import cost_of
from autosq.arch.plan import plan
from autosq.measure.protocol import LatencyResult, TimingProtocol
from autosq.searching.confirmation import (
    ERROR_FLOOR,
    Retiming,
    ScreenError,
    TimeBudget,
    confirm_rounds,
    confirm_seconds,
    could_enter,
)
from autosq.searching.objectives import Objectives
from autosq.searching.pareto import pareto_front
from autosq.searching.records import TrialRecord

OBJ = Objectives()
PROTOCOL = TimingProtocol.confirm()


def candidates(n: int, seed: int) -> list[TrialRecord]:
    """n distinct architectures with random accuracy and screened latency (a dense front:
    latency grows with accuracy, with scatter)."""
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        cfg = random_config(rng, input_size=32, num_classes=10)
        if cfg.arch_id in seen:
            continue
        seen.add(cfg.arch_id)
        c = cost_of(plan(cfg))
        acc = rng.random()
        rec = TrialRecord({}, cfg, "fp32", c.params, c.macs, c.size_mb("fp32"), c.peak_mem_mb,
                          {"size_mb": -1.0}, latency=timed(1 + 9 * acc * rng.uniform(0.9, 1.1)),
                          search_accuracy=acc, search_accuracy_kind="proxy", timing="screen",
                          trial=len(out))
        out.append(rec)
    return out


def truth_of(recs: Sequence[TrialRecord], low: float, high: float,
             seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    return {r.key: (r.latency_ms or 0.0) * rng.uniform(low, high) for r in recs}


def truth_front(recs: Sequence[TrialRecord], truth: dict[str, float]) -> set[int]:
    pts = [(r.accuracy or 0.0, truth[r.key], 0.0) for r in recs]
    return {recs[i].trial or 0 for i in pareto_front(pts)}


def final_front(recs: Sequence[TrialRecord], ret: Retiming) -> set[int]:
    pts = [(r.accuracy or 0.0, ret.trials[r.trial].latency_ms if r.trial in ret.trials
            else r.latency_ms or 0.0, 0.0) for r in recs]
    return {recs[i].trial or 0 for i in pareto_front(pts)}


@pytest.mark.parametrize("seed", range(6))
def test_rounds_give_the_front_that_timing_everything_gives(seed: int) -> None:
    """With the screen's error within the floor, the rounds end with exactly the front that
    confirming every candidate gives, and confirm fewer than all of them."""
    recs = candidates(60, seed)
    truth = truth_of(recs, 1 - ERROR_FLOOR * 0.99, 1.06, seed)
    asked: list[int] = []

    def measure(batch: Sequence[TrialRecord]) -> list[LatencyResult]:
        asked.extend(r.trial or 0 for r in batch)
        return [timed(truth[r.key]) for r in batch]

    ret = confirm_rounds(recs, OBJ, None, PROTOCOL, measure)
    assert final_front(recs, ret) == truth_front(recs, truth)
    assert len(asked) == len(set(asked)) < len(recs)  # each at most once, not all
    assert ret.rounds[0] == len(pareto_front([r.point(OBJ) for r in recs]))  # exact front first
    assert ret.error is not None and ret.error.n == len(asked)
    assert ret.error.margin >= ERROR_FLOOR


def test_the_margin_follows_the_measured_error() -> None:
    """A screen that was 10% off makes the rounds reach further than the floor."""
    recs = candidates(60, 1)
    wide = truth_of(recs, 0.88, 1.0, 1)
    ret = confirm_rounds(recs, OBJ, None, PROTOCOL, lambda b: [timed(wide[r.key]) for r in b])
    assert ret.error is not None and ret.error.margin > 0.08
    narrow = confirm_rounds(recs, OBJ, None, PROTOCOL,
                            lambda b: [timed(r.latency_ms or 0.0) for r in b])
    assert narrow.error is not None and narrow.error.margin == ERROR_FLOOR
    assert sum(ret.rounds) > sum(narrow.rounds)


def test_over_budget_after_confirmation_lets_others_in() -> None:
    recs = candidates(40, 2)
    fast = min(recs, key=lambda r: r.latency_ms or 0.0)
    truth = {r.key: (r.latency_ms or 0.0) * (5.0 if r is fast else 1.0) for r in recs}
    budget = (fast.latency_ms or 0.0) * 2
    ret = confirm_rounds(recs, OBJ, budget, PROTOCOL, lambda b: [timed(truth[r.key]) for r in b])
    assert fast.trial in ret.trials and ret.trials[fast.trial or 0].latency_ms > budget


def test_a_deadline_confirms_what_fits_and_says_what_was_left() -> None:
    recs = candidates(60, 3)
    now = [0.0]

    def measure(batch: Sequence[TrialRecord]) -> list[LatencyResult]:
        now[0] += 0.5 * len(batch)
        return [timed(r.latency_ms or 0.0) for r in batch]

    unbounded = confirm_rounds(recs, OBJ, None, PROTOCOL, measure, clock=lambda: now[0])
    now[0] = 0.0
    first = unbounded.rounds[0]
    ret = confirm_rounds(recs, OBJ, None, PROTOCOL, measure, deadline=0.4 * first * 0.5,
                         clock=lambda: now[0])
    assert ret.rounds and ret.rounds[0] < first and ret.left == first - ret.rounds[0]
    assert "time budget ran out" in ret.describe()


def test_a_round_cut_short_is_followed_by_another_while_time_remains() -> None:
    """Rounds are started under their bound (:func:`confirm_seconds`); when the models take
    less, the time left confirms more of what was cut, not nothing."""
    recs = candidates(60, 3)
    now = [0.0]

    def measure(batch: Sequence[TrialRecord]) -> list[LatencyResult]:
        now[0] += 0.3 * confirm_seconds(batch, PROTOCOL)  # far under the bound
        return [timed(r.latency_ms or 0.0) for r in batch]

    first = confirm_rounds(recs, OBJ, None, PROTOCOL, measure, clock=lambda: now[0])
    now[0] = 0.0
    deadline = 0.8 * confirm_seconds([recs[i] for i in pareto_front(
        [r.point(OBJ) for r in recs])], PROTOCOL)
    ret = confirm_rounds(recs, OBJ, None, PROTOCOL, measure, deadline=deadline,
                         clock=lambda: now[0])
    assert len(ret.rounds) > 1 and ret.rounds[0] < first.rounds[0]
    assert now[0] <= deadline
    assert ret.left > 0 and sum(ret.rounds) < sum(first.rounds)  # said, not hidden
    assert f"{ret.left} candidates" in ret.describe()


def test_int8_members_are_confirmed_with_their_fp32_form() -> None:
    recs = candidates(20, 4)
    best = max(recs, key=lambda r: r.accuracy or 0.0)
    c = cost_of(plan(best.config))
    int8 = TrialRecord({}, best.config, "int8", c.params, c.macs, c.size_mb("int8"),
                       c.peak_mem_mb, {"size_mb": -1.0}, latency=timed(0.5),
                       search_accuracy=best.accuracy, search_accuracy_kind="proxy",
                       timing="screen", trial=99)
    batches: list[list[int]] = []

    def measure(batch: Sequence[TrialRecord]) -> list[LatencyResult]:
        batches.append([r.trial or 0 for r in batch])
        return [timed(r.latency_ms or 0.0) for r in batch]

    confirm_rounds([*recs, int8], OBJ, None, PROTOCOL, measure)
    together = next(b for b in batches if 99 in b)
    assert best.trial in together  # dominated by its int8 form, yet timed beside it


def test_could_enter_orders_by_how_likely() -> None:
    recs = candidates(30, 5)
    front = [recs[i] for i in pareto_front([r.point(OBJ) for r in recs])]
    rest = [r for r in recs if r not in front]
    near = could_enter(rest, [r.point(OBJ) for r in front], OBJ, 0.5)
    assert near == could_enter(rest, [r.point(OBJ) for r in front], OBJ, 0.5)
    assert len(could_enter(rest, [r.point(OBJ) for r in front], OBJ, 0.0)) == 0
    assert len(near) <= len(rest)


def test_screen_error_and_retiming_stored_forms() -> None:
    err = ScreenError.measure([1.0, 0.99, 1.02, 0.95, 1.1])
    assert err.low == 0.95 and err.high == 1.1 and err.n == 5
    assert err.margin == pytest.approx(0.05)  # the worst overstatement seen
    assert ScreenError.from_dict(err.to_dict()) == err
    assert ScreenError.measure([]).margin == ERROR_FLOOR
    ret = Retiming(at=1.0, trials={3: timed(2.0)}, error=err, rounds=[1], seconds=2.0,
                   estimated_s=1.0)
    back = Retiming.from_dict(ret.to_dict())
    assert back.trials[3].latency_ms == 2.0 and back.error == err and back.cost_scale == 2.0
    old = Retiming.from_dict({"at": 1.0, "trials": {"3": timed(2.0).to_dict()}})
    assert old.error is None and old.cost_scale is None and "re-timed" in old.describe()



def test_time_budget_stops_sampling_in_time_to_confirm() -> None:
    recs = candidates(40, 6)
    plan_ = TimeBudget(100.0, OBJ, PROTOCOL)
    reserve = plan_.reserve(recs)
    assert reserve > plan_.result_seconds
    assert not plan_.should_stop(recs, now=0.0)
    assert plan_.should_stop(recs, now=100.0 - reserve + 0.01)
    # Trials are timed between calls: a long one brings the stop forward.
    plan = TimeBudget(100.0, OBJ, PROTOCOL)
    assert not plan.should_stop(recs, now=0.0)
    assert not plan.should_stop(recs, now=10.0)
    assert plan.next_trial() == 10.0
    assert plan.should_stop(recs, now=100.0 - reserve - 5.0)
    # A reserve computed before any candidate was in is not trusted for long.
    fresh = TimeBudget(100.0, OBJ, PROTOCOL)
    assert not fresh.should_stop([], now=0.0)
    assert fresh.should_stop(recs, now=100.0 - reserve + 0.01)
    no_confirm = TimeBudget(100.0, OBJ, PROTOCOL, confirming=False)
    assert no_confirm.reserve(recs) == no_confirm.result_seconds


def test_the_time_to_show_the_result_grows_with_the_trials_run() -> None:
    plan_ = TimeBudget(100.0, OBJ, PROTOCOL, result_seconds=1.0, per_trial=0.5)
    for now in (0.0, 1.0, 2.0):
        plan_.should_stop([], now=now)
    assert plan_.result_seconds == 2.0  # two trials between three calls
    assert plan_.confirm_by == 98.0


def test_a_search_with_a_whole_run_timeout_stops_and_confirms(tmp_path: Path) -> None:
    """The real path: without a count the time alone decides, sampling stops on its own in
    time to confirm the front, and the study records the screen's error."""
    from autosq.searching.records import read_retiming
    from autosq.searching.run import run_search
    from autosq.searching.storage import load_study

    url = f"sqlite:///{tmp_path / 's.db'}"
    to_run: list[int | None] = []
    result = run_search(device="host", max_mb=0.2, max_ms=50.0, space="tiny", timeout=8.0,
                        input_size=32, num_classes=10, storage=url, protocol=FAST,
                        seed=3, sampler="random", on_start=lambda _s, n: to_run.append(n))
    assert to_run == [None]  # as many trials as the time allows
    assert result.counts.trials > 0
    assert result.members and result.confirmation is not None
    stored = read_retiming(load_study(url, result.study_name))
    assert stored is not None and stored.rounds == result.confirmation.rounds
    # Either the front was confirmed, or what was left is said (a slow machine).
    confirmed = [m.timing == "confirmed" for m in result.members]
    assert all(confirmed) or result.confirmation.left > 0
    assert (result.screen_error is not None) == bool(result.confirmation.rounds)
