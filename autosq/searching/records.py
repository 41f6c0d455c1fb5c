"""What a study stores, typed: its settings, each trial's record, and the names of the Optuna
attributes they live in: the one place that reads or writes them, the second looks' aside.

- The study's user attribute ``autosq`` holds its :class:`SearchSettings` (with its
  :class:`~autosq.searching.objectives.Objectives`); ``objectives`` names Optuna's values in order.
- Each complete trial's user attribute ``autosq`` holds its :class:`TrialRecord`; a failed one
  has ``fail_reason``.
- ``autosq_refined`` (study) maps trial numbers to a :class:`Refinement`: a longer training
  whose accuracy replaces the trial's own wherever records are read (:func:`load_records`).
- ``autosq_second_look`` (trial) holds another trial's candidate timed again
  (:mod:`~autosq.searching.second_look`, which reads and writes it): the faster timing stands
  wherever records are read.
- ``autosq_retimed`` (study) holds the front's latest confirmation: a
  :class:`~autosq.searching.confirmation.Retiming` (the latencies, the screen's measured error).

The stored forms are plain JSON, so ``optuna`` and other tools can read a study too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from autosq.accuracy import AccuracySetting
from autosq.arch.config import SqueezeNetConfig
from autosq.errors import StudyError
from autosq.measure.protocol import LatencyResult
from autosq.searching.confirmation import Retiming
from autosq.searching.objectives import LEGACY, Objectives
from autosq.searching.pareto import Point
from autosq.searching.second_look import apply_looks

if TYPE_CHECKING:
    import optuna

STUDY_ATTR = "autosq"
TRIAL_ATTR = "autosq"
OBJECTIVES_ATTR = "objectives"
REFINED_ATTR = "autosq_refined"
RETIMED_ATTR = "autosq_retimed"
FAIL_ATTR = "fail_reason"
WORKER_ATTR = "worker"  # host:pid of the process that ran the trial

SIZES = "deployed"  # see SearchSettings.sizes
# Objective values recorded for a candidate that was never measured (skipped by the gate or
# over the latency budget). Optuna needs numbers; such a trial is infeasible, so these are
# never on a front and never shown.
UNMEASURED_LATENCY_MS = 1e6
UNMEASURED_ACCURACY = 0.0


@dataclass(frozen=True)
class Budget:
    """What must fit: size in MiB at the candidate's precision, latency, peak activations."""

    max_mb: float
    max_ms: float | None = None
    max_ram_mb: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_mb", "max_ms", "max_ram_mb"):
            value = getattr(self, name)
            if value is None and name != "max_mb":
                continue
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise StudyError(f"{name} must be a finite number > 0; got {value!r}")

    def to_dict(self) -> dict[str, float | None]:
        """The stored form."""
        return {"max_mb": self.max_mb, "max_ms": self.max_ms, "max_ram_mb": self.max_ram_mb}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Budget:
        """Read the stored form."""
        return cls(data["max_mb"], data.get("max_ms"), data.get("max_ram_mb"))

    def describe(self) -> str:
        """``5 MiB, 100 ms, 64 MiB activations``."""
        text = f"{self.max_mb:g} MiB"
        if self.max_ms is not None:
            text += f", {self.max_ms:g} ms"
        if self.max_ram_mb is not None:
            text += f", {self.max_ram_mb:g} MiB activations"
        return text


