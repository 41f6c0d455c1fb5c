"""The default sampler's local search around the front: mutants stay in the space and within
what ``fits`` allows, the most promising of several is chosen when promise can be told,
parents come from the feasible front, and a seed gives one sequence."""

from __future__ import annotations

import math
import random
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from autosq.searching.mutation import (
    DRAFTS,
    FrontMutationSampler,
    crowding,
    feasible_front,
    mutate,
)
from autosq.searching.samplers import make_sampler

SPACE = {
    "base_e": IntDistribution(32, 256, step=16),
    "freq": IntDistribution(1, 4),
    "pct_3x3": FloatDistribution(0.1, 0.9),
    "sr": FloatDistribution(0.0625, 1.0, log=True),
    "bypass": CategoricalDistribution(["none", "simple", "complex"]),
}


def test_a_mutant_changes_something_and_stays_in_the_space() -> None:
    rng = random.Random(0)
    parent = {"base_e": 256, "freq": 1, "pct_3x3": 0.9, "sr": 0.0625, "bypass": "none"}
    changed = 0
    for _ in range(500):
        child = mutate(parent, SPACE, rng)
        assert child != parent
        for name, dist in SPACE.items():
            assert dist._contains(dist.to_internal_repr(child[name])), (name, child[name])
        assert (child["base_e"] - 32) % 16 == 0
        changed += sum(child[n] != parent[n] for n in SPACE)
    assert changed / 500 < 2.0  # one or two parameters at a time: a local step
    assert mutate(parent, SPACE, random.Random(7)) == mutate(parent, SPACE, random.Random(7))


def test_float_steps_span_from_a_tenth_of_the_range_to_a_thousandth() -> None:
    # A parent a hair under the size budget is improved only by a small step; a tenth of the
    # range almost always overshoots.
    rng = random.Random(0)
    parent = {"base_e": 128, "freq": 2, "pct_3x3": 0.5, "sr": 0.25, "bypass": "none"}
    steps = [abs(child["pct_3x3"] - 0.5) / 0.8 for child in
             (mutate(parent, SPACE, rng) for _ in range(3000)) if child["pct_3x3"] != 0.5]
    assert len(steps) > 300
    small = sum(s < 0.005 for s in steps) / len(steps)
    large = sum(s > 0.05 for s in steps) / len(steps)
    assert 0.3 < small < 0.7 and 0.04 < large < 0.2, (small, large)  # 0.04, 0.62 at one scale


def test_crowding_keeps_the_ends() -> None:
    points = [(0.0, 4.0), (1.0, 3.0), (2.0, 1.0), (4.0, 0.0)]
    d = crowding(points)
    assert d[0] == d[3] == math.inf
    assert d[1] == pytest.approx(2 / 4 + 3 / 4) and d[2] == pytest.approx(3 / 4 + 3 / 4)
    assert crowding([(0.0, 1.0), (1.0, 0.0)]) == [math.inf, math.inf]


