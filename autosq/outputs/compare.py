"""What the same budget buys on different devices.

An architecture's accuracy does not depend on the device; its latency does. So a study's
candidates are reused as they are (nothing is retrained or re-sampled) and only their latency
is obtained per device:

- an ``estimated`` device scales the candidate's time on this machine (one thread, as the
  study's own estimates and ``host`` timings are made) by the device's calibration;
- a ``measured`` device with the same settings reuses those times; with other settings, the
  candidates are timed now, together and interleaved;
- an ``agent`` device has them timed on the device, one after another.

Then each device gets its own feasible set per budget (size, latency, the device's activation
memory budget), its best accuracy and its recommended member (the knee of its own front, in
the box its budgets allow: :data:`~autosq.searching.pareto.KNEE_RULE`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from autosq.errors import UsageError
from autosq.searching.objectives import Objectives
from autosq.searching.pareto import Point, knee, pareto_front
from autosq.searching.records import TrialRecord, load_records, read_settings

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from autosq.measure.profiles import DeviceProfile
    from autosq.measure.protocol import LatencyResult, TimingProtocol

JSON_KEYS = ("device", "max_mb", "max_ms", "feasible_count", "best_accuracy", "latency_ms",
             "latency_kind", "size_mb", "trial")


class DevicePoint(NamedTuple):
    """One candidate on one device, for plots."""

    trial: int
    accuracy: float
    latency_ms: float
    size_mb: float
    peak_mem_mb: float


@dataclass(frozen=True)
class CompareRow:
    """What one budget buys on one device (the JSON contract, :data:`JSON_KEYS` and more)."""

    device: str
    max_mb: float
    max_ms: float | None
    feasible_count: int
    latency_kind: str
    accuracy_kind: str
    best_accuracy: float | None = None
    latency_ms: float | None = None
    size_mb: float | None = None
    trial: int | None = None
    recommended_trial: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this row."""
        return asdict(self)