@dataclass(frozen=True)
class SearchSettings:
    """Everything that defines a study (and that a resumed run must not change)."""

    device: str
    budget: Budget
    space: str
    input_size: int
    num_classes: int = 1000
    accuracy: AccuracySetting = field(default_factory=lambda: AccuracySetting("proxy", "synflow"))
    # How a size is counted (autosq.arch.cost): "deployed" (the weights the deployed file holds)
    # since int8 sizes count scales, zero points and int32 biases; "params" in older studies
    # (parameters x bytes), whose int8 sizes are not comparable, so they cannot be resumed.
    sizes: str = SIZES
    objectives: Objectives = field(default_factory=Objectives)

    def default_study_name(self) -> str:
        """``DEVICE-5mb-100ms-SPACE-224px[-10cls][-val_top1][-pretrained][-distilled]
        [-size-objective]``."""
        b = self.budget
        parts = [self.device, f"{b.max_mb:g}mb"]
        if b.max_ms is not None:
            parts.append(f"{b.max_ms:g}ms")
        parts += [self.space, f"{self.input_size}px"]
        if self.num_classes != 1000:
            parts.append(f"{self.num_classes}cls")
        if self.accuracy.kind != "proxy":
            parts.append(self.accuracy.kind)
        if self.accuracy.pretrained:
            parts.append("pretrained")
        if self.accuracy.teacher:
            parts.append("distilled")
        if self.objectives.third:
            parts.append(f"{self.objectives.third}-objective")
        return "-".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The stored form (compared as a whole when a study is resumed)."""
        return {"device": self.device, "budget": self.budget.to_dict(), "space": self.space,
                "input_size": self.input_size, "num_classes": self.num_classes,
                "accuracy": self.accuracy.to_dict(), "sizes": self.sizes,
                "objectives": self.objectives.to_list()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSettings:
        """Read the stored form."""
        return cls(device=data["device"], budget=Budget.from_dict(data["budget"]),
                   space=data["space"], input_size=int(data["input_size"]),
                   num_classes=int(data.get("num_classes", 1000)),
                   accuracy=AccuracySetting.from_dict(data.get("accuracy", {"kind": "proxy"})),
                   sizes=str(data.get("sizes", "params")),
                   objectives=Objectives(tuple(data.get("objectives", LEGACY))))


@dataclass(frozen=True)
class Refinement:
    """A front member trained again for longer: its accuracy replaces the search's."""

    accuracy: float
    epochs: float
    details: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The stored form."""
        return {"accuracy": self.accuracy, "epochs": self.epochs, "details": self.details,
                "at": self.at}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Refinement:
        """Read the stored form."""
        return cls(float(data["accuracy"]), float(data["epochs"]), dict(data.get("details", {})),
                   float(data.get("at", 0.0)))


@dataclass
class TrialRecord:
    """Everything measured about one candidate, as stored with its trial.

    ``trial`` is the Optuna trial number (not stored: it is the trial's own). ``refined`` is
    set when the record is read from a study whose refinement covers the trial, and then
    :attr:`accuracy` is the refined value (:attr:`search_accuracy` keeps the search's).
    ``timing`` says how the search obtained the latency: ``screen`` (a brief timing, see
    :meth:`~autosq.measure.protocol.TimingProtocol.screen`), ``full`` (the protocol the caller
    gave) or ``predicted`` (never timed; ``untimed_reason`` says why); None in studies of
    earlier versions, which timed everything fully. ``predicted_ms`` is the latency the
    search's predictor gave before timing (so its error can be measured afterwards);
    ``first_look_ms`` the trial's own timing when a second look, taken later because that
    timing ran far above the prediction, was faster and replaced it
    (:func:`~autosq.searching.second_look.take_look`).
    """

    values: dict[str, Any]
    config: SqueezeNetConfig
    precision: str
    params: int
    macs: int
    size_mb: float
    peak_mem_mb: float
    constraints: dict[str, float]
    latency: LatencyResult | None = None
    search_accuracy: float | None = None
    search_accuracy_kind: str | None = None
    accuracy_details: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    duplicate: bool = False
    timing: str | None = None
    untimed_reason: str | None = None
    predicted_ms: float | None = None
    first_look_ms: float | None = None
    trial: int | None = None
    refined: Refinement | None = None

    # -- derived ------------------------------------------------------------------------------
    @property
    def arch_id(self) -> str:
        """The architecture's stable id (equal layer plans, equal ids)."""
        return self.config.arch_id

    @property
    def key(self) -> str:
        """What makes two candidates the same measurement: architecture and precision."""
        return f"{self.arch_id}|{self.precision}"

    @property
    def accuracy(self) -> float | None:
        """The accuracy objective: the refined value when there is one."""
        return self.refined.accuracy if self.refined is not None else self.search_accuracy

    @property
    def accuracy_kind(self) -> str | None:
        """How :attr:`accuracy` was obtained: refining always trains stand-alone."""
        return "val_top1" if self.refined is not None else self.search_accuracy_kind

    @property
    def train_epochs(self) -> float | None:
        """Epochs of the training behind :attr:`accuracy` (None for a proxy)."""
        if self.refined is not None:
            return self.refined.epochs
        if self.search_accuracy_kind != "val_top1":
            return None
        epochs = self.accuracy_details.get("epochs")
        return None if epochs is None else float(epochs)

    @property
    def measured(self) -> bool:
        """Timed and scored (not skipped before either)."""
        return self.latency is not None and self.search_accuracy is not None

    @property
    def feasible(self) -> bool:
        """Measured and within every budget."""
        return self.skipped is None and all(v <= 0 for v in self.constraints.values())

    @property
    def latency_ms(self) -> float | None:
        """The median latency, when timed."""
        return None if self.latency is None else self.latency.latency_ms

    @property
    def scores(self) -> tuple[float, float, float]:
        """(accuracy, latency_ms, size_mb), with placeholders when unmeasured."""
        acc = UNMEASURED_ACCURACY if self.accuracy is None else self.accuracy
        lat = UNMEASURED_LATENCY_MS if self.latency is None else self.latency.latency_ms
        return float(acc), float(lat), float(self.size_mb)

    def point(self, objectives: Objectives) -> Point:
        """The candidate as the front utilities rank it under ``objectives``."""
        acc, lat, size = self.scores
        return objectives.point(acc, lat, size, self.peak_mem_mb)

    def describe(self) -> str:
        """One line for the progress display."""
        if self.skipped:
            return f"{self.size_mb:.2f} MiB, skipped ({self.skipped})"
        lat = self.latency
        assert lat is not None and self.accuracy is not None
        why = f" ({self.untimed_reason}, not timed)" if self.untimed_reason else ""
        return (f"{self.size_mb:.2f} MiB, {lat.latency_ms:.1f} ms {lat.latency_kind}{why}, "
                f"accuracy {self.accuracy:.3g} {self.accuracy_kind}")

    def reused_as(self, values: dict[str, Any]) -> TrialRecord:
        """This measurement, recorded again for another sample of the same architecture."""
        return TrialRecord(**{**{f.name: getattr(self, f.name) for f in fields(self)},
                              "values": values, "duplicate": True, "trial": None,
                              "refined": None, "seconds": {}})

    # -- stored form ----------------------------------------------------------------------------
    def to_attrs(self) -> dict[str, Any]:
        """The JSON-ready form stored as the trial's user attribute."""
        return {
            "values": self.values,
            "config": self.config.to_dict(),
            "arch_id": self.arch_id,
            "precision": self.precision,
            "params": self.params,
            "macs": self.macs,
            "size_mb": self.size_mb,
            "peak_mem_mb": self.peak_mem_mb,
            "constraints": self.constraints,
            "latency": None if self.latency is None else self.latency.to_dict(),
            "accuracy": self.search_accuracy,
            "accuracy_kind": self.search_accuracy_kind,
            "accuracy_details": self.accuracy_details,
            "skipped": self.skipped,
            "seconds": self.seconds,
            "duplicate": self.duplicate,
            "timing": self.timing,
            "untimed_reason": self.untimed_reason,
            "predicted_ms": self.predicted_ms,
            "first_look_ms": self.first_look_ms,
        }

    @classmethod
    def from_attrs(cls, data: Mapping[str, Any], trial: int | None = None,
                   refined: Refinement | None = None) -> TrialRecord:
        """Read the stored form; raises :class:`StudyError` when it is not one."""
        try:
            lat = data.get("latency")
            return cls(
                values=dict(data["values"]),
                config=SqueezeNetConfig.from_dict(data["config"]),
                precision=str(data["precision"]),
                params=int(data["params"]),
                macs=int(data["macs"]),
                size_mb=float(data["size_mb"]),
                peak_mem_mb=float(data["peak_mem_mb"]),
                constraints={k: float(v) for k, v in data["constraints"].items()},
                latency=None if lat is None else LatencyResult.from_dict(lat),
                search_accuracy=data.get("accuracy"),
                search_accuracy_kind=data.get("accuracy_kind"),
                accuracy_details=dict(data.get("accuracy_details") or {}),
                skipped=data.get("skipped"),
                seconds=dict(data.get("seconds") or {}),
                duplicate=bool(data.get("duplicate", False)),
                timing=data.get("timing"),
                untimed_reason=data.get("untimed_reason"),
                predicted_ms=data.get("predicted_ms"),
                first_look_ms=data.get("first_look_ms"),
                trial=trial,
                refined=refined,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            where = "a trial" if trial is None else f"trial {trial}"
            raise StudyError(f"{where} holds a record autosq cannot read ({exc}); was the "
                             "study written by another autosq version?") from None


def read_settings(study: optuna.Study) -> SearchSettings:
    """The settings of an autosq study; :class:`StudyError` for a study autosq did not create."""
    stored = study.user_attrs.get(STUDY_ATTR)
    if not isinstance(stored, dict):
        raise StudyError(f"study {study.study_name!r} was not created by autosq")
    try:
        return SearchSettings.from_dict(stored)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StudyError(f"study {study.study_name!r} holds settings autosq cannot read "
                         f"({exc})") from None


def read_refinements(study: optuna.Study) -> dict[int, Refinement]:
    """Trial number -> its refinement, for a study that has any."""
    stored = study.user_attrs.get(REFINED_ATTR) or {}
    return {int(k): Refinement.from_dict(v) for k, v in stored.items()}


def write_refinement(study: optuna.Study, trial: int, refinement: Refinement) -> None:
    """Store one more refinement with the study (the others are kept)."""
    stored = dict(study.user_attrs.get(REFINED_ATTR) or {})
    stored[str(trial)] = refinement.to_dict()
    study.set_user_attr(REFINED_ATTR, stored)


def read_retiming(study: optuna.Study) -> Retiming | None:
    """The study's latest confirmation, or None when it has none (or an unreadable one)."""
    stored = study.user_attrs.get(RETIMED_ATTR)
    try:
        return None if not stored else Retiming.from_dict(stored)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def write_retiming(study: optuna.Study, retiming: Retiming) -> None:
    """Store a confirmation with the study (replacing the previous one)."""
    study.set_user_attr(RETIMED_ATTR, retiming.to_dict())


def load_records(study: optuna.Study) -> list[TrialRecord]:
    """Every complete trial's record, refinements and second looks applied, in trial order."""
    refined = read_refinements(study)
    trials = study.get_trials(deepcopy=False)
    records = [
        TrialRecord.from_attrs(t.user_attrs[TRIAL_ATTR], t.number, refined.get(t.number))
        for t in trials if t.state.name == "COMPLETE" and TRIAL_ATTR in t.user_attrs
    ]
    apply_looks(records, trials)
    return records


def load_record(study: optuna.Study, trial: int) -> TrialRecord | None:
    """One trial's record (as :func:`load_records` reads it), or None when it has none."""
    return next((r for r in load_records(study) if r.trial == trial), None)


def write_record(trial: optuna.Trial, record: TrialRecord,
                 objectives: Objectives) -> tuple[float, ...]:
    """Store a trial's record and constraints; returns its objective values for Optuna."""
    for name, value in record.constraints.items():
        trial.set_constraint(name, value)
    trial.set_user_attr(TRIAL_ATTR, record.to_attrs())
    return objectives.values(record.point(objectives))
