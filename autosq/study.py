"""The Optuna glue: sample a config, evaluate it, record objectives and constraints, resume.

A study is multi-objective (accuracy up, latency down, size down). Budgets are Optuna
constraints (``trial.set_constraint``, feasible when <= 0), so every sampler learns where the
boundary is, also from candidates that were skipped without being timed. What a trial measured
is stored in its user attribute ``autosq``; the study's own settings in the study's user
attribute ``autosq``, so ``autosq front`` and a resumed search know what the study is for.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from autosq.errors import AutosqError, StudyError, UsageError
from autosq.evaluate import Budget, Candidate, Evaluator

if TYPE_CHECKING:
    import optuna

    from autosq.accuracy import TrainCallback
    from autosq.latency import TimingProtocol
    from autosq.profiles import DeviceProfile
    from autosq.result import SearchResult
    from autosq.space import SearchSpace

DEFAULT_STORAGE = "sqlite:///autosq.db"
SAMPLERS = ("tpe", "nsga2", "random")
DIRECTIONS: tuple[Literal["maximize", "minimize"], ...] = ("maximize", "minimize", "minimize")
OBJECTIVES = ("accuracy", "latency_ms", "size_mb")
STUDY_ATTR = "autosq"
TRIAL_ATTR = "autosq"


@dataclass
class SearchSettings:
    """Everything that defines a study (and that a resumed run must not change)."""

    device: str
    budget: Budget
    space: str
    input_size: int
    num_classes: int = 1000
    accuracy: dict[str, Any] = field(default_factory=lambda: {"kind": "proxy", "proxy": "synflow"})

    def default_study_name(self) -> str:
        b = self.budget
        parts = [self.device, f"{b.max_mb:g}mb"]
        if b.max_ms is not None:
            parts.append(f"{b.max_ms:g}ms")
        parts += [self.space, f"{self.input_size}px"]
        if self.num_classes != 1000:
            parts.append(f"{self.num_classes}cls")
        if self.accuracy.get("kind") != "proxy":
            parts.append(str(self.accuracy.get("kind")))
        return "-".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "budget": self.budget.to_dict()}


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("optuna").setLevel(logging.ERROR)


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler called ``name`` (tpe, nsga2 or random)."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=10)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=16)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UsageError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")


def open_study(
    storage: str,
    name: str,
    settings: SearchSettings | None,
    sampler: optuna.samplers.BaseSampler | None = None,
) -> optuna.Study:
    """Create the study, or load it and check it was made with the same settings.

    ``settings=None`` only loads (for ``autosq front`` and ``export``): the study must exist.
    """
    import optuna

    _quiet_optuna()
    storage_obj = _storage(storage)
    exists = name in {s.study_name for s in optuna.get_all_study_summaries(storage_obj)}
    if settings is None:
        if not exists:
            known = [s.study_name for s in optuna.get_all_study_summaries(storage_obj)]
            raise StudyError(
                f"no study {name!r} in {storage}; studies there: {', '.join(known) or 'none'}"
            )
        return optuna.load_study(study_name=name, storage=storage_obj, sampler=sampler)
    study = optuna.create_study(
        study_name=name,
        storage=storage_obj,
        sampler=sampler,
        directions=list(DIRECTIONS),
        load_if_exists=True,
    )
    if len(study.directions) != len(DIRECTIONS):
        raise StudyError(
            f"study {name!r} in {storage} is not an autosq study "
            "(it does not have autosq's three objectives)"
        )
    stored = study.user_attrs.get(STUDY_ATTR)
    wanted = settings.to_dict()
    if stored is None:
        if exists and study.trials:
            raise StudyError(f"study {name!r} in {storage} was not created by autosq")
        study.set_user_attr(STUDY_ATTR, wanted)
        study.set_user_attr("objectives", list(OBJECTIVES))
    elif stored != wanted:
        diff = [k for k in wanted if stored.get(k) != wanted[k]]
        raise StudyError(
            f"study {name!r} was created with other settings ({', '.join(diff)}: "
            f"{', '.join(f'{stored.get(k)!r}' for k in diff)}); give the same flags to resume "
            "it, or --study NEW_NAME for a new study"
        )
    return study


def _storage(url: str) -> Any:
    """An Optuna storage for ``url``; a bad URL is a usage error, not a traceback."""
    import optuna

    if "://" not in url:
        raise UsageError(
            f"storage must be a database URL such as {DEFAULT_STORAGE} "
            f"(or journal:///path.log); got {url!r}"
        )
    if url.startswith("journal://"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(url[len("journal://") :]))
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # SQLAlchemy raises many types for bad URLs and unreachable DBs
        raise UsageError(f"cannot open storage {url!r}: {exc}") from None


def finished_count(study: optuna.Study) -> int:
    """Trials that count towards --trials: complete or failed ones."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return len(study.get_trials(deepcopy=False, states=states))


@dataclass
class Progress:
    """What the progress display shows after each trial."""

    done: int = 0
    total: int = 0
    feasible: int = 0
    failed: int = 0
    skipped: int = 0
    best: Candidate | None = None
    last: str = ""


