"""Multi-fidelity: train the most promising front members longer and recompute the front.

Optuna cannot prune a multi-objective study, so the search trains every feasible candidate
briefly. Refining trains the K front members nearest the knee for more epochs; their new
validation top-1 is stored with the study (:func:`~autosq.searching.records.write_refinement`) and
replaces the short-budget accuracy wherever the study's records are read, so ``autosq front``
shows it too.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from autosq.errors import StudyError, UsageError
from autosq.searching.pareto import knee_order
from autosq.searching.records import Refinement, read_settings, write_refinement
from autosq.searching.result import build_result

if TYPE_CHECKING:
    import optuna

    from autosq.accuracy.train import OnStep


@dataclass(frozen=True)
class RefineChange:
    """One refined member: its accuracy before and after the longer training."""

    trial: int
    before: float
    after: float
    epochs: float
    before_kind: str = "val_top1"


def refine_front(study: optuna.Study, storage: str, top: int, epochs: float | None = None,
                 on_train: OnStep | None = None, threads: int | None = None,
                 train_device: str | None = None,
                 pretrained: str | None = None) -> list[RefineChange]:
    """Train the ``top`` front members nearest the knee for ``epochs`` (default: 4 times the
    search's training budget); returns what changed.

    Each member trains from the seed it was searched with, from the study's pretrained source
    and with its teacher when it had them (``pretrained``: start from this source instead),
    and its new accuracy is stored as soon as it is known (Ctrl-C keeps the members already
    refined).
    """
    from autosq.accuracy.datasets import load_dataset
    from autosq.accuracy.estimators import init_of, recipe_of, teacher_of
    from autosq.accuracy.train import Recipe, finetune_recipe, train

    if top < 1:
        raise UsageError(f"top must be >= 1; got {top}")
    settings = read_settings(study)
    acc = settings.accuracy
    if acc.data is None:
        raise StudyError(f"study {study.study_name!r} estimated accuracy with a proxy: there is "
                         "nothing to refine (search with data to train candidates)")
    if epochs is not None and not (math.isfinite(epochs) and epochs > 0):
        raise UsageError(f"epochs must be a finite number > 0; got {epochs!r}")
    init = init_of(acc, pretrained)
    # A supernet study had no stand-alone recipe: refine from the default one.
    searched = (recipe_of(acc) if acc.kind == "val_top1" and (pretrained is None)
                else finetune_recipe() if init is not None else Recipe())
    recipe = searched.longer(4.0) if epochs is None else replace(searched, epochs=epochs)
    result = build_result(study, storage)
    members = result.members
    data = load_dataset(acc.data, settings.input_size)
    if init is not None:
        data = data.renormalised(init.normalisation)
    teacher = teacher_of(acc, data.num_classes, settings.input_size)
    from autosq.accuracy.device import resolve_device

    device = resolve_device(train_device)
    changes = []
    for i in knee_order([m.point for m in members], result.reference)[:top]:
        member = members[i]
        record = member.record
        seed = int(record.accuracy_details.get("seed", member.trial))
        out = train(record.config, data, recipe, seed=seed, on_step=on_train, threads=threads,
                    device=device,
                    init=init, teacher=teacher)
        write_refinement(study, member.trial, Refinement(
            accuracy=out.val_top1, epochs=out.epochs, details=out.to_dict(), at=time.time()))
        changes.append(RefineChange(member.trial, member.accuracy, out.val_top1, out.epochs,
                                    record.accuracy_kind or "val_top1"))
    return changes
