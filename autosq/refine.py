"""Multi-fidelity: train the most promising front members longer and recompute the front.

Optuna cannot prune a multi-objective study, so the search trains every feasible candidate
briefly. Refining trains the K front members nearest the knee for more epochs; their new
validation top-1 is stored with the study (user attribute ``autosq_refined``) and replaces the
short-budget accuracy wherever the front is computed, so ``autosq front`` shows it too.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from autosq.errors import StudyError

if TYPE_CHECKING:
    import optuna

    from autosq.accuracy import TrainCallback

REFINED_ATTR = "autosq_refined"


def refine_front(study: optuna.Study, storage: str, top: int, epochs: float,
                 on_train: TrainCallback | None = None) -> list[dict[str, Any]]:
    """Train the ``top`` front members nearest the knee for ``epochs``; returns what changed."""
    from autosq.arch import SqueezeNetConfig
    from autosq.data import load_dataset
    from autosq.front import knee_order
    from autosq.result import build_result
    from autosq.study import STUDY_ATTR
    from autosq.train import Recipe, train

    settings = study.user_attrs[STUDY_ATTR]
    acc = settings["accuracy"]
    if acc.get("kind") != "val_top1":
        raise StudyError(f"study {study.study_name!r} estimated accuracy with a proxy: there is "
                         "nothing to refine (search with --data to train candidates)")
    result = build_result(study, storage)
    rows = result.rows
    order = knee_order([(r["accuracy"], r["latency_ms"], r["size_mb"]) for r in rows])
    data = load_dataset(acc["data"], settings["input_size"])
    recipe = Recipe(epochs=epochs, batch_size=acc.get("batch_size", 64))
    refined = dict(study.user_attrs.get(REFINED_ATTR, {}))
    changes = []
    for i in order[:top]:
        row = rows[i]
        rec = next(t.user_attrs["autosq"] for t in study.get_trials(deepcopy=False)
                   if t.number == row["trial"])
        config = SqueezeNetConfig.from_dict(rec["config"])
        out = train(config, data, recipe, seed=row["trial"], on_step=on_train)
        refined[str(row["trial"])] = {"accuracy": out.val_top1, "epochs": epochs,
                                      "details": out.to_dict(), "at": time.time()}
        changes.append({"trial": row["trial"], "before": row["accuracy"],
                        "after": out.val_top1, "epochs": epochs})
        study.set_user_attr(REFINED_ATTR, refined)  # after each, so Ctrl-C keeps the finished
    return changes