@dataclass
class Comparison:
    """Rows (one per device and budget), each device's candidates for plots, and the notes
    that say how each device's latency was obtained. :attr:`frame` is a DataFrame."""

    study: str
    accuracy_kind: str
    rows: list[CompareRow] = field(default_factory=list)
    points: dict[str, list[DevicePoint]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame([r.to_json() for r in self.rows])

    def to_json(self) -> list[dict[str, Any]]:
        """The JSON contract: one object per device and budget."""
        return [r.to_json() for r in self.rows]


def parse_budgets(text: str | None, name: str) -> list[float | None]:
    """``"1,2,5"`` -> [1.0, 2.0, 5.0]; None -> [None] (no budget). ``name`` names the
    option in errors."""
    if text is None or text == "":
        return [None]
    values: list[float | None] = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise UsageError(f"{name} must be a number or a comma-separated list of numbers; "
                             f"got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"{name} values must be finite numbers > 0; got {part!r}")
        values.append(value)
    return sorted(values, key=lambda v: v or 0.0)


def _host_1t_ms(latency: LatencyResult) -> float | None:
    """The candidate's median on this machine at one thread, when the study has it."""
    from autosq.measure.estimated import ESTIMATE_HOST_THREADS

    if latency.latency_kind == "estimated" and latency.host_ms is not None:
        return latency.host_ms
    if latency.latency_kind == "measured" and latency.threads == ESTIMATE_HOST_THREADS:
        return latency.latency_ms
    return None


def device_latencies(profile: DeviceProfile, recs: list[TrialRecord],
                     protocol: TimingProtocol | None = None) -> tuple[dict[int, float], str, str]:
    """(trial -> latency ms on ``profile``, latency kind, how it was obtained)."""
    from autosq.measure import timer_for
    from autosq.measure.estimated import ESTIMATE_HOST_THREADS, EstimatedTimer
    from autosq.measure.local import LocalTimer
    from autosq.searching.evaluate import export_model

    reused: dict[int, float] = {}
    for r in recs:
        assert r.latency is not None and r.trial is not None
        ms = _host_1t_ms(r.latency)
        if ms is not None:
            reused[r.trial] = ms
    complete = len(reused) == len(recs)
    if profile.latency_source == "estimated" and complete:
        assert profile.calibration is not None
        scale = EstimatedTimer(profile.calibration, LocalTimer(
            ESTIMATE_HOST_THREADS, graph_optimization=profile.graph_optimization,
            protocol=protocol)).scale
        return ({n: ms * scale for n, ms in reused.items()}, "estimated",
                "the study's timings here x the device's calibration")
    if (profile.latency_source == "measured" and profile.threads == ESTIMATE_HOST_THREADS
            and complete):
        return reused, "measured", "the study's timings here"
    timer = timer_for(profile, protocol)
    models = [export_model(r.config, r.precision, seed=r.trial or 0) for r in recs]
    results = timer.time_many(models)
    return ({r.trial or 0: res.latency_ms for r, res in zip(recs, results, strict=True)},
            timer.kind, f"timed now for this device ({len(recs)} models, interleaved)")


def _box(recs: list[TrialRecord], lat: dict[int, float], accuracy_kind: str, mb: float,
         ms: float | None, ram: float | None, objectives: Objectives) -> Point:
    """The worst acceptable point of one device and budget (the knee's box, as the study's
    hypervolume reference): accuracy 0 (or the lowest proxy score), the latency budget (or
    1.1 x the slowest candidate on the device), the third objective's budget."""
    scores = [r.accuracy for r in recs if r.accuracy is not None]
    acc = 0.0 if accuracy_kind in ("val_top1", "supernet") or not scores else min(scores)
    slowest = max(lat.values(), default=1.0)
    third = {"size": mb, "memory": ram or 1.1 * max((r.peak_mem_mb for r in recs),
                                                     default=1.0)}.get(objectives.third or "",
                                                                       1.0)
    return acc, ms or 1.1 * slowest, third


def _row(profile: DeviceProfile, recs: list[TrialRecord], lat: dict[int, float], kind: str,
         accuracy_kind: str, mb: float, ms: float | None, objectives: Objectives) -> CompareRow:
    """The best and the recommended candidate (the knee under the study's objectives) that fit
    one budget on one device."""
    fits = [r for r in recs if r.size_mb <= mb and (ms is None or lat[r.trial or 0] <= ms)
            and (profile.max_ram_mb is None or r.peak_mem_mb <= profile.max_ram_mb)]
    row = CompareRow(device=profile.name, max_mb=mb, max_ms=ms, feasible_count=len(fits),
                     latency_kind=kind, accuracy_kind=accuracy_kind)
    if not fits:
        return row
    points = [objectives.point(r.accuracy or 0.0, lat[r.trial or 0], r.size_mb, r.peak_mem_mb)
              for r in fits]
    best = max(range(len(fits)),
               key=lambda i: (points[i][0], -points[i][1], -fits[i].size_mb))
    front = pareto_front(points)
    k = knee([points[i] for i in front],
             _box(recs, lat, accuracy_kind, mb, ms, profile.max_ram_mb, objectives))
    b = fits[best]
    return CompareRow(device=profile.name, max_mb=mb, max_ms=ms, feasible_count=len(fits),
                      latency_kind=kind, accuracy_kind=accuracy_kind,
                      best_accuracy=points[best][0], latency_ms=points[best][1],
                      size_mb=b.size_mb, trial=b.trial,
                      recommended_trial=None if k is None else fits[front[k]].trial)


def compare_study(study: optuna.Study, devices: Sequence[str], max_mb: Sequence[float | None],
                  max_ms: Sequence[float | None], profiles_dirs: Sequence[str | Path] = (),
                  protocol: TimingProtocol | None = None) -> Comparison:
    """Each device's best feasible candidate for every combination of budgets."""
    from autosq.measure.profiles import load_profile

    if not devices:
        raise UsageError("devices needs at least one device name")
    profiles = [load_profile(d, profiles_dirs) for d in devices]
    settings = read_settings(study)
    all_recs = load_records(study)
    timed = [r for r in all_recs if r.measured]
    if not timed:
        raise UsageError(f"study {study.study_name!r} has no timed candidates to compare")
    out = Comparison(study=study.study_name, accuracy_kind=timed[0].accuracy_kind or "proxy")
    if len(timed) < len(all_recs):
        out.notes.append(f"{len(all_recs) - len(timed)} candidates were never timed or scored "
                         "(over the study's own budget) and are left out")
    study_mb = settings.budget.max_mb
    for profile in profiles:
        lat, kind, how = device_latencies(profile, timed, protocol)
        out.notes.append(f"{profile.name}: latency {kind}, {how}")
        out.points[profile.name] = [
            DevicePoint(r.trial or 0, r.accuracy or 0.0, lat[r.trial or 0], r.size_mb,
                        r.peak_mem_mb) for r in timed]
        for mb, ms in itertools.product(max_mb, max_ms):
            out.rows.append(_row(profile, timed, lat, kind, out.accuracy_kind,
                                 study_mb if mb is None else mb, ms, settings.objectives))
    if any(mb is not None and mb > study_mb for mb in max_mb):
        out.notes.append(f"the study searched under {study_mb:g} MiB: larger size budgets can "
                         "only pick among its candidates")
    return out


def run_compare(devices: Sequence[str], max_mb: Sequence[float | None],
                max_ms: Sequence[float | None], study: str | None = None,
                storage: str | None = None, space: str = "default", trials: int = 50,
                input_size: int | None = None, profiles: Sequence[str | Path] = (),
                protocol: TimingProtocol | None = None) -> Comparison:
    """Compare devices on a stored study, or on a new search run for the first device (no
    latency budget, the largest size budget) when ``study`` is None."""
    from autosq.searching.run import run_search
    from autosq.searching.storage import DEFAULT_STORAGE, load_study

    if not devices:
        raise UsageError("devices needs at least one device name")
    storage = storage or DEFAULT_STORAGE
    if study is None:
        biggest = max((m for m in max_mb if m is not None), default=None)
        result = run_search(device=devices[0], max_mb=biggest, max_ms=0, space=space,
                            trials=trials, storage=storage, input_size=input_size,
                            profiles=profiles, protocol=protocol, retime=False)
        study = result.study_name
    return compare_study(load_study(storage, study), devices, max_mb, max_ms, profiles,
                         protocol)
