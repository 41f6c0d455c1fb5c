"""TPE with a local search around the front: the default sampler.

TPE models the whole space, and in a few hundred trials it rarely lands right at the edges that
make a front valuable: the most accurate candidate that still fits the size budget, the
fastest one. Evolutionary searches (NSGA-II, Archai's) get there by mutating the front. This
sampler does both: from trial :data:`WARMUP` on, each trial is, with probability
:data:`SHARE` (:data:`GUIDED_SHARE` once mutants are chosen by promise, below), a mutant of a
member of the front so far instead of a TPE suggestion.

- The front: the completed, feasible trials (every constraint <= 0) that no other dominates on
  the study's objectives, as stored.
- The parent: half the time the most accurate member (mutants that fit walk it up to the
  budget's edge, where the most accurate model that fits is: a (1+1) hill climb), else a
  binary tournament on the crowding distance (NSGA-II's rule), so the ends of the front
  (infinite distance) and its sparse stretches are mutated most.
- The mutant: each parameter changed with probability 1/n (at least one): an integer by one or
  two steps to a value in range, a float by a normal step of a tenth of its range down to a
  thousandth (the scale drawn log-uniformly for each mutant: small steps let the hill climb
  close in on the budget's edge, where a tenth of a range almost always overshoots; reflected
  at the bounds, so a parent at a bound moves away from it; log-scaled for a log
  distribution), a categorical to another choice. A mutant that ``fits`` rejects (over a
  size or memory budget, or an architecture the study has already) is drawn again, up to
  :data:`TRIES` times; then TPE suggests the trial.
- The choice: when the search can tell before timing what a mutant would add to the front (its
  accuracy comes from its plan and its latency is predicted:
  :meth:`~autosq.searching.evaluate.Evaluator.promise`), up to :data:`DRAFTS` mutants that fit
  (of :data:`TRIES` drawn) are compared and the one expected to add most is the trial (a promise
  cost 0.34 ms, median of 706 in a 300-trial search of the peer benchmark's space on the
  project's VM, 2026-12-04; a screen about 0.05 s); otherwise the first that fits. Once a mutant
  has been chosen this way, half the trials after the warm-up are mutants
  (:data:`GUIDED_SHARE`), and every try that fits is compared: simulated on the peer benchmark's
  space (bench/sampler_bench.py, 450 trials, seeds 0-5), the hypervolume's mean rose from 0.8314
  (a third, 8 drafts) to 0.8360, and its spread over the seeds fell to a third
  (docs/benchmarks.md#sampler_bench).

Which trials are mutants, and what they are, follows from the seed, the trial number and (for
the switch to :data:`GUIDED_SHARE`) when this process first chose a mutant by promise, so a
search is as reproducible as with TPE alone; a resumed study or another worker starts again at
:data:`SHARE`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from autosq.searching.pareto import Point, pareto_front

WARMUP = 20  # trials before the first mutant: TPE's start-up and a first front
SHARE = 1 / 3  # of the trials after the warm-up
GUIDED_SHARE = 1 / 2  # the same, once a mutant has been chosen by promise
TOP_SHARE = 0.5  # of the mutants: of the most accurate member, the rest by tournament
TRIES = 20
FLOAT_STEP = 0.1  # a float's largest step: a normal deviate of this fraction of its range
STEP_DECADES = 2.0  # a mutant's step is FLOAT_STEP scaled by 10**-U(0, STEP_DECADES)

DRAFTS = 20  # mutants that fit drawn for one trial when they can be compared by promise
Fits = Callable[[dict[str, Any]], bool]
# What a mutant is expected to add to the front (larger first); None: no way to tell.
Promise = Callable[[dict[str, Any]], Any]


class FrontMutationSampler(optuna.samplers.BaseSampler):
    """``base`` (TPE) for most trials, a mutant of the front for a share of them (see the
    module docstring). ``fits(params)`` says whether a mutant is worth a trial;
    ``promise(params)``, what it is expected to add to the front (comparable values, larger
    first, or None when it cannot tell): then the most promising of ``drafts`` mutants that
    fit (of :data:`TRIES` drawn) is the trial (the first that fits when the first has no
    promise; a later one without a promise is passed over), and from then on ``guided_share``
    of the trials are mutants instead of ``share``."""

    def __init__(self, base: optuna.samplers.BaseSampler, seed: int | None,
                 fits: Fits | None = None, share: float | None = None, warmup: int = WARMUP,
                 promise: Promise | None = None, drafts: int | None = None,
                 guided_share: float | None = None) -> None:
        self.base = base
        self.seed = 0 if seed is None else seed
        self.fits = fits
        self.promise = promise
        # None: the module's values as they are now (bench/sampler_bench.py varies them)
        self.drafts = DRAFTS if drafts is None else drafts
        self.share = SHARE if share is None else share
        self.guided_share = GUIDED_SHARE if guided_share is None else guided_share
        self.warmup = warmup
        self.guided = False  # a mutant has been chosen by promise

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if search_space and trial.number >= self.warmup:
            rng = random.Random(f"{self.seed}:{trial.number}")
            if rng.random() < (self.guided_share if self.guided else self.share):
                mutant = self._mutant(study, search_space, rng)
                if mutant is not None:
                    return mutant
        return self.base.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()

    def _mutant(self, study: optuna.Study, space: dict[str, BaseDistribution],
                rng: random.Random) -> dict[str, Any] | None:
        front = feasible_front(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                               study.directions)
        parents = [t for t in front if all(k in t.params for k in space)]
        if not parents:
            return None
        points = [minimised(t.values, study.directions) for t in parents]
        distance = crowding(points)
        top = min(range(len(parents)), key=lambda i: (points[i], i))
        drafts: list[tuple[Any, int, dict[str, Any]]] = []
        for _ in range(TRIES):
            a, b = rng.randrange(len(parents)), rng.randrange(len(parents))
            parent = parents[top if rng.random() < TOP_SHARE
                             else a if distance[a] >= distance[b] else b]
            changed = mutate(parent.params, space, rng)
            params = {**parent.params, **changed}
            if self.fits is not None and not self.fits(params):
                continue
            promise = None if self.promise is None else self.promise(params)
            if promise is None:
                if not drafts:
                    return changed  # nothing to choose by: the first that fits
                continue  # no way to compare this one with those drawn already
            drafts.append((promise, -len(drafts), changed))
            if len(drafts) == self.drafts:
                break
        if not drafts:
            return None
        self.guided = True
        return max(drafts, key=lambda d: d[:2])[2]


def minimised(values: Sequence[float], directions: Sequence[Any]) -> tuple[float, ...]:
    """A trial's values with every objective turned into one to minimise."""
    return tuple(-v if d == optuna.study.StudyDirection.MAXIMIZE else v
                 for v, d in zip(values, directions, strict=True))


