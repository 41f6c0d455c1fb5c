"""From a study's trials to its result: the feasible Pareto front, confirmed together
(:mod:`autosq.searching.confirmation`), with its recommended member, the members shown first
(:mod:`autosq.searching.thinning`) and its hypervolume. The search and ``autosq front`` both
end here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from autosq.compress.estimate import DC_PRECISIONS
from autosq.searching.confirmation import Retiming, ScreenError, distinct
from autosq.searching.objectives import Objectives
from autosq.searching.pareto import KNEE_RULE, Point, hypervolume, knee, pareto_front
from autosq.searching.records import (
    SearchSettings,
    TrialRecord,
    load_records,
    read_retiming,
    read_settings,
)
from autosq.searching.second_look import busy_notes
from autosq.searching.storage import DEFAULT_STORAGE, load_study, redact
from autosq.searching.thinning import best_under, thin

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from autosq.measure import Timer
    from autosq.measure.protocol import TimingProtocol

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
    "shown",
)


@dataclass
class FrontMember:
    """One member of a study's feasible Pareto front, with the latency it was ranked by and how
    that was timed (``timing``: ``confirmed`` when the front was re-timed together, else the
    search's own ``screen`` or ``full`` timing)."""

    record: TrialRecord
    latency_ms: float
    latency_kind: str
    p90_ms: float
    timing: str = "full"
    recommended: bool = False
    primary: bool = True  # on the accuracy-latency front (what is shown first)
    objectives: Objectives = field(default_factory=Objectives)
    shown: bool = True  # among the members shown without --all (thinning.THIN_RULE)
    # int8 only, when the same architecture's fp32 was timed in the study: (trial, latency)
    fp32: tuple[int, float] | None = None

    @property
    def slower_than_fp32(self) -> bool | None:
        """True when this int8 member runs slower than its architecture's fp32 form timed in
        the same study; None when there is no such pair."""
        return None if self.fp32 is None else self.latency_ms > self.fp32[1]

    @property
    def trial(self) -> int:
        """The Optuna trial number."""
        assert self.record.trial is not None
        return self.record.trial

    @property
    def accuracy(self) -> float:
        """The accuracy objective (refined when it was)."""
        assert self.record.accuracy is not None
        return self.record.accuracy

    @property
    def point(self) -> Point:
        """The member as the front ranks it: ``(accuracy, latency_ms, third objective)``."""
        return self.objectives.point(self.accuracy, self.latency_ms, self.record.size_mb,
                                     self.record.peak_mem_mb)

    @property
    def config(self) -> dict[str, Any]:
        """The sampled metaparameters and the precision."""
        return {**self.record.values, "precision": self.record.precision}

    def to_json(self) -> dict[str, Any]:
        """The JSON contract (:data:`JSON_KEYS`, and a few more)."""
        r = self.record
        return {
            "trial": self.trial,
            "config": self.config,
            "accuracy": self.accuracy,
            "accuracy_kind": r.accuracy_kind,
            "latency_ms": self.latency_ms,
            "latency_kind": self.latency_kind,
            "p90_ms": self.p90_ms,
            "timing": self.timing,
            "search_latency_ms": None if r.latency is None else r.latency.latency_ms,
            "search_timing": r.timing,
            "slower_than_fp32": self.slower_than_fp32,
            "fp32_trial": None if self.fp32 is None else self.fp32[0],
            "size_mb": r.size_mb,
            "params": r.params,
            "macs": r.macs,
            "peak_mem_mb": r.peak_mem_mb,
            "arch_id": r.arch_id,
            "train_epochs": r.train_epochs,
            "refined": r.refined is not None,
            "size_kind": "predicted" if r.precision in DC_PRECISIONS else "counted",
            "compressed": None if r.precision not in DC_PRECISIONS else {
                "bits": DC_PRECISIONS[r.precision],
                "note": "size predicted from the plan (exact after `autosq compress`); "
                        "latency and accuracy are the uncompressed network's"},
            "feasible": True,
            "recommended": self.recommended,
            "primary": self.primary,
            "shown": self.shown,
        }


class CloudPoint(NamedTuple):
    """A measured trial for plots: its objectives and whether it fits the budget."""

    accuracy: float
    latency_ms: float
    size_mb: float
    feasible: bool


@dataclass
class Counts:
    """How a study's trials ended."""

    trials: int = 0
    complete: int = 0
    failed: int = 0
    skipped: int = 0
    feasible: int = 0
    front: int = 0
    screened: int = 0
    predicted: int = 0


@dataclass
class SearchResult:
    """A study's outcome: the feasible front (``members``, by latency), how it was obtained,
    and every measured trial (``cloud``) for plots. :attr:`front` is a pandas DataFrame."""

    study_name: str
    storage: str
    settings: SearchSettings
    members: list[FrontMember]
    hypervolume: float
    reference: Point
    counts: Counts
    retimed: str
    nearest_miss: str | None = None
    notes: list[str] = field(default_factory=list)
    cloud: list[CloudPoint] = field(default_factory=list)
    confirmation: Retiming | None = None

    @property
    def screen_error(self) -> ScreenError | None:
        """The search's latencies against the confirmed ones, measured in this study."""
        return None if self.confirmation is None else self.confirmation.error

    @property
    def shown(self) -> list[FrontMember]:
        """The members shown first (at most :data:`~autosq.searching.thinning.SHOWN`)."""
        return [m for m in self.members if m.shown]

    @property
    def front(self) -> pd.DataFrame:
        """The feasible Pareto front, one row per member (config flattened into columns)."""
        import pandas as pd

        rows = []
        for m in self.members:
            row = m.to_json()
            rows.append({**{k: v for k, v in row.items() if k != "config"}, **row["config"]})
        return pd.DataFrame(rows)

    @property
    def recommended(self) -> FrontMember | None:
        """The knee member (:data:`KNEE_RULE`), or None when nothing fits."""
        return next((m for m in self.members if m.recommended), None)

    def to_json(self, everything: bool = True) -> list[dict[str, Any]]:
        """The JSON contract: one object per front member (only the members shown first
        unless ``everything``); each carries the study's measured screen error too."""
        error = None if self.screen_error is None else self.screen_error.to_dict()
        return [{**m.to_json(), "screen_error": error} for m in self.members
                if everything or m.shown]


def _reference(settings: SearchSettings, recs: list[TrialRecord], accuracy_kind: str) -> Point:
    """Worst acceptable values for the hypervolume: 0 accuracy (or the lowest proxy score
    measured), the latency budget (or 1.1 x the slowest measured), and for a third objective
    its budget (or 1.1 x the largest measured); 1 when there is none (every point has 0)."""
    budget = settings.budget
    measured = [r for r in recs if r.measured]
    scores = [r.accuracy for r in measured if r.accuracy is not None]
    acc_ref = 0.0 if accuracy_kind in ("val_top1", "supernet") or not scores else min(scores)
    lat_ref = budget.max_ms or 1.1 * max((r.latency_ms or 0.0 for r in measured), default=1.0)
    third = settings.objectives.third
    if third == "size":
        third_ref = budget.max_mb
    elif third == "memory":
        third_ref = budget.max_ram_mb or 1.1 * max((r.peak_mem_mb for r in measured),
                                                   default=1.0)
    else:
        third_ref = 1.0
    return acc_ref, float(lat_ref), float(third_ref)


def _over(value: float, limit: float) -> str:
    return f", {value - limit:.2f} over" if value > limit else ", fits"


def nearest_miss(settings: SearchSettings, recs: list[TrialRecord]) -> str:
    """How far the closest candidates were from each budget, when none fits."""
    if not recs:
        return ("no candidate was evaluated: the search ended before any trial finished (a "
                "--timeout or --trials-timeout shorter than one trial?); the same command with "
                "more time continues the study")
    budget = settings.budget
    smallest = min(r.size_mb for r in recs)
    parts = [f"the smallest candidate was {smallest:.2f} MiB (budget {budget.max_mb:g}"
             f" MiB{_over(smallest, budget.max_mb)})"]
    lats = [r.latency_ms for r in recs if r.latency_ms is not None]
    if budget.max_ms is not None and lats:
        fastest = min(lats)
        parts.append(f"the fastest timed was {fastest:.1f} ms (budget {budget.max_ms:g} ms"
                     f"{_over(fastest, budget.max_ms)})")
    if budget.max_ram_mb is not None:
        least = min(r.peak_mem_mb for r in recs)
        parts.append(f"the least peak memory was {least:.2f} MiB (budget "
                     f"{budget.max_ram_mb:g} MiB{_over(least, budget.max_ram_mb)})")
    return "nothing fits: " + "; ".join(parts)


Latency = tuple[float, str, float, str]  # median ms, kind, p90 ms, timing


def _latencies(feasible: list[TrialRecord], retiming: Retiming | None) -> dict[int, Latency]:
    """Each feasible trial's best-known latency: confirmed when it was, else the search's."""
    confirmed = {} if retiming is None else retiming.trials
    out: dict[int, Latency] = {}
    for r in feasible:
        assert r.latency is not None and r.trial is not None
        lat = confirmed.get(r.trial)
        out[r.trial] = ((lat.latency_ms, lat.latency_kind, lat.p90_ms, "confirmed")
                        if lat is not None else
                        (r.latency.latency_ms, r.latency.latency_kind, r.latency.p90_ms,
                         r.timing or "full"))
    return out


def _pair_fp32(members: list[FrontMember], recs: list[TrialRecord],
               retiming: Retiming | None) -> None:
    """Give each int8 member the latency of its architecture's fp32 form, when the study timed
    it (the confirmed one when it was confirmed; the confirmation times the two together)."""
    confirmed = {} if retiming is None else retiming.trials
    fp32: dict[str, tuple[int, float]] = {}
    for r in recs:
        if (r.precision == "fp32" and r.latency is not None and r.timing != "predicted"
                and r.trial is not None and r.arch_id not in fp32):
            lat = confirmed.get(r.trial, r.latency)
            fp32[r.arch_id] = (r.trial, lat.latency_ms)
    for m in members:
        if m.record.precision == "int8":
            m.fp32 = fp32.get(m.record.arch_id)


def _mark_shown(members: list[FrontMember], max_ms: float | None) -> None:
    """Thin what is shown first: the accuracy-latency front and the recommended member."""
    first = [m for m in members if m.primary or m.recommended]
    points = [m.point for m in first]
    keep = [i for i, m in enumerate(first) if m.recommended]
    if max_ms is not None and (best := best_under(points, max_ms)) is not None:
        keep.append(best)
    chosen = set(thin([(p[0], p[1], 0.0) for p in points], keep))
    for m in members:
        m.shown = False
    for i, m in enumerate(first):
        m.shown = i in chosen


def build_result(study: optuna.Study, storage: str, retime: Timer | None = None,
                 protocol: TimingProtocol | None = None,
                 deadline: float | None = None) -> SearchResult:
    """The study's feasible front. With ``retime``, the candidates that could be on it are
    confirmed (timed again together by rounds with ``protocol``, by default the confirm
    protocol, within ``deadline`` in ``time.monotonic()`` seconds, and stored with the study;
    :func:`~autosq.searching.retime.confirm_front`); without, the study's stored confirmation
    is used where it has one. Every feasible candidate is ranked at its best-known latency:
    confirmed, else the search's own."""
    import optuna

    from autosq.measure.protocol import TimingProtocol

    settings = read_settings(study)
    recs = load_records(study)
    feasible = [r for r in recs if r.feasible]
    objectives = settings.objectives
    max_ms = settings.budget.max_ms
    retiming = read_retiming(study)
    if retime is not None and feasible:
        from autosq.searching.retime import confirm_front

        retiming = confirm_front(study, retime, recs, objectives, max_ms,
                                 protocol or TimingProtocol.confirm(), deadline)
    latency = _latencies(feasible, retiming)
    retimed = ("not re-timed: latencies as measured during the search" if retiming is None
               else retiming.describe())
    notes: list[str] = []
    kept = []
    for r in distinct(feasible):  # a repeated architecture is the same model: its first trial
        ms = latency[r.trial or 0][0]
        if max_ms is not None and ms > max_ms:
            notes.append(f"trial {r.trial} dropped: re-timed at {ms:.1f} ms, over the "
                         f"{max_ms:g} ms budget")
        else:
            kept.append(FrontMember(r, *latency[r.trial or 0], objectives=objectives))
    members = [kept[i] for i in pareto_front([m.point for m in kept])]
    members.sort(key=lambda m: (m.latency_ms, m.trial))
    kind = (members[0].record.accuracy_kind if members else None) or settings.accuracy.kind
    reference = _reference(settings, recs, kind)
    best = knee([m.point for m in members], reference)
    if best is not None:
        members[best].recommended = True
    # Shown first: the accuracy-latency front (every member fits the budgets already); with a
    # third objective the rest of the front are smaller (or lighter) but slower or less
    # accurate than one of those, one flag away (--all, the page's toggle, the JSON).
    on_2d = set(pareto_front([(m.accuracy, m.latency_ms, 0.0) for m in members]))
    for i, m in enumerate(members):
        m.primary = i in on_2d
    _mark_shown(members, max_ms)
    _pair_fp32(members, recs, retiming)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = Counts(
        trials=len(states),
        complete=sum(s == optuna.trial.TrialState.COMPLETE for s in states),
        failed=sum(s == optuna.trial.TrialState.FAIL for s in states),
        skipped=sum(r.skipped is not None for r in recs),
        feasible=len(feasible),
        front=len(members),
        screened=sum(r.timing == "screen" and not r.duplicate for r in recs),
        predicted=sum(r.timing == "predicted" and not r.duplicate for r in recs),
    )
    notes += busy_notes(recs, [] if retiming is None else list(retiming.trials.values()))
    return SearchResult(
        study_name=study.study_name,
        storage=redact(storage),
        settings=settings,
        members=members,
        hypervolume=hypervolume([m.point for m in members], reference),
        reference=reference,
        counts=counts,
        retimed=retimed,
        nearest_miss=None if members else nearest_miss(settings, recs),
        notes=notes,
        cloud=[CloudPoint(*r.scores, r.feasible) for r in recs if r.measured],
        confirmation=retiming,
    )


def load_result(*, study: str, storage: str = DEFAULT_STORAGE) -> SearchResult:
    """The result of a stored study, as ``autosq front`` shows it (no re-timing)."""
    return build_result(load_study(storage, study), storage)


__all__ = ["JSON_KEYS", "KNEE_RULE", "FrontMember", "SearchResult", "build_result",
           "load_result"]
