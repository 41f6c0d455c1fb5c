"""The Optuna samplers a search can use, by name, and the seeds they take."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autosq.errors import UsageError

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "nsga2", "random")
# Seeds of the sampler and of each trial's training: Optuna and numpy take 32-bit seeds.
MAX_SEED = 2**32 - 1


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler called ``name`` (tpe, nsga2 or random)."""
    import optuna

    if name == "tpe":
        # constant_liar: workers sharing the study do not sample the points others are
        # evaluating (no effect with one worker).
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=10,
                                          constant_liar=True)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=16)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UsageError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")


__all__ = ["MAX_SEED", "SAMPLERS", "make_sampler"]