def feasible_front(trials: Sequence[FrozenTrial], directions: Sequence[Any]
                   ) -> list[FrozenTrial]:
    """The completed, feasible trials no other dominates (stored values, every objective)."""
    ok = [t for t in trials if t.values is not None and all(v <= 0 for v in
                                                             t.constraints.values())]
    return [ok[i] for i in pareto_front([_as_point(minimised(t.values, directions))
                                         for t in ok])]


def _as_point(v: tuple[float, ...]) -> Point:
    """Minimised values as :mod:`autosq.searching.pareto` ranks them: its first value is
    maximised (so negated back), the others minimised, three in all (padded with 0)."""
    padded = (*v, 0.0, 0.0)
    return -padded[0], padded[1], padded[2]


def crowding(points: Sequence[tuple[float, ...]]) -> list[float]:
    """NSGA-II's crowding distance of each point within ``points`` (one front): the ends of
    each objective are infinite."""
    n = len(points)
    out = [0.0] * n
    if n < 3:
        return [math.inf] * n
    for k in range(len(points[0])):
        order = sorted(range(n), key=lambda i: points[i][k])
        span = points[order[-1]][k] - points[order[0]][k]
        out[order[0]] = out[order[-1]] = math.inf
        if span <= 0:
            continue
        for j in range(1, n - 1):
            out[order[j]] += (points[order[j + 1]][k] - points[order[j - 1]][k]) / span
    return out


def mutate(params: dict[str, Any], space: dict[str, BaseDistribution],
           rng: random.Random) -> dict[str, Any]:
    """``params`` (restricted to ``space``) with each parameter changed with probability
    1/n, at least one; see the module docstring."""
    names = sorted(space)
    chosen = [n for n in names if rng.random() < 1 / len(names)] or [rng.choice(names)]
    scale = FLOAT_STEP * 10 ** -rng.uniform(0.0, STEP_DECADES)
    out = {n: params[n] for n in names}
    for name in chosen:
        out[name] = _step(params[name], space[name], rng, scale)
    return out


def _step(value: Any, dist: BaseDistribution, rng: random.Random, scale: float) -> Any:
    if isinstance(dist, CategoricalDistribution):
        others = [c for c in dist.choices if c != value]
        return rng.choice(others) if others else value
    if isinstance(dist, IntDistribution):
        if dist.log:
            moved = round(math.exp(math.log(value) + rng.gauss(0.0, scale) *
                                   math.log(dist.high / dist.low)))
            return int(min(dist.high, max(dist.low, moved)))
        # a step or two, to a value in range (at a bound, away from it)
        inside = [value + dist.step * k for k in (-2, -1, 1, 2)
                  if dist.low <= value + dist.step * k <= dist.high]
        return int(rng.choice(inside)) if inside else value
    if isinstance(dist, FloatDistribution):
        low, high, at = ((math.log(dist.low), math.log(dist.high), math.log(value)) if dist.log
                         else (dist.low, dist.high, value))
        shifted = at + rng.gauss(0.0, scale) * (high - low)
        # reflected at a bound, so a parent at the bound moves away from it
        shifted = low + abs(high - abs(high - shifted) - low)
        shifted = math.exp(shifted) if dist.log else shifted
        if dist.step is not None:
            shifted = dist.low + round((shifted - dist.low) / dist.step) * dist.step
        return float(min(dist.high, max(dist.low, shifted)))
    return value


__all__ = ["DRAFTS", "GUIDED_SHARE", "SHARE", "TRIES", "FrontMutationSampler", "crowding",
           "feasible_front", "minimised", "mutate"]