def _study(rows: list[tuple[float, float, float]]) -> optuna.Study:
    """A two-objective study (maximise, minimise) with one constraint per trial."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    for i, (acc, lat, over) in enumerate(rows):
        trial = optuna.trial.create_trial(
            params={"x": i}, distributions={"x": IntDistribution(0, 100)}, values=[acc, lat],
            system_attrs={"constraints:size_mb": over})
        study.add_trial(trial)
    return study


def test_the_front_is_feasible_and_non_dominated() -> None:
    study = _study([(0.9, 5.0, 0.0), (0.8, 2.0, -1.0), (0.7, 3.0, 0.0),  # dominated by #1
                    (0.99, 1.0, 0.5),  # best of all, but over a budget
                    (0.5, 1.5, -0.1)])
    front = feasible_front(study.get_trials(), study.directions)
    assert sorted(t.params["x"] for t in front) == [0, 1, 4]


def _toy(trial: optuna.Trial) -> tuple[float, float]:
    """Bigger is more accurate and slower; over 150 does not fit."""
    e = trial.suggest_int("e", 32, 256, step=16)
    f = trial.suggest_float("f", 0.1, 0.9)
    size = e * (0.5 + f)
    trial.set_constraint("size_mb", size - 150.0)
    return math.log(size), size / 100.0 + f


def _sequence(seed: int, fits: Any = None, n: int = 40, name: str = "tpe"
              ) -> list[dict[str, Any]]:
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=make_sampler(name, seed, fits))
    study.optimize(_toy, n_trials=n)
    return [t.params for t in study.trials]


def test_the_default_sampler_mixes_in_mutants_of_the_front() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = make_sampler("tpe", 3)
    assert isinstance(sampler, FrontMutationSampler)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(_toy, n_trials=60)
    mutants = 0
    for t in study.trials[20:]:
        earlier = [u.params for u in study.trials[:t.number]]
        near = [p for p in earlier if sum(p[k] != t.params[k] for k in p) == 1
                and abs(p["e"] - t.params["e"]) <= 32]
        mutants += bool(near)
    assert mutants >= 5  # a third of 40 trials, give or take the seed
    assert not isinstance(make_sampler("tpe-only", 3), FrontMutationSampler)


def test_same_seed_same_sequence_and_fits_is_obeyed() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    assert _sequence(5) == _sequence(5)
    assert _sequence(5) != _sequence(6)
    accepted: list[dict[str, Any]] = []

    def small_only(params: dict[str, Any]) -> bool:
        ok = params["e"] * (0.5 + params["f"]) <= 100.0
        if ok:
            accepted.append(dict(params))
        return ok

    seq = _sequence(5, small_only)
    assert accepted and all(p in seq for p in accepted)
    # Every mutant refused: TPE suggests every trial, as TPE alone would.
    assert _sequence(5, lambda params: False) == _sequence(5, name="tpe-only")


def _mutants(promise: Any, drafts: int = DRAFTS
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One mutant trial's choice on a study of _toy trials, and the params ``promise`` saw."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(_toy, n_trials=30)
    seen: list[dict[str, Any]] = []

    def spy(params: dict[str, Any]) -> Any:
        seen.append(dict(params))
        return promise(params)

    sampler = FrontMutationSampler(optuna.samplers.RandomSampler(seed=2), 4,
                                   fits=lambda p: p["e"] * (0.5 + p["f"]) <= 150.0,
                                   promise=spy, drafts=drafts)
    space = {"e": IntDistribution(32, 256, step=16), "f": FloatDistribution(0.1, 0.9)}
    chosen = sampler._mutant(study, space, random.Random(3))
    assert chosen is not None
    return chosen, seen


def test_the_most_promising_of_several_mutants_is_chosen() -> None:
    # Promise: the smaller the better (a stand-in for a predicted gain).
    chosen, seen = _mutants(lambda p: (-p["e"] * (0.5 + p["f"]), 0.0), drafts=6)
    assert len(seen) == 6 and all(p["e"] * (0.5 + p["f"]) <= 150.0 for p in seen)
    best = max(seen, key=lambda p: -p["e"] * (0.5 + p["f"]))
    assert chosen == best
    assert len({(p["e"], p["f"]) for p in seen}) > 1  # a real choice was made
    # Ties go to the first drafted, so the choice is reproducible.
    first, seen = _mutants(lambda p: (0.0, 0.0))
    assert first == seen[0]


@pytest.mark.parametrize("promised", [True, False])
def test_once_a_mutant_is_chosen_by_promise_the_guided_share_applies(promised: bool) -> None:
    """With no mutants at first (share 0) and all of them once guided (guided share 1): a
    choice by promise switches; a first mutant without a promise does not."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = FrontMutationSampler(optuna.samplers.TPESampler(seed=0, multivariate=True), 7,
                                   share=0.0, guided_share=1.0, warmup=10,
                                   promise=(lambda p: (float(p["e"]), 0.0)) if promised
                                   else (lambda p: None))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(_toy, n_trials=20)
    assert not sampler.guided
    space = {"e": IntDistribution(32, 256, step=16), "f": FloatDistribution(0.1, 0.9)}
    assert sampler._mutant(study, space, random.Random(0)) is not None
    assert sampler.guided == promised
    drawn: list[int] = []
    mutant = sampler._mutant

    def counted(*args: Any) -> Any:
        drawn.append(1)
        return mutant(*args)

    sampler._mutant = counted  # type: ignore[method-assign]
    study.optimize(_toy, n_trials=10)
    assert len(drawn) == (10 if promised else 0)


def test_without_a_promise_the_first_mutant_that_fits_is_the_trial() -> None:
    chosen, seen = _mutants(lambda p: None)
    assert len(seen) == 1 and chosen == seen[0]


def test_a_later_mutant_without_a_promise_is_passed_over() -> None:
    calls: list[int] = []

    def every_other(params: dict[str, Any]) -> Any:
        calls.append(1)
        return None if len(calls) % 2 == 0 else (float(params["e"]), 0.0)

    chosen, seen = _mutants(every_other, drafts=4)
    promised = seen[0::2]
    assert len(promised) == 4 and chosen == max(promised, key=lambda p: p["e"])
