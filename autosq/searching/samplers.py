"""The Optuna samplers a search can use, by name, and the seeds they take."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from autosq.errors import UsageError

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "tpe-only", "nsga2", "random")
# Seeds of the sampler and of each trial's training: Optuna and numpy take 32-bit seeds.
MAX_SEED = 2**32 - 1


def make_sampler(name: str, seed: int | None,
                 fits: Callable[[dict[str, Any]], bool] | None = None,
                 promise: Callable[[dict[str, Any]], Any] | None = None
                 ) -> optuna.samplers.BaseSampler:
    """The Optuna sampler called ``name``: ``tpe`` (TPE, a share of the trials mutants of the
    front: :mod:`autosq.searching.mutation`; ``fits`` says whether a mutant is worth a trial,
    ``promise`` what it would add to the front),
    ``tpe-only`` (Optuna's TPE alone), ``nsga2`` or ``random``."""
    import optuna

    if name in ("tpe", "tpe-only"):
        # constant_liar: workers sharing the study do not sample the points others are
        # evaluating (no effect with one worker).
        tpe = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=10,
                                         constant_liar=True)
        if name == "tpe-only":
            return tpe
        from autosq.searching.mutation import FrontMutationSampler

        return FrontMutationSampler(tpe, seed, fits, promise=promise)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=16)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UsageError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")


__all__ = ["MAX_SEED", "SAMPLERS", "make_sampler"]
