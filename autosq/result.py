"""From a study's trials to its result: the feasible Pareto front, re-timed together, with
its recommended member and hypervolume. The search and ``autosq front`` both end here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autosq.front import KNEE_RULE, Point, hypervolume, knee, pareto_front
from autosq.refine import REFINED_ATTR
from autosq.study import STUDY_ATTR, TRIAL_ATTR, is_feasible, objectives_of

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from autosq.latency import Timer

RETIMED_ATTR = "autosq_retimed"
JSON_KEYS = (
    "trial",
    "config",
    "accuracy",
    "accuracy_kind",
    "latency_ms",
    "latency_kind",
    "size_mb",
    "params",
    "macs",
    "peak_mem_mb",
    "feasible",
    "recommended",
)


@dataclass
class SearchResult:
    """A study's outcome. ``rows`` follow the JSON contract; :attr:`front` is a DataFrame."""

    study_name: str
    storage: str
    settings: dict[str, Any]
    rows: list[dict[str, Any]]
    hypervolume: float
    reference: Point
    counts: dict[str, int]
    retimed: str
    nearest_miss: str | None = None
    notes: list[str] = field(default_factory=list)
    cloud: list[tuple[float, float, float, bool]] = field(default_factory=list)
    """(accuracy, latency_ms, size_mb, feasible) of every measured trial, for plots."""

    @property
    def front(self) -> pd.DataFrame:
        """The feasible Pareto front, one row per member (config flattened into columns)."""
        import pandas as pd

        flat = [{**{k: v for k, v in r.items() if k != "config"}, **r["config"]} for r in self.rows]
        return pd.DataFrame(flat)

    @property
    def recommended(self) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["recommended"]), None)

    def to_json(self) -> list[dict[str, Any]]:
        """The JSON contract: one object per front member."""
        return self.rows


def records(study: optuna.Study) -> list[tuple[int, dict[str, Any]]]:
    """(trial number, autosq record) of every complete trial."""
    return [
        (t.number, t.user_attrs[TRIAL_ATTR])
        for t in study.get_trials(deepcopy=False)
        if t.state.name == "COMPLETE" and TRIAL_ATTR in t.user_attrs
    ]


def _refined(rec: dict[str, Any], refined: dict[str, Any] | None) -> dict[str, Any]:
    """The record with its refined (longer-trained) accuracy, when it has one."""
    if refined is None:
        return rec
    details = {**rec.get("accuracy_details", {}), "epochs": refined["epochs"], "refined": True}
    return {**rec, "accuracy": refined["accuracy"], "accuracy_details": details}


def _row(number: int, rec: dict[str, Any], latency: dict[str, Any]) -> dict[str, Any]:
    return {
        "trial": number,
        "config": {**rec["values"], "precision": rec["precision"]},
        "accuracy": rec["accuracy"],
        "accuracy_kind": rec["accuracy_kind"],
        "latency_ms": latency["latency_ms"],
        "latency_kind": latency["latency_kind"],
        "p90_ms": latency["p90_ms"],
        "size_mb": rec["size_mb"],
        "params": rec["params"],
        "macs": rec["macs"],
        "peak_mem_mb": rec["peak_mem_mb"],
        "arch_id": rec["arch_id"],
        "train_epochs": rec.get("accuracy_details", {}).get("epochs"),
        "refined": bool(rec.get("accuracy_details", {}).get("refined")),
        "feasible": True,
        "recommended": False,
    }


def _reference(settings: dict[str, Any], recs: list[dict[str, Any]], accuracy_kind: str) -> Point:
    """Worst acceptable values for the hypervolume: 0 accuracy (or the lowest proxy score
    measured), the latency budget (or 1.1 x the slowest measured), the size budget."""
    budget = settings["budget"]
    measured = [r for r in recs if r.get("latency") and r.get("accuracy") is not None]
    if accuracy_kind == "val_top1" or not measured:
        acc_ref = 0.0
    else:
        acc_ref = min(r["accuracy"] for r in measured)
    lat_ref = budget.get("max_ms") or 1.1 * max(
        (r["latency"]["latency_ms"] for r in measured), default=1.0
    )
    return acc_ref, float(lat_ref), float(budget["max_mb"])