class Search:
    """Runs (or resumes) one study: samples configs, evaluates them, records the results."""

    def __init__(self, study: optuna.Study, space: SearchSpace, evaluator: Evaluator) -> None:
        self.study = study
        self.space = space
        self.evaluator = evaluator
        self.progress = Progress()
        self._seen: dict[str, dict[str, Any]] = {}
        for t in study.get_trials(deepcopy=False):
            rec = t.user_attrs.get(TRIAL_ATTR)
            if rec and t.state.name == "COMPLETE":
                self._seen.setdefault(f"{rec['arch_id']}|{rec['precision']}", rec)

    def objective(self, trial: optuna.Trial) -> tuple[float, float, float]:
        values = self.space.sample(trial)
        try:
            candidate = self.evaluator.analyse(values)
            key = f"{candidate.config.arch_id}|{candidate.precision}"
            if key in self._seen:
                # The same architecture again: reuse its measurements instead of paying again.
                rec = dict(self._seen[key])
                rec["values"] = values
                rec["duplicate"] = True
                return self._record(trial, rec)
            candidate = self.evaluator.evaluate(values, seed=trial.number, analysed=candidate)
        except AutosqError as exc:
            trial.set_user_attr("fail_reason", str(exc))
            raise
        except Exception as exc:  # a candidate that breaks torch, export or ORT: record, go on
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}")
            raise
        rec = candidate.to_attrs()
        if candidate.skipped is None:
            self._seen[key] = rec
        return self._record(trial, rec, candidate)

    def _record(
        self, trial: optuna.Trial, rec: dict[str, Any], candidate: Candidate | None = None
    ) -> tuple[float, float, float]:
        for name, value in rec["constraints"].items():
            trial.set_constraint(name, value)
        trial.set_user_attr(TRIAL_ATTR, rec)
        return objectives_of(rec)

    def _after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        p = self.progress
        p.done += 1
        rec = trial.user_attrs.get(TRIAL_ATTR)
        if trial.state.name == "FAIL":
            p.failed += 1
            p.last = f"trial {trial.number} failed: {trial.user_attrs.get('fail_reason', '?')}"
        elif rec is not None:
            if rec.get("skipped"):
                p.skipped += 1
            if is_feasible(rec):
                p.feasible += 1
                if p.best is None or (rec["accuracy"] or 0) > (p.best.accuracy or 0):
                    p.best = _candidate_view(rec)
            p.last = f"trial {trial.number}: {describe(rec)}"
        if on_progress is not None:
            on_progress(p)

    def run(
        self,
        trials: int,
        timeout: float | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> int:
        """Run the trials still missing to reach ``trials``; returns how many ran."""
        missing = max(0, trials - finished_count(self.study))
        self.progress.total = missing
        if missing == 0:
            return 0
        before = finished_count(self.study)
        # On Ctrl-C Optuna marks the running trial FAIL and re-raises; finished trials are kept.
        self.study.optimize(
            self.objective,
            n_trials=missing,
            timeout=timeout,
            catch=(Exception,),
            callbacks=[lambda s, t: self._after_trial(s, t, on_progress)],
            gc_after_trial=False,
            show_progress_bar=False,
        )
        return finished_count(self.study) - before


def objectives_of(rec: dict[str, Any]) -> tuple[float, float, float]:
    """(accuracy, latency_ms, size_mb) of a trial record, with the unmeasured placeholders."""
    from autosq.evaluate import UNMEASURED_ACCURACY, UNMEASURED_LATENCY_MS

    acc = rec["accuracy"] if rec.get("accuracy") is not None else UNMEASURED_ACCURACY
    lat = rec["latency"]["latency_ms"] if rec.get("latency") else UNMEASURED_LATENCY_MS
    return float(acc), float(lat), float(rec["size_mb"])


def is_feasible(rec: dict[str, Any]) -> bool:
    """A record that was measured and fits every budget."""
    return not rec.get("skipped") and all(v <= 0 for v in rec["constraints"].values())


def describe(rec: dict[str, Any]) -> str:
    """One line about a trial record for the progress display."""
    if rec.get("skipped"):
        return f"{rec['size_mb']:.2f} MiB, skipped ({rec['skipped']})"
    lat = rec["latency"]
    acc = rec["accuracy"]
    return (
        f"{rec['size_mb']:.2f} MiB, {lat['latency_ms']:.1f} ms {lat['latency_kind']}, "
        f"accuracy {acc:.3g} {rec['accuracy_kind']}"
    )


def _candidate_view(rec: dict[str, Any]) -> Candidate:
    from autosq.arch import SqueezeNetConfig
    from autosq.latency import LatencyResult

    lat = rec.get("latency")
    return Candidate(
        values=rec["values"],
        config=SqueezeNetConfig.from_dict(rec["config"]),
        precision=rec["precision"],
        params=rec["params"],
        macs=rec["macs"],
        size_mb=rec["size_mb"],
        peak_mem_mb=rec["peak_mem_mb"],
        constraints=rec["constraints"],
        latency=None if lat is None else LatencyResult(**lat),
        accuracy=rec["accuracy"],
        accuracy_kind=rec["accuracy_kind"],
    )


def settings_for(
    profile: DeviceProfile,
    space: SearchSpace,
    max_mb: float | None,
    max_ms: float | None,
    max_ram_mb: float | None,
    input_size: int | None,
    num_classes: int,
    accuracy: dict[str, Any],
) -> SearchSettings:
    """Settings from a profile and the user's overrides (None takes the profile's value;
    a latency or memory budget of 0 means none)."""
    ms = profile.max_ms if max_ms is None else (max_ms or None)
    ram = profile.max_ram_mb if max_ram_mb is None else (max_ram_mb or None)
    mb = profile.max_mb if max_mb is None else max_mb
    for name, value in (("--max-mb", mb), ("--max-ms", ms), ("--max-ram-mb", ram)):
        if value is not None and (value <= 0 or math.isnan(value)):
            raise UsageError(f"{name} must be > 0; got {value}")
    return SearchSettings(
        device=profile.name,
        budget=Budget(mb, ms, ram),
        space=space.name,
        input_size=input_size or profile.input_size,
        num_classes=num_classes,
        accuracy=accuracy,
    )


def run_search(
    device: str = "host",
    max_mb: float | None = None,
    max_ms: float | None = None,
    max_ram_mb: float | None = None,
    space: str = "default",
    trials: int = 50,
    timeout: float | None = None,
    seed: int | None = 0,
    sampler: str = "tpe",
    storage: str = DEFAULT_STORAGE,
    study: str | None = None,
    input_size: int | None = None,
    num_classes: int | None = None,
    proxy: str = "synflow",
    data: str | None = None,
    epochs: float = 2.0,
    batch_size: int = 64,
    refine: int = 0,
    refine_epochs: float | None = None,
    profiles: Sequence[str | Path] = (),
    retime: bool = True,
    protocol: TimingProtocol | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_start: Callable[[optuna.Study, int], None] | None = None,
    on_train: TrainCallback | None = None,
) -> SearchResult:
    """Search ``space`` for the models that fit ``device`` and return the feasible front.

    Budgets left as None take the device profile's; ``max_ms=0`` or ``max_ram_mb=0`` drops
    that budget. With ``data`` (a folder or ``builtin:shapes``) every feasible candidate is
    trained for ``epochs`` and its validation top-1 is the accuracy; without, a zero-cost
    ``proxy`` scores it. ``refine=K`` then trains the K front members nearest the knee for
    ``refine_epochs`` (default 4 x epochs) and recomputes the front.

    Running again with the same study resumes it and runs only the trials still missing to
    reach ``trials``. With a ``seed``, a fresh study samples the same first configurations
    every time (the random start-up trials; later TPE or NSGA-II suggestions also depend on
    the measured latencies, which vary a little between runs).
    """
    from autosq.accuracy import make_accuracy
    from autosq.latency import timer_for
    from autosq.profiles import load_profile
    from autosq.result import build_result
    from autosq.space import load_space, make_config

    if trials < 1:
        raise UsageError(f"--trials must be >= 1; got {trials}")
    if refine < 0:
        raise UsageError(f"--refine must be >= 0; got {refine}")
    if refine and data is None:
        raise UsageError("--refine trains front members: it needs --data")
    profile = load_profile(device, profiles)
    sp = load_space(space)
    size = input_size or profile.input_size
    accuracy, classes = make_accuracy(proxy, data, epochs, batch_size, size, num_classes,
                                      on_train)
    settings = settings_for(profile, sp, max_mb, max_ms, max_ram_mb, size, classes,
                            accuracy.describe())
    make_config(next(sp.grid(2)), settings.input_size, classes)  # the input size fits the space
    name = study or settings.default_study_name()
    st = open_study(storage, name, settings)
    done = finished_count(st)
    st.sampler = make_sampler(sampler, None if seed is None else seed + done)
    timer = timer_for(profile, protocol)
    evaluator = Evaluator(timer, settings.budget, accuracy, settings.input_size, classes)
    runner = Search(st, sp, evaluator)
    if on_start is not None:
        on_start(st, max(0, trials - done))
    runner.run(trials, timeout, on_progress)
    if refine:
        from autosq.refine import refine_front

        refine_front(st, storage, refine, refine_epochs or 4 * epochs, on_train=on_train)
    return build_result(st, storage, retime=timer if retime else None)


def load_result(study: str, storage: str = DEFAULT_STORAGE) -> SearchResult:
    """The result of a stored study, as ``autosq front`` shows it (no re-timing)."""
    from autosq.result import build_result

    st = open_study(storage, study, None)
    if STUDY_ATTR not in st.user_attrs:
        raise StudyError(f"study {study!r} in {storage} was not created by autosq")
    return build_result(st, storage)


__all__ = [
    "DEFAULT_STORAGE",
    "SAMPLERS",
    "Search",
    "SearchSettings",
    "load_result",
    "open_study",
    "run_search",
]
