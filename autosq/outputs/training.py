"""The training behind an export: which data, which budget, from which start and seed.

An export keeps what the study learnt: a study searched with data records that data (and its
pretrained source and teacher, when it had them), and its trials are trained on it again unless
the caller gives other data, another source or teacher, or asks for the untrained network. The
budget is four times the one behind the trial's accuracy (the search's recipe, or its
refinement; a fine-tune's when the export starts from pretrained weights the study did not use),
from the trial's own seed; a budget the caller gives that is smaller than what the search gave
each candidate is said plainly. Without data, a pretrained start is exported as inherited.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from autosq.errors import DataError, UsageError

if TYPE_CHECKING:
    from autosq.accuracy.datasets import Dataset
    from autosq.accuracy.device import TrainDevice
    from autosq.accuracy.distill import Teacher
    from autosq.accuracy.train import OnStep, Recipe
    from autosq.arch.pretrained import Pretrained
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
    init: Pretrained | None = None
    teacher: Teacher | None = None


def searched_recipe(settings: SearchSettings, record: TrialRecord,
                    finetune: bool = False) -> Recipe:
    """The recipe behind a trial's accuracy: its refinement's, else the search's (a study whose
    accuracy was not trained stand-alone gets the default recipe, or the fine-tune recipe when
    ``finetune`` and the study did not start from pretrained weights)."""
    from autosq.accuracy.estimators import recipe_of
    from autosq.accuracy.train import Recipe, finetune_recipe

    acc = settings.accuracy
    if finetune and not acc.pretrained:
        base = finetune_recipe()
    else:
        base = recipe_of(acc) if acc.kind == "val_top1" else Recipe()
    if record.refined is not None:
        return replace(base, epochs=record.refined.epochs)
    return base


def plan_training(settings: SearchSettings, record: TrialRecord, data: str | None,
                  epochs: float | None, untrained: bool, pretrained: str | None = None,
                  teacher: str | None = None) -> ExportTraining:
    """Which data, start, teacher and recipe an export of ``record`` trains with (see the
    module docstring). Raises :class:`DataError` when the study's own data can no longer be
    loaded."""
    from autosq.accuracy.datasets import load_dataset
    from autosq.accuracy.estimators import init_of, teacher_of
    from autosq.accuracy.train import Recipe

    if untrained and (data is not None or epochs is not None or pretrained is not None
                      or teacher is not None):
        raise UsageError("untrained exports the seeded initial weights: it does not take data, "
                         "epochs, pretrained or teacher")
    number = record.trial
    config = record.config
    if untrained:
        return ExportTraining(None, None, "none", "untrained: seeded initial weights, as asked")
    init = init_of(settings.accuracy, pretrained)
    origin = "given" if data is not None else "study" if settings.accuracy.data else "none"
    if origin == "none":
        if teacher is not None or epochs is not None:
            raise UsageError("teacher and epochs set a training: they need data (the study "
                             "was searched without)")
        if init is not None:
            return ExportTraining(None, None, "none", f"inherited from {init.spec} as it is, "
                                  "not fine-tuned (no data)", init)
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
    if init is not None:
        dataset = dataset.renormalised(init.normalisation)
    guide = teacher_of(settings.accuracy, dataset.num_classes, config.input_size, teacher)
    searched = searched_recipe(settings, record, finetune=init is not None)
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
    start = f"{init.spec}'s weights" if init is not None else f"trial {number}'s seed"
    guided = f", distilled from {guide.spec}" if guide is not None else ""
    note = (f"trained on {where} {spec} for {recipe.steps_for(n):,} steps ({budget}) from "
            f"{start}{guided}")
    return ExportTraining(dataset, recipe, origin, note, init, guide)


@dataclass
class Shipped:
    """The network an export writes, with what its card says about it: its accuracy (and how
    it was obtained), the inputs the file is checked on (validation images, else random ones),
    how inputs are normalised, and where its weights came from."""

    model: Any
    accuracy: dict[str, Any]
    inputs: Any  # np.ndarray: at most 64 validation images (or random inputs without data)
    data: Dataset | None  # the data it was trained and is scored on
    normalisation: dict[str, Any] | None
    lineage: dict[str, Any]


def ship(training: ExportTraining, record: TrialRecord, seed: int,
         threads: int | None, device: TrainDevice | None = None,
         on_step: OnStep | None = None) -> Shipped:
    """Build the network of ``record`` as ``training`` says: trained (fine-tuned from its
    inherited weights, distilled; ``on_step`` sees the steps), inherited as it is, or
    seeded."""
    import numpy as np

    from autosq.arch.model import build

    config = record.config
    data = training.data
    lineage: dict[str, Any] = {"seed": seed}
    if training.teacher is not None:
        lineage["teacher"] = training.teacher.describe()
    norm = None
    if data is not None:
        from autosq.accuracy.train import fit

        assert training.recipe is not None
        model, result = fit(config, data, training.recipe, seed=seed, on_step=on_step,
                            threads=threads, device=device, init=training.init,
                            teacher=training.teacher,
                            evaluate_start=training.init is not None)
        accuracy: dict[str, Any] = {
            "value": result.val_top1, "kind": "val_top1", "data": data.name,
            "epochs": result.epochs, "steps": result.steps, "threads": result.threads,
            "seed": seed, "n_train": len(data.train), "n_val": len(data.val),
            "device": result.device, "augmentation": result.augmentation,
            "note": training.note, "trial_accuracy": record.accuracy,
            "trial_accuracy_kind": record.accuracy_kind}
        if result.start_top1 is not None:
            accuracy["before_training"] = result.start_top1
        if result.init is not None:
            lineage["pretrained"] = result.init
        norm = data.normalisation.to_dict()
        return Shipped(model, accuracy, data.sample("val", 64)[0].numpy(), data, norm, lineage)
    if training.init is not None:
        from autosq.arch.pretrained import inherited_model

        model, inherited = inherited_model(config, training.init, seed)
        lineage["pretrained"] = inherited.to_dict()
        norm = training.init.normalisation.to_dict()
    else:
        model = build(config, seed=seed)
    inputs = np.random.default_rng(seed).standard_normal(
        (64, 3, config.input_size, config.input_size)).astype(np.float32)
    return Shipped(model.eval(), {"value": None, "kind": None,
                                  "note": f"{training.note} (seed {seed})"},
                   inputs, None, norm, lineage)
