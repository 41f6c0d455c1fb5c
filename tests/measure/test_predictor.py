"""The latency predictor's features (pure), its fit (NNLS, cross-validation), its storage and
its refusal to be used stale."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import random_config

from autosq.arch.plan import plan
from autosq.errors import MeasurementError, UsageError
from autosq.measure.features import FEATURES, latency_features
from autosq.measure.predictor import (
    Calibration,
    Predictor,
    fit_predictor,
    load_predictor,
    nnls,
    save_predictor,
    stored_predictors,
)

CAL = Calibration(device="board", latency_source="measured", threads=2, provider="CPU",
                  graph_optimization="basic", machine="m|cpu|2", onnxruntime="1.32.0")


def test_features_count_the_plan() -> None:
    rng = random.Random(0)
    for _ in range(20):
        config = random_config(rng)
        row = dict(zip(FEATURES, latency_features(config, "fp32"), strict=True))
        macs = row["fp32_macs_1x1"] + row["fp32_macs_3x3"] + row["fp32_macs_conv1"]
        assert macs == pytest.approx(plan(config).macs / 1e6)
        assert row["fp32_ops"] == len(plan(config).layers) and row["const"] == 1.0
        assert not any(v for k, v in row.items() if k.startswith("int8_"))
        q = dict(zip(FEATURES, latency_features(config, "int8"), strict=True))
        assert q["int8_macs_3x3"] == row["fp32_macs_3x3"] and q["fp32_ops"] == 0
        assert q["int8_conv_mbytes"] == pytest.approx(row["fp32_conv_mbytes"] / 4)
        assert latency_features(config, "fp16") == latency_features(config, "fp32")


def test_nnls_matches_a_known_solution() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((40, 5))
    truth = np.array([0.0, 2.0, 0.5, 0.0, 3.0])
    assert np.allclose(nnls(a, a @ truth), truth, atol=1e-8)
    x = nnls(a, -a @ truth)  # the unconstrained solution is negative everywhere
    assert (x >= 0).all() and np.allclose(x, 0)


def _synthetic(n: int, noise: float = 0.0) -> tuple[list[tuple[float, ...]], list[float]]:
    rng = random.Random(1)
    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index("fp32_macs_1x1")] = 0.02
    coef[FEATURES.index("fp32_macs_3x3")] = 0.05
    coef[FEATURES.index("fp32_ops")] = 0.01
    coef[FEATURES.index("const")] = 0.1
    rows = [latency_features(random_config(rng)) for _ in range(n)]
    ms = [float(np.dot(r, coef)) * (1 + noise * rng.uniform(-1, 1)) for r in rows]
    return rows, ms


def test_a_linear_device_is_fitted_exactly_and_its_error_is_measured() -> None:
    rows, ms = _synthetic(20)
    p = fit_predictor(CAL, rows, ms)
    assert p.form == "layer-terms" and p.cv_mape < 1e-6 and p.cv_spearman > 0.999
    noisy = fit_predictor(CAL, *_synthetic(20, noise=0.1))
    assert 0.01 < noisy.cv_mape < 0.15 and noisy.cv_mape_ci[0] <= noisy.cv_mape
    assert noisy.cv_mape <= noisy.cv_mape_ci[1] and noisy.cv_worst >= noisy.cv_p90
    assert noisy.precisions == ["fp32"]


def test_too_few_samples_or_bad_latencies_are_refused() -> None:
    rows, ms = _synthetic(5)
    with pytest.raises(UsageError, match="at least 8 timed samples"):
        fit_predictor(CAL, rows, ms)
    rows, ms = _synthetic(10)
    with pytest.raises(MeasurementError, match="finite and positive"):
        fit_predictor(CAL, rows, [*ms[:-1], float("nan")])


def test_stored_predictors_are_used_only_where_they_match(isolated_cache: Path) -> None:
    p = fit_predictor(CAL, *_synthetic(12))
    path = save_predictor(p)
    assert path.parent == isolated_cache / "predictors"
    assert load_predictor(CAL) == p
    with pytest.raises(MeasurementError, match=r"predictor for board is stale: it was "
                                               r"calibrated with onnxruntime '1\.32\.0' \(now "
                                               r"'1\.40\.0'\); run `autosq calibrate"):
        load_predictor(replace(CAL, onnxruntime="1.40.0"))
    with pytest.raises(MeasurementError, match="no latency predictor for other yet"):
        load_predictor(replace(CAL, device="other"))
    path.write_text("{garbage")
    assert stored_predictors("board") == []


def test_a_stored_predictor_from_another_version_is_not_read() -> None:
    p = fit_predictor(CAL, *_synthetic(12))
    data = p.to_dict()
    assert Predictor.from_dict(data) == p
    with pytest.raises(ValueError, match="another autosq version"):
        Predictor.from_dict({**data, "version": 99})
    with pytest.raises(ValueError, match="not a stored predictor"):
        Predictor.from_dict({"form": "layer-terms"})


@pytest.mark.parametrize(("edit", "why"), [
    (lambda d: d.update(coef=["a"] * len(d["coef"])), "expected a finite number"),
    (lambda d: d.update(coef=[float("nan")] * len(d["coef"])), "expected a finite number"),
    (lambda d: d.update(coef=d["coef"][:-1]), "coefficients; it has"),
    (lambda d: d.update(coef=[-c - 1 for c in d["coef"]]), "expected a finite number >= 0"),
    (lambda d: d.update(cv_mape="x"), "its cv_mape is 'x'"),
    (lambda d: d.update(precisions=[{"x": 1}]), "its precisions"),
    (lambda d: d.update(cv_mape_ci=[1]), "cv_mape_ci"),
])
def test_a_damaged_stored_predictor_is_refused_naming_its_file(
        cli: Any, edit: Any, why: str) -> None:
    # badinput-2 B-cal-corrupt-*: the stored predictor edited by hand is validated when read;
    # `measure --predict` names the file and how to rebuild it, in one line.
    import json

    from autosq.measure import timer_for
    from autosq.measure.profiles import load_profile
    from autosq.outputs.calibrate import device_calibration

    profile = load_profile("host")
    calibration = device_calibration(profile, timer_for(profile))
    rows, ms = _synthetic(12)
    path = save_predictor(fit_predictor(calibration, rows, ms))
    code, out, err = cli("measure", "--preset", "squeezenet1_1", "--input-size", "32",
                         "--predict")
    assert code == 0 and "(predicted" in out, err
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    code, out, err = cli("measure", "--preset", "squeezenet1_1", "--input-size", "32",
                         "--predict")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "internal error" not in err, err
    assert f"the stored latency predictor {path} is damaged" in err and why in err, err
    assert "rebuild it with `autosq calibrate --device host`" in err