def nearest_miss(settings: dict[str, Any], recs: list[dict[str, Any]]) -> str:
    """How far the closest candidates were from each budget, when none fits."""
    if not recs:
        return "no candidate was evaluated"
    budget = settings["budget"]
    parts = []
    smallest = min(r["size_mb"] for r in recs)
    parts.append(
        f"the smallest candidate was {smallest:.2f} MiB (budget {budget['max_mb']:g}"
        f" MiB{_over(smallest, budget['max_mb'])})"
    )
    lats = [r["latency"]["latency_ms"] for r in recs if r.get("latency")]
    if budget.get("max_ms") is not None and lats:
        fastest = min(lats)
        parts.append(
            f"the fastest timed was {fastest:.1f} ms (budget {budget['max_ms']:g} ms"
            f"{_over(fastest, budget['max_ms'])})"
        )
    if budget.get("max_ram_mb") is not None:
        least = min(r["peak_mem_mb"] for r in recs)
        parts.append(
            f"the least peak memory was {least:.2f} MiB (budget "
            f"{budget['max_ram_mb']:g} MiB{_over(least, budget['max_ram_mb'])})"
        )
    return "nothing fits: " + "; ".join(parts)


def _over(value: float, limit: float) -> str:
    return f", {value - limit:.2f} over" if value > limit else ", fits"


def build_result(study: optuna.Study, storage: str, retime: Timer | None = None) -> SearchResult:
    """The study's feasible front. With ``retime``, the members are timed again together,
    interleaved, and the front recomputed with those latencies (and stored with the study)."""
    settings = study.user_attrs[STUDY_ATTR]
    all_recs = records(study)
    refined = study.user_attrs.get(REFINED_ATTR, {})
    all_recs = [(n, _refined(r, refined.get(str(n)))) for n, r in all_recs]
    feasible = [(n, r) for n, r in all_recs if is_feasible(r)]
    idx = pareto_front([objectives_of(r) for _, r in feasible])
    members = [feasible[i] for i in idx]
    latencies = {n: r["latency"] for n, r in members}
    notes: list[str] = []
    retimed = "not re-timed: latencies as measured during the search"
    if retime is not None and members:
        latencies.update(_retime(study, retime, members))
        retimed = f"re-timed together, interleaved ({len(members)} models)"
    else:
        stored = study.user_attrs.get(RETIMED_ATTR)
        if stored and set(stored["trials"]) == {str(n) for n, _ in members}:
            latencies.update({int(k): v for k, v in stored["trials"].items()})
            retimed = (
                f"re-timed together, interleaved, at "
                f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(stored['at']))}"
            )
    max_ms = settings["budget"].get("max_ms")
    kept = []
    for n, r in members:
        lat = latencies[n]["latency_ms"]
        if max_ms is not None and lat > max_ms:
            notes.append(
                f"trial {n} dropped: re-timed at {lat:.1f} ms, over the {max_ms:g} ms budget"
            )
            continue
        kept.append((n, r))
    points = [(r["accuracy"], latencies[n]["latency_ms"], r["size_mb"]) for n, r in kept]
    final = [kept[i] for i in pareto_front(points)]
    rows = [_row(n, r, latencies[n]) for n, r in final]
    rows.sort(key=lambda row: row["latency_ms"])
    pts: list[Point] = [(row["accuracy"], row["latency_ms"], row["size_mb"]) for row in rows]
    best = knee(pts)
    if best is not None:
        rows[best]["recommended"] = True
    kind = rows[0]["accuracy_kind"] if rows else settings["accuracy"].get("kind", "proxy")
    reference = _reference(settings, [r for _, r in all_recs], kind)
    import optuna

    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = {
        "trials": len(states),
        "complete": sum(s == optuna.trial.TrialState.COMPLETE for s in states),
        "failed": sum(s == optuna.trial.TrialState.FAIL for s in states),
        "skipped": sum(bool(r.get("skipped")) for _, r in all_recs),
        "feasible": len(feasible),
        "front": len(rows),
    }
    return SearchResult(
        study_name=study.study_name,
        storage=storage,
        settings=settings,
        rows=rows,
        hypervolume=hypervolume(pts, reference),
        reference=reference,
        counts=counts,
        retimed=retimed,
        nearest_miss=None if rows else nearest_miss(settings, [r for _, r in all_recs]),
        notes=notes,
        cloud=[
            (*objectives_of(r), is_feasible(r))
            for _, r in all_recs
            if r.get("latency") and r.get("accuracy") is not None
        ],
    )


def _retime(
    study: optuna.Study, timer: Timer, members: list[tuple[int, dict[str, Any]]]
) -> dict[int, dict[str, Any]]:
    """Time the members together and store the latencies with the study."""
    from autosq.arch import SqueezeNetConfig
    from autosq.evaluate import export_model

    models = [
        export_model(SqueezeNetConfig.from_dict(r["config"]), r["precision"], seed=n)
        for n, r in members
    ]
    results = timer.time_many(models)
    out = {n: res.to_dict() for (n, _), res in zip(members, results, strict=True)}
    study.set_user_attr(
        RETIMED_ATTR, {"at": time.time(), "trials": {str(n): v for n, v in out.items()}}
    )
    return out


__all__ = ["JSON_KEYS", "KNEE_RULE", "SearchResult", "build_result"]
