"""A per-device latency predictor (latency kind ``predicted``): a linear model over the plan's
terms (:mod:`autosq.measure.features`), fitted to timings of a few dozen candidates, with its
error measured by leave-one-out cross-validation and reported with every prediction.

Forms compared (the one with the lowest cross-validated MAPE is kept):

- ``layer-terms``: non-negative least squares over every term, on relative error (rows scaled
  by 1/latency), so a small model's error counts as much as a large one's;
- ``macs``: total MACs plus a constant, the one-ratio scaling's shape (the baseline).

A predictor records what it was calibrated for (the profile's runtime settings, the machine or
the device's fingerprint, the ONNX Runtime version); :func:`load_predictor` refuses one whose
record does not match, so a stale predictor is never used silently.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autosq._io import cache_dir, read_json_cache, write_json
from autosq.errors import MeasurementError, UsageError, shown
from autosq.measure.features import FEATURES, PRECISIONS, feature_precisions

FORMS = ("layer-terms", "macs")
MIN_SAMPLES = 8
_VERSION = 1


def nnls(a: np.ndarray, b: np.ndarray, max_iter: int = 500) -> np.ndarray:
    """Non-negative least squares, min ||a x - b|| for x >= 0 (Lawson and Hanson's active set)."""
    n = a.shape[1]
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    w = a.T @ (b - a @ x)
    for _ in range(max_iter):
        if passive.all() or w[~passive].max(initial=-np.inf) <= 1e-10:
            break
        j = int(np.argmax(np.where(passive, -np.inf, w)))
        passive[j] = True
        while True:
            s = np.zeros(n)
            s[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (s[passive] > 0).all():
                break
            neg = passive & (s <= 0)
            alpha = np.min(x[neg] / (x[neg] - s[neg]))
            x = x + alpha * (s - x)
            passive &= x > 1e-12
        x = s
        w = a.T @ (b - a @ x)
    return x


def _design(form: str, rows: np.ndarray) -> np.ndarray:
    if form == "layer-terms":
        return rows
    macs = [i for i, f in enumerate(FEATURES) if "_macs_" in f]
    return np.column_stack([rows[:, macs].sum(1), rows[:, -1]])


def _fit(form: str, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
    a = _design(form, rows)
    return nnls(a / y[:, None], np.ones_like(y))


def _spearman(x: Sequence[float], y: Sequence[float]) -> float:
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    if len(x) < 3 or rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


@dataclass(frozen=True)
class Calibration:
    """What a predictor was fitted for; a predictor is used only where all of it matches."""

    device: str
    latency_source: str
    threads: int
    provider: str
    graph_optimization: str
    machine: str
    onnxruntime: str

    def key(self) -> str:
        """A file-name-safe key of the whole record."""
        text = json.dumps(asdict(self), sort_keys=True)
        return f"{self.device}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


@dataclass
class Predictor:
    """A fitted predictor, its cross-validated error, and what it was calibrated for."""

    calibration: Calibration
    form: str
    coef: list[float]
    samples: int
    cv_mape: float
    cv_mape_ci: tuple[float, float]
    cv_worst: float
    cv_spearman: float
    cv_p90: float
    precisions: list[str]
    forms: dict[str, float] = field(default_factory=dict)
    version: int = _VERSION

    def predict_row(self, row: Sequence[float]) -> float:
        """Predicted latency (ms) of one feature row."""
        a = _design(self.form, np.asarray([row], dtype=float))
        return float(a[0] @ np.asarray(self.coef))

    def error_text(self) -> str:
        """The error as a user reads it."""
        return (f"cross-validated MAPE {self.cv_mape:.1%} (95% interval {self.cv_mape_ci[0]:.1%}"
                f"-{self.cv_mape_ci[1]:.1%}), worst {self.cv_worst:.1%}, Spearman "
                f"{self.cv_spearman:.3f}, {self.samples} samples")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored on disk."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Predictor:
        """Read a stored predictor, every field checked (types, lengths, finite non-negative
        numbers): ValueError saying what is wrong when it is not one autosq wrote."""
        try:
            d = dict(data)
            d["calibration"] = Calibration(**d["calibration"])
            d["cv_mape_ci"] = tuple(d["cv_mape_ci"])
            p = cls(**d)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a stored predictor: {shown(exc)}") from None
        if p.version != _VERSION or p.form not in FORMS:
            raise ValueError("a predictor from another autosq version")
        p.check()
        return p

    def check(self) -> None:
        """ValueError naming the first field that a fitted predictor could not hold."""
        def number(name: str, value: Any, nan: bool = False) -> None:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
                (math.isfinite(value) and value >= 0) or (nan and math.isnan(value)))
            if not ok:
                raise ValueError(f"its {name} is {shown(value)}; expected a finite number >= 0")

        for key, value in asdict(self.calibration).items():
            if not isinstance(value, int if key == "threads" else str):
                raise ValueError(f"its calibration {key} is {shown(value)}")
        width = len(FEATURES) if self.form == "layer-terms" else 2
        if not isinstance(self.coef, list) or len(self.coef) != width:
            has = len(self.coef) if isinstance(self.coef, list) else shown(self.coef)
            raise ValueError(f"its {self.form} form needs {width} coefficients; it has {has}")
        for c in self.coef:
            number("coefficient", c)
        if not any(self.coef):
            raise ValueError("its coefficients are all zero")
        if not isinstance(self.samples, int) or self.samples < MIN_SAMPLES:
            raise ValueError(f"its sample count is {shown(self.samples)}")
        for name in ("cv_mape", "cv_worst", "cv_p90"):
            number(name, getattr(self, name))
        number("cv_spearman", abs(self.cv_spearman) if isinstance(self.cv_spearman, float)
               else self.cv_spearman, nan=True)
        if len(self.cv_mape_ci) != 2:
            raise ValueError("its cv_mape_ci is not two numbers")
        for value in self.cv_mape_ci:
            number("cv_mape_ci", value)
        if not isinstance(self.precisions, list) or not self.precisions or any(
                x not in PRECISIONS for x in self.precisions):
            raise ValueError(f"its precisions are {shown(self.precisions)}")
        if not isinstance(self.forms, dict):
            raise ValueError(f"its forms are {shown(self.forms)}")
        for value in self.forms.values():
            number("form error", value)


def fit_predictor(calibration: Calibration, rows: Sequence[Sequence[float]],
                  latencies_ms: Sequence[float], seed: int = 0) -> Predictor:
    """Fit every form, keep the one with the lowest leave-one-out MAPE, and measure its error
    (MAPE with a bootstrap 95% interval, worst error, p90, Spearman) on the held-out predictions."""
    if len(rows) < MIN_SAMPLES:
        raise UsageError(f"a predictor needs at least {MIN_SAMPLES} timed samples to fit and "
                         f"cross-validate; got {len(rows)}")
    x = np.asarray(rows, dtype=float)
    y = np.asarray(latencies_ms, dtype=float)
    if not np.isfinite(y).all() or (y <= 0).any():
        raise MeasurementError("latencies to fit must be finite and positive")
    held: dict[str, np.ndarray] = {}
    for form in FORMS:
        pred = np.empty_like(y)
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            pred[i] = _design(form, x[i:i + 1])[0] @ _fit(form, x[keep], y[keep])
        held[form] = pred
    errors = {f: np.abs(p - y) / y for f, p in held.items()}
    best = min(FORMS, key=lambda f: float(errors[f].mean()))
    err = errors[best]
    # 1000 resamples drawn at once: a search refits as its screens come in, and drawn one
    # index at a time they were 71% of a fit's time under cProfile (a 40-s peer search,
    # 2026-12-04).
    picks = np.random.default_rng(seed).integers(0, len(err), size=(1000, len(err)))
    boots = np.sort(err[picks].mean(axis=1)).tolist()
    return Predictor(
        calibration=calibration, form=best, coef=[float(c) for c in _fit(best, x, y)],
        samples=len(y), cv_mape=float(err.mean()), cv_mape_ci=(boots[25], boots[974]),
        cv_worst=float(err.max()), cv_spearman=_spearman(list(held[best]), list(y)),
        cv_p90=float(np.quantile(err, 0.9)),
        precisions=sorted(feature_precisions([tuple(r) for r in x]), key=PRECISIONS.index),
        forms={f: float(e.mean()) for f, e in errors.items()})


def predictor_path(calibration: Calibration) -> Path:
    """Where the predictor for ``calibration`` is stored."""
    return cache_dir("predictors") / f"{calibration.key()}.json"


def save_predictor(p: Predictor) -> Path:
    """Store ``p`` (atomically); returns the file."""
    path = predictor_path(p.calibration)
    write_json(path, p.to_dict())
    return path


def _read_stored(path: Path) -> dict[str, Any]:
    """A stored predictor's JSON object (ValueError when the file is not one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON: {shown(exc)}") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def stored_predictors(device: str) -> list[Predictor]:
    """Every readable predictor stored for ``device`` (any calibration)."""
    try:
        folder = cache_dir("predictors", create=False)
    except UsageError:
        return []
    found = []
    for path in sorted(folder.glob(f"{device}-*.json")) if folder.is_dir() else []:
        try:
            p = Predictor.from_dict(read_json_cache(path))
        except ValueError:
            continue
        if p.calibration.device == device:
            found.append(p)
    return found


def load_predictor(calibration: Calibration) -> Predictor:
    """The predictor calibrated for exactly ``calibration``; MeasurementError saying what
    differs when only a stale one exists, or how to make one when none does, or naming its
    file when that file is damaged (and how to rebuild it)."""
    path = predictor_path(calibration)
    if path.is_file():
        try:
            stored = Predictor.from_dict(_read_stored(path))
            if stored.calibration == calibration:
                return stored
        except ValueError as exc:
            raise MeasurementError(
                f"the stored latency predictor {path} is damaged ({exc}); rebuild it with "
                f"`autosq calibrate --device {calibration.device}` (it replaces the "
                "file)") from None
    for p in stored_predictors(calibration.device):
        if p.calibration == calibration:
            return p
    stale = stored_predictors(calibration.device)
    fix = f"run `autosq calibrate --device {calibration.device}`"
    if stale:
        old, new = asdict(stale[-1].calibration), asdict(calibration)
        diff = ", ".join(f"{k} {old[k]!r} (now {new[k]!r})" for k in new if old[k] != new[k])
        raise MeasurementError(f"the latency predictor for {calibration.device} is stale: it "
                               f"was calibrated with {diff}; {fix}")
    raise MeasurementError(f"no latency predictor for {calibration.device} yet; {fix}")
