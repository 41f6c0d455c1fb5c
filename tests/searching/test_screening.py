"""Predict-first screening: the online predictor and the rule that leaves a candidate untimed
(logic with synthetic latencies; the real search path is tested in test_run.py)."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any

import pytest
from conftest import random_config
from util import timed

from autosq.accuracy import AccuracySetting
from autosq.accuracy.estimators import ProxyAccuracy
from autosq.arch.config import SqueezeNetConfig
from autosq.arch.cost import cost_of
from autosq.arch.plan import plan
from autosq.measure.features import FEATURES, latency_features
from autosq.measure.protocol import LatencyResult
from autosq.searching.evaluate import Evaluator
from autosq.searching.objectives import Objectives
from autosq.searching.records import Budget, TrialRecord
from autosq.searching.screening import MIN_FIT, SECOND_LOOK, LatencyScreen, Prediction
from autosq.searching.second_look import SecondLooks

# A device whose latency is exactly linear in the plan's terms (ms).
TRUE = {"fp32_macs_1x1": 0.02, "fp32_macs_3x3": 0.03, "fp32_macs_conv1": 0.05,
        "fp32_ops": 0.01, "const": 0.2}


def true_ms(config: SqueezeNetConfig, precision: str = "fp32") -> float:
    row = latency_features(config, precision)
    return sum(TRUE.get(name, 0.0) * v for name, v in zip(FEATURES, row, strict=True))


def record(config: SqueezeNetConfig, precision: str = "fp32", ms: float | None = None,
           accuracy: float | None = 0.5, trial: int = 0, noise: float = 0.0) -> TrialRecord:
    c = cost_of(plan(config))
    rec = TrialRecord({}, config, precision, c.params, c.macs, c.size_mb(precision),
                      c.peak_mem_mb, {"size_mb": -1.0}, search_accuracy=accuracy,
                      search_accuracy_kind="proxy", trial=trial)
    if ms is not None:
        rec.latency = timed(ms * (1 + noise))
    return rec


def configs(n: int, seed: int = 0) -> list[SqueezeNetConfig]:
    rng = random.Random(seed)
    return [random_config(rng, input_size=64, num_classes=10, bypass="none")
            for _ in range(n)]


def trained_screen(budget: Budget, n: int = 30, noise: float = 0.0,
                   objectives: str = "accuracy,latency") -> LatencyScreen:
    screen = LatencyScreen(budget, "dev", Objectives.parse(objectives))
    rng = random.Random(1)
    for i, cfg in enumerate(configs(n)):
        screen.add(record(cfg, ms=true_ms(cfg), trial=i, accuracy=0.1,
                          noise=rng.uniform(-noise, noise)))
    return screen


def test_no_prediction_before_enough_timed_samples() -> None:
    screen = LatencyScreen(Budget(5.0, 100.0), "dev", Objectives())
    cfgs = configs(MIN_FIT)
    for i, cfg in enumerate(cfgs[:-1]):
        screen.add(record(cfg, ms=true_ms(cfg), trial=i))
    assert screen.predict(record(cfgs[0])) is None
    screen.add(record(cfgs[-1], ms=true_ms(cfgs[-1])))
    assert screen.predict(record(cfgs[0])) is not None


def test_predictions_of_an_exactly_linear_device_are_exact() -> None:
    screen = trained_screen(Budget(5.0, 1000.0))
    for cfg in configs(10, seed=9):
        p = screen.predict(record(cfg))
        assert p is not None
        assert p.latency_ms == pytest.approx(true_ms(cfg), rel=1e-3)
        assert p.low_ms <= p.latency_ms
    assert screen.predictor is not None and screen.predictor.cv_worst < 1e-3


def test_clearly_over_the_budget_is_not_timed_and_near_it_is() -> None:
    cfgs = configs(40, seed=5)
    lats = sorted(true_ms(c) for c in cfgs)
    budget_ms = lats[len(lats) // 2]
    screen = trained_screen(Budget(5.0, budget_ms))
    for cfg in cfgs:
        p = screen.predict(record(cfg))
        assert p is not None
        why = screen.skip_reason(record(cfg, accuracy=None), p)
        if true_ms(cfg) > budget_ms * 1.01:
            assert why == "predicted over the latency budget"
        elif true_ms(cfg) < budget_ms * 0.99:
            assert why is None


@pytest.mark.parametrize("objectives", ["accuracy,latency", "accuracy,latency,size",
                                        "accuracy,latency,memory"])
def test_dominated_only_with_room_to_spare(objectives: str) -> None:
    screen = trained_screen(Budget(5.0, 1e6), objectives=objectives)
    best = min(configs(30), key=true_ms)  # the fastest timed one
    cfgs = configs(30, seed=7)
    slow = max(cfgs, key=true_ms)
    fast_rec = record(best, ms=true_ms(best), accuracy=0.9, trial=99)
    screen.add(fast_rec)
    cand = record(slow, accuracy=0.5)
    cand.size_mb = fast_rec.size_mb + 1.0  # larger, heavier, less accurate, much slower
    cand.peak_mem_mb = fast_rec.peak_mem_mb + 1.0
    p = screen.predict(cand)
    assert p is not None and p.low_ms > 1.2 * true_ms(best)
    assert screen.skip_reason(cand, p) == "predicted dominated by trial 99"
    assert screen.skip_reason(replace(cand, search_accuracy=0.95), p) is None  # more accurate
    # Smaller (or lighter) saves it only when that is an objective; a budget is not.
    smaller = screen.skip_reason(replace(cand, size_mb=fast_rec.size_mb - 0.5), p)
    lighter = screen.skip_reason(replace(cand, peak_mem_mb=fast_rec.peak_mem_mb - 0.5), p)
    assert (smaller is None) == objectives.endswith("size")
    assert (lighter is None) == objectives.endswith("memory")
    near = replace(p, low_ms=true_ms(best) * 1.1)  # within the screen's margin: timed
    assert screen.skip_reason(cand, near) is None


def test_a_noisy_predictor_allows_less() -> None:
    exact = trained_screen(Budget(5.0, 100.0))
    noisy = trained_screen(Budget(5.0, 100.0), noise=0.3)
    cfg = configs(1, seed=11)[0]
    pe, pn = exact.predict(record(cfg)), noisy.predict(record(cfg))
    assert pe is not None and pn is not None
    assert pn.low_ms / pn.latency_ms < 0.9 < pe.low_ms / pe.latency_ms


def test_an_unseen_precision_and_early_stopped_timings_teach_nothing() -> None:
    screen = trained_screen(Budget(5.0, 100.0))
    cfg = configs(1, seed=3)[0]
    assert screen.predict(record(cfg, "int8")) is None  # no int8 graph was timed
    n = len(screen.rows)
    early = record(cfg, ms=500.0)
    assert early.latency is not None
    early.latency = replace(early.latency, over_budget=True)
    screen.add(early)
    assert len(screen.rows) == n


class CountingTimer:
    kind = "measured"
    threads = 1

    def __init__(self) -> None:
        self.calls = 0

    def time(self, onnx_bytes: bytes, budget_ms: float | None = None) -> LatencyResult:
        self.calls += 1
        return timed(5.0)


class ScriptedTimer(CountingTimer):
    """Answers the given latencies in turn."""

    def __init__(self, *ms: float) -> None:
        super().__init__()
        self.ms = list(ms)

    def time(self, onnx_bytes: bytes, budget_ms: float | None = None) -> LatencyResult:
        self.calls += 1
        return timed(self.ms.pop(0))


class Scorer:
    kind = "proxy"

    def __init__(self, expensive: bool) -> None:
        self.expensive = expensive
        self.calls = 0

    def score(self, config: Any, seed: int) -> tuple[float, dict[str, Any]]:
        self.calls += 1
        return 0.5, {}


@pytest.mark.parametrize("expensive", [False, True])
def test_evaluator_leaves_a_predicted_over_budget_candidate_untimed(expensive: bool) -> None:
    screen = trained_screen(Budget(5.0, 0.25))  # every candidate is clearly over
    timer, scorer = CountingTimer(), Scorer(expensive)
    ev = Evaluator(timer, Budget(5.0, 0.25), scorer, 64, 10,  # type: ignore[arg-type]
                   screen, timing="screen")
    cfg = configs(1, seed=4)[0]
    values = {**cfg.to_dict(), "precision": "fp32"}
    rec = ev.evaluate(values)
    assert timer.calls == 0
    assert rec.timing == "predicted" and rec.untimed_reason == "predicted over the latency budget"
    assert rec.latency is not None and rec.latency.latency_kind == "predicted"
    assert rec.constraints["latency_ms"] > 0 and not rec.feasible
    if expensive:  # nothing to gain from training a model that cannot fit
        assert scorer.calls == 0 and rec.skipped and rec.search_accuracy is None
    else:
        assert scorer.calls == 1 and rec.skipped is None


def exact(ms: float) -> Prediction:
    return Prediction(ms, ms, "exact")


@pytest.mark.parametrize("objectives", ["accuracy,latency", "accuracy,latency,size",
                                        "accuracy,latency,memory"])
def test_promise_ranks_what_would_add_to_the_measured_front(objectives: str) -> None:
    screen = LatencyScreen(Budget(5.0), "dev", Objectives.parse(objectives))
    a, b, c = configs(3, seed=2)
    same = {"size_mb": 1.0, "peak_mem_mb": 1.0}  # the third objective decides nothing here
    screen.add(replace(record(a, ms=2.0, accuracy=0.5, trial=1), **same))
    screen.add(replace(record(b, ms=4.0, accuracy=0.8, trial=2), **same))
    cand = replace(record(c, accuracy=0.7), **same)
    between = screen.promise(cand, exact(3.0))  # on the front, between the two
    behind = screen.promise(cand, exact(5.0))  # trial 2 is more accurate and faster
    assert between[0] > 0 and between[1] == pytest.approx(4.0 / 3.0)
    assert behind == (0.0, pytest.approx(0.8))
    assert screen.promise(cand, exact(4.4)) > behind  # nearer to entering
    assert between > screen.promise(cand, exact(3.5)) > behind
    top = screen.promise(replace(cand, search_accuracy=0.9), exact(5.0))
    assert top[0] > 0 and math.isinf(top[1])  # more accurate than every measured one
    # The reference latency without a budget is 1.5 x the slowest member (6 ms): beyond it a
    # candidate adds no hypervolume.
    assert screen.promise(replace(cand, search_accuracy=0.9), exact(6.5))[0] == 0.0


def test_promise_over_the_latency_budget_or_dominated_with_a_third_objective_is_nothing(
        ) -> None:
    screen = LatencyScreen(Budget(5.0, 5.0), "dev", Objectives.parse("accuracy,latency,size"))
    cfgs = configs(6, seed=8)
    for i, (acc, ms, mb) in enumerate([(0.5, 2.0, 2.0), (0.8, 4.0, 1.0), (0.6, 3.0, 1.5)]):
        screen.add(replace(record(cfgs[i], ms=ms, accuracy=acc, trial=i), size_mb=mb))
    best = replace(record(cfgs[3], accuracy=0.99), size_mb=0.5)
    assert screen.promise(best, exact(4.5))[0] > 0
    assert screen.promise(best, exact(5.5)) == (0.0, 0.0)  # would not fit the 5 ms budget
    for k, mb in enumerate((1.7, 1.2, 2.5)):  # dominated by trial 1, each at a new size
        behind = replace(record(cfgs[4], accuracy=0.7), size_mb=mb)
        gain, ratio = screen.promise(behind, exact(4.0 + 0.1 * (k + 1)))
        assert gain == 0.0 and ratio < 1.0


def test_promise_with_nothing_measured_is_neutral() -> None:
    screen = LatencyScreen(Budget(5.0), "dev", Objectives())
    assert screen.promise(record(configs(1)[0], accuracy=0.5), exact(3.0)) == (0.0, math.inf)


class Described:
    kind = "val_top1"
    expensive = True

    def describe(self) -> AccuracySetting:
        return AccuracySetting(kind="val_top1")


def test_evaluator_promises_only_with_a_plan_proxy_and_a_prediction() -> None:
    budget = Budget(5.0, 1e6)
    cfg = configs(1, seed=4)[0]
    values = {**cfg.to_dict(), "precision": "fp32"}

    def evaluator(accuracy: Any, screen: LatencyScreen | None) -> Evaluator:
        return Evaluator(CountingTimer(), budget, accuracy, 64, 10,  # type: ignore[arg-type]
                         screen, timing="screen")

    assert evaluator(ProxyAccuracy("params"), trained_screen(budget)).promise(values)
    assert evaluator(ProxyAccuracy("macs"), trained_screen(budget)).promise(values)
    for accuracy in (ProxyAccuracy("synflow"), Described()):  # known only once computed
        assert evaluator(accuracy, trained_screen(budget)).promise(values) is None
    unfitted = LatencyScreen(budget, "dev", Objectives())
    assert evaluator(ProxyAccuracy("params"), unfitted).promise(values) is None
    assert evaluator(ProxyAccuracy("params"), None).promise(values) is None
    over = Evaluator(CountingTimer(), Budget(0.01, 1e6), ProxyAccuracy("params"), 64, 10,
                     trained_screen(budget), timing="screen")  # type: ignore[arg-type]
    assert over.promise(values) is None


def test_a_prediction_believes_timings_up_to_its_90th_percentile_error_or_the_floor() -> None:
    cfg = configs(1, seed=5)[0]
    exact_fit = trained_screen(Budget(5.0, 1e6)).predict(record(cfg))
    assert exact_fit is not None
    assert exact_fit.high_ms == pytest.approx(exact_fit.latency_ms * (1 + SECOND_LOOK))
    screen = trained_screen(Budget(5.0, 1e6), noise=0.4)
    noisy = screen.predict(record(cfg))
    assert noisy is not None and screen.predictor is not None
    assert screen.predictor.cv_p90 > SECOND_LOOK
    assert noisy.high_ms == pytest.approx(noisy.latency_ms * (1 + screen.predictor.cv_p90))


def test_evaluator_queues_a_timing_far_above_its_prediction_for_a_second_look() -> None:
    budget = Budget(5.0, 1e6)
    a, b = configs(2, seed=6)
    screen = trained_screen(budget)
    timer = ScriptedTimer(1.5 * true_ms(a), 1.08 * true_ms(b))  # b: within the 10% floor
    ev = Evaluator(timer, budget, Scorer(False), 64, 10,  # type: ignore[arg-type]
                   screen, timing="screen")
    ev.looks = SecondLooks(clock=lambda: 0.0)  # time stands still: never due
    first = ev.evaluate({**a.to_dict(), "precision": "fp32"})
    ev.evaluate({**b.to_dict(), "precision": "fp32"})
    assert timer.calls == 2 and [p.record for p in ev.looks.pending] == [first]
    assert ev.looks.pending[0].high_ms == pytest.approx(true_ms(a) * (1 + SECOND_LOOK))
    assert ev.second_look() is None  # not due yet: a look straight after falls in the burst


def test_timings_before_the_first_fit_are_checked_against_the_first_prediction() -> None:
    """No bound before the predictor's first fit: those timings wait, and the first candidate
    with a prediction checks them all against theirs (one 60% too slow is queued)."""
    budget = Budget(1e3, 1e6)  # every candidate fits: each is timed
    screen = LatencyScreen(budget, "dev", Objectives())
    cfgs = configs(MIN_FIT + 1, seed=7)
    slow = 3  # timed 60% above its true latency, before any prediction
    timer = ScriptedTimer(*(true_ms(c) * (1.6 if i == slow else 1.0)
                            for i, c in enumerate(cfgs)))
    ev = Evaluator(timer, budget, Scorer(False), 64, 10,  # type: ignore[arg-type]
                   screen, timing="screen")
    ev.looks = SecondLooks(clock=lambda: 0.0)
    recs = []
    for cfg in cfgs[:MIN_FIT]:
        recs.append(ev.evaluate({**cfg.to_dict(), "precision": "fp32"}))
        assert not ev.looks.pending  # nothing to compare with yet
        screen.add(recs[-1])
    ev.evaluate({**cfgs[-1].to_dict(), "precision": "fp32"})
    assert timer.calls == MIN_FIT + 1
    assert [p.record for p in ev.looks.pending] == [recs[slow]]


def test_no_second_look_without_a_prediction() -> None:
    cfg = configs(1, seed=6)[0]
    timer = ScriptedTimer(100.0)
    ev = Evaluator(timer, Budget(5.0, 1e6), Scorer(False), 64, 10,  # type: ignore[arg-type]
                   LatencyScreen(Budget(5.0, 1e6), "dev", Objectives()), timing="screen",
                   )
    ev.screen.enabled = False  # type: ignore[union-attr]  # --no-predict: never checked
    rec = ev.evaluate({**cfg.to_dict(), "precision": "fp32"})
    assert timer.calls == 1 and rec.latency_ms == 100.0 and not ev.looks.pending
    assert not ev._unchecked
