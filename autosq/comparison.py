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
memory budget), its best accuracy and its recommended member (the knee of its own front).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autosq.errors import UsageError
from autosq.front import knee, pareto_front

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from autosq.latency import TimingProtocol
    from autosq.profiles import DeviceProfile

JSON_KEYS = ("device", "max_mb", "max_ms", "feasible_count", "best_accuracy", "latency_ms",
             "latency_kind", "size_mb", "trial")


@dataclass
class Comparison:
    """Rows follow the JSON contract (one per device and budget); ``points`` keep every
    candidate's (trial, accuracy, latency, size, peak memory) per device for plots."""

    study: str
    accuracy_kind: str
    rows: list[dict[str, Any]]
    points: dict[str, list[tuple[int, float, float, float, float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.rows)


def parse_budgets(text: str | None, name: str) -> list[float | None]:
    """``"1,2,5"`` -> [1.0, 2.0, 5.0]; None -> [None] (no budget)."""
    if text is None or text == "":
        return [None]
    values: list[float | None] = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise UsageError(f"{name} must be a number or a comma-separated list of numbers; "
                             f"got {text!r}") from None
        if not value > 0:
            raise UsageError(f"{name} values must be > 0; got {part!r}")
        values.append(value)
    return sorted(values, key=lambda v: v or 0.0)


def _host_1t_ms(latency: dict[str, Any]) -> float | None:
    """The candidate's median on this machine at one thread, when the study has it."""
    from autosq.latency import ESTIMATE_HOST_THREADS

    if latency.get("latency_kind") == "estimated" and latency.get("host_ms") is not None:
        return float(latency["host_ms"])
    if latency.get("latency_kind") == "measured" and latency.get("threads") == \
            ESTIMATE_HOST_THREADS:
        return float(latency["latency_ms"])
    return None


def device_latencies(profile: DeviceProfile, recs: list[tuple[int, dict[str, Any]]],
                     protocol: TimingProtocol | None = None) -> tuple[dict[int, float], str, str]:
    """(trial -> latency ms on ``profile``, latency kind, how it was obtained)."""
    from autosq.arch import SqueezeNetConfig
    from autosq.evaluate import export_model
    from autosq.latency import ESTIMATE_HOST_THREADS, EstimatedTimer, LocalTimer, timer_for

    reused = {n: _host_1t_ms(r["latency"]) for n, r in recs}
    missing = [(n, r) for n, r in recs if reused[n] is None]
    same_host = (profile.latency_source == "measured" and profile.threads ==
                 ESTIMATE_HOST_THREADS)
    if profile.latency_source == "estimated" and not missing:
        assert profile.calibration is not None
        scale = EstimatedTimer(profile.calibration, LocalTimer(
            ESTIMATE_HOST_THREADS, graph_optimization=profile.graph_optimization,
            protocol=protocol)).scale
        return ({n: ms * scale for n, ms in reused.items() if ms is not None}, "estimated",
                "the study's timings here x the device's calibration")
    if same_host and not missing:
        return ({n: ms for n, ms in reused.items() if ms is not None}, "measured",
                "the study's timings here")
    timer = timer_for(profile, protocol)
    models = [export_model(SqueezeNetConfig.from_dict(r["config"]), r["precision"], seed=n)
              for n, r in recs]
    results = timer.time_many(models)
    return ({n: res.latency_ms for (n, _), res in zip(recs, results, strict=True)},
            timer.kind, f"timed now for this device ({len(recs)} models, interleaved)")


def compare_study(study: optuna.Study, devices: Sequence[str], max_mb: Sequence[float | None],
                  max_ms: Sequence[float | None], profiles_dirs: Sequence[str | Path] = (),
                  protocol: TimingProtocol | None = None) -> Comparison:
    """Each device's best feasible candidate for every combination of budgets."""
    from autosq.profiles import load_profile
    from autosq.result import records
    from autosq.study import STUDY_ATTR

    if not devices:
        raise UsageError("--devices needs at least one device name")
    profiles = [load_profile(d, profiles_dirs) for d in devices]
    settings = study.user_attrs[STUDY_ATTR]
    refined = study.user_attrs.get("autosq_refined", {})
    all_recs = records(study)
    timed = [(n, r) for n, r in all_recs if r.get("latency") and r.get("accuracy") is not None]
    notes = []
    if len(timed) < len(all_recs):
        notes.append(f"{len(all_recs) - len(timed)} candidates were never timed or scored (over "
                     "the study's own budget) and are left out")
    if not timed:
        raise UsageError(f"study {study.study_name!r} has no timed candidates to compare")
    acc = {n: refined.get(str(n), {}).get("accuracy", r["accuracy"]) for n, r in timed}
    size = {n: r["size_mb"] for n, r in timed}
    mem = {n: r["peak_mem_mb"] for n, r in timed}
    out = Comparison(study=study.study_name, accuracy_kind=timed[0][1]["accuracy_kind"],
                     rows=[], notes=notes)
    study_mb = settings["budget"]["max_mb"]
    for profile in profiles:
        lat, kind, how = device_latencies(profile, timed, protocol)
        out.notes.append(f"{profile.name}: latency {kind}, {how}")
        out.points[profile.name] = [(n, acc[n], lat[n], size[n], mem[n]) for n, _ in timed]
        for mb, ms in itertools.product(max_mb, max_ms):
            mb_eff = study_mb if mb is None else mb
            fits = [n for n, _ in timed
                    if size[n] <= mb_eff and (ms is None or lat[n] <= ms)
                    and (profile.max_ram_mb is None or mem[n] <= profile.max_ram_mb)]
            row: dict[str, Any] = {"device": profile.name, "max_mb": mb_eff, "max_ms": ms,
                                   "feasible_count": len(fits), "best_accuracy": None,
                                   "latency_ms": None, "latency_kind": kind, "size_mb": None,
                                   "trial": None, "recommended_trial": None,
                                   "accuracy_kind": out.accuracy_kind}
            if fits:
                best = max(fits, key=lambda n: (acc[n], -lat[n], -size[n]))
                pts = [(acc[n], lat[n], size[n]) for n in fits]
                front = [fits[i] for i in pareto_front(pts)]
                k = knee([(acc[n], lat[n], size[n]) for n in front])
                row.update(best_accuracy=acc[best], latency_ms=lat[best], size_mb=size[best],
                           trial=best, recommended_trial=None if k is None else front[k])
            out.rows.append(row)
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
    from autosq.study import DEFAULT_STORAGE, open_study, run_search

    storage = storage or DEFAULT_STORAGE
    if study is None:
        biggest = max((m for m in max_mb if m is not None), default=None)
        result = run_search(device=devices[0], max_mb=biggest, max_ms=0, space=space,
                            trials=trials, storage=storage, input_size=input_size,
                            profiles=profiles, protocol=protocol, retime=False)
        study = result.study_name
    st = open_study(storage, study, None)
    return compare_study(st, devices, max_mb, max_ms, profiles, protocol)
