"""The training behind an export: which data, which budget, from which seed.

An export keeps what the study learnt: a study searched with data records that data, and its
trials are trained on it again unless the caller gives other data or asks for the untrained
network. The budget is four times the one behind the trial's accuracy (the search's recipe, or
its refinement), from the trial's own seed; a budget the caller gives that is smaller than what
the search gave each candidate is said plainly.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from autosq.errors import DataError, UsageError

if TYPE_CHECKING:
    from autosq.accuracy.datasets import Dataset
    from autosq.accuracy.train import Recipe
    from autosq.searching.records import SearchSettings, TrialRecord

# The final model trains this many times the budget behind the trial's accuracy.
FINAL_FACTOR = 4.0


@dataclass(frozen=True)
class ExportTraining:
    """What an export trains on and for how long (``data`` None: nothing is trained)."""

    data: Dataset | None
    recipe: Recipe | None
    origin: str  # "given", "study" or "none"
    note: str


def searched_recipe(settings: SearchSettings, record: TrialRecord) -> Recipe:
    """The recipe behind a trial's accuracy: its refinement's, else the search's (a study whose
    accuracy was not trained stand-alone gets the default recipe)."""
    from autosq.accuracy.estimators import recipe_of
    from autosq.accuracy.train import Recipe

    base = recipe_of(settings.accuracy) if settings.accuracy.kind == "val_top1" else Recipe()
    if record.refined is not None:
        return replace(base, epochs=record.refined.epochs)
    return base


def plan_training(settings: SearchSettings, record: TrialRecord, data: str | None,
                  epochs: float | None, untrained: bool) -> ExportTraining:
    """Which data and recipe an export of ``record`` trains with (see the module docstring).
    Raises :class:`DataError` when the study's own data can no longer be loaded."""
    from autosq.accuracy.datasets import load_dataset
    from autosq.accuracy.train import Recipe

    if untrained and (data is not None or epochs is not None):
        raise UsageError("untrained exports the seeded initial weights: it does not take data "
                         "or epochs")
    number = record.trial
    config = record.config
    if untrained:
        return ExportTraining(None, None, "none", "untrained: seeded initial weights, as asked")
    origin = "given" if data is not None else "study" if settings.accuracy.data else "none"
    if origin == "none":
        return ExportTraining(None, None, "none", "untrained: seeded initial weights (the study "
                              "estimated accuracy without data); pass data to train")
    spec = data if data is not None else str(settings.accuracy.data)
    try:
        dataset = load_dataset(spec, config.input_size)
    except DataError as exc:
        if origin == "given":
            raise
        raise DataError(f"the study was searched on {spec}, which cannot be loaded now ({exc}); "
                        "give the data again (same classes) or export it untrained") from None
    if dataset.num_classes != config.num_classes:
        raise UsageError(f"{spec} has {dataset.num_classes} classes but trial {number} was "
                         f"searched for {config.num_classes}")
    searched = searched_recipe(settings, record)
    n = len(dataset.train_y)
    if epochs is None:
        recipe = searched.longer(FINAL_FACTOR)
        budget = f"{FINAL_FACTOR:g}x the search's budget"
    else:
        recipe = Recipe(epochs=epochs, batch_size=searched.batch_size)
        budget = f"{epochs:g} epochs, as asked"
        if recipe.steps_for(n) < searched.steps_for(n):
            warnings.warn(
                f"{epochs:g} epochs are {recipe.steps_for(n):,} steps on {n:,} training images, "
                f"fewer than the {searched.steps_for(n):,} the search trained each candidate "
                f"with: expect a lower accuracy than trial {number}'s", stacklevel=2)
    where = "the study's data" if origin == "study" else "the given data"
    note = (f"trained on {where} {spec} for {recipe.steps_for(n):,} steps ({budget}) from trial "
            f"{number}'s seed")
    return ExportTraining(dataset, recipe, origin, note)
