"""``autosq calibrate`` and ``autosq measure --predict`` on real timings of this machine, and
their bad inputs."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from util import FAST

from autosq.arch.cost import cost
from autosq.arch.space import load_space
from autosq.errors import UsageError
from autosq.measure.local import LocalTimer
from autosq.measure.profiles import load_profile
from autosq.outputs.calibrate import calibrate, device_calibration, spread_candidates

Cli = Callable[..., tuple[int, str, str]]
BOARD = ('name = "board"\n[budget]\nmax_mb = 5\n[runtime]\nthreads = 2\n'
         'graph_optimization = "basic"\ninput_size = 48\n[latency]\nsource = "measured"\n')


@pytest.mark.parametrize("space", ["tiny", "default", "paper"])
def test_candidates_are_distinct_and_spread_over_the_space(space: str) -> None:
    chosen = spread_candidates(load_space(space), 12, seed=0, input_size=64)
    assert len({c.arch_id for c, _ in chosen}) == 12
    macs = sorted(math.log(cost(c).macs) for c, _ in chosen)
    assert macs[-1] - macs[0] > 1.0  # more than e-fold between the smallest and the largest
    if space == "default":
        assert {p for _, p in chosen} == {"fp32", "int8"}
    assert spread_candidates(load_space(space), 12, 0, 64) == chosen  # seeded


def test_calibrate_fits_a_predictor_from_real_timings(tmp_path: Path) -> None:
    (tmp_path / "board.toml").write_text(BOARD)
    profile = load_profile("board", [tmp_path])
    timer = LocalTimer(2, graph_optimization="basic", protocol=FAST, input_size=48)
    seen: list[float] = []
    predictor, seconds = calibrate(profile, timer, device_calibration(profile, timer),
                                   load_space("tiny"), 8, seed=0,
                                   on_sample=lambda i, n, c, p, ms: seen.append(ms))
    timer.close()
    assert len(seen) == 8 and all(ms > 0 for ms in seen) and seconds > 0
    assert predictor.samples == 8 and math.isfinite(predictor.cv_mape)
    assert predictor.calibration.threads == 2 and predictor.calibration.device == "board"


def test_calibrate_then_predict_on_the_cli(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "board.toml").write_text(BOARD)
    args = ("--device", "board", "--profiles", str(tmp_path))
    code, out, err = cli("measure", "--preset", "squeezenet1_1", "--predict", *args)
    assert code == 1 and "no latency predictor for board yet; run `autosq calibrate" in err
    code, out, err = cli("calibrate", *args, "--samples", "8", "--space", "tiny", "--json")
    assert code == 0, err
    stored = json.loads(out)
    assert stored["samples"] == 8 and Path(stored["path"]).is_file()
    code, out, err = cli("measure", "--base-e", "16", "--incr-e", "16", "--macro", "v1.1",
                         "--conv1", "16", "--sr", "0.25", "--predict", "--json", *args)
    assert code == 0, err
    result = json.loads(out)
    assert result["latency_kind"] == "predicted" and result["latency_ms"] > 0
    assert result["cv_mape"] == stored["cv_mape"]
    code, out, _ = cli("devices", "--profiles", str(tmp_path), "--json")
    board = next(d for d in json.loads(out) if d["name"] == "board")
    assert board["predictor"]["samples"] == 8 and board["predictor"]["current"] is True
    code, _, err = cli("measure", "--preset", "squeezenet1_1", "--precision", "int8",
                       "--predict", *args)
    assert code == 2 and "calibrated on fp32 graphs only" in err


def test_a_stale_predictor_is_refused(cli: Cli, tmp_path: Path, isolated_cache: Path) -> None:
    (tmp_path / "board.toml").write_text(BOARD)
    args = ("--device", "board", "--profiles", str(tmp_path))
    code, _, err = cli("calibrate", *args, "--samples", "8", "--space", "tiny")
    assert code == 0, err
    (path,) = (isolated_cache / "predictors").glob("board-*.json")
    data = json.loads(path.read_text())
    data["calibration"]["onnxruntime"] = "0.9.0"
    path.write_text(json.dumps(data))
    code, _, err = cli("measure", "--preset", "squeezenet1_1", "--predict", *args)
    assert code == 1 and "predictor for board is stale" in err and "'0.9.0'" in err
    assert len(err.strip().splitlines()) == 1
    code, out, _ = cli("devices", "--profiles", str(tmp_path))
    assert "stale: recalibrate" in out


@pytest.mark.parametrize(("args", "code", "needle"), [
    (["--device", "nosuch"], 2, "unknown device 'nosuch'"),
    (["--device", "rpi4"], 2, "device rpi4's latency is estimated"),
    (["--device", "host", "--samples", "3"], 2, "--samples must be >= 8"),
    (["--device", "host", "--space", "nosuch"], 2, "nosuch"),
])
def test_calibrate_bad_input(cli: Cli, args: list[str], code: int, needle: str) -> None:
    got, _, err = cli("calibrate", *args)
    assert got == code and needle in err and len(err.strip().splitlines()) == 1


def test_calibrate_an_unreachable_agent(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "pi.toml").write_text('name = "pi"\n[budget]\nmax_mb = 5\n[latency]\n'
                                      'source = "agent"\nurl = "http://127.0.0.1:9"\n')
    code, _, err = cli("calibrate", "--device", "pi", "--profiles", str(tmp_path))
    assert code == 1 and "cannot reach the agent at http://127.0.0.1:9" in err


def test_measure_takes_architecture_flags(cli: Cli) -> None:
    code, out, err = cli("measure", "--base-e", "16", "--incr-e", "16", "--macro", "v1.1",
                         "--conv1", "16", "--input-size", "32", "--num-classes", "10", "--json")
    assert code == 0, err
    assert json.loads(out)["model"] == "architecture @ 32x32"
    code, _, err = cli("measure", "model.onnx", "--base-e", "16")
    assert code == 2 and "not both" in err
    with pytest.raises(UsageError):
        device_calibration(load_profile("rpi4"), LocalTimer())


def test_an_estimated_device_uses_a_predictor_calibrated_through_its_agent(cli: Cli) -> None:
    """rpi4 is estimated from one published figure; once a profile of the same name was
    calibrated on the board through its agent, that predictor replaces the scaling for
    predictions (a predictor of other runtime settings does not)."""
    from autosq.arch.presets import preset
    from autosq.measure.features import latency_features
    from autosq.measure.predictor import Calibration, fit_predictor, save_predictor

    code, _, err = cli("measure", "--preset", "squeezenet1_1", "--device", "rpi4", "--predict")
    assert code == 1 and "estimated from one published figure" in err
    assert len(err.strip().splitlines()) == 1
    rpi4 = load_profile("rpi4")
    configs = [c for c, _ in spread_candidates(load_space("default"), 12, 0, 224)]
    rows = [latency_features(c, "fp32") for c in configs]
    ms = [1.5 * cost(c).macs / 1e6 + 3.0 for c in configs]  # a slow board: linear in MACs

    def save(threads: int) -> None:
        save_predictor(fit_predictor(Calibration(
            "rpi4", "agent", threads, rpi4.provider, rpi4.graph_optimization,
            "Raspberry Pi 4 Model B Rev 1.4 (fingerprint)", "1.20.0"), rows, ms))

    save(threads=1)  # other runtime settings than the profile's 4 threads: not used
    code, _, err = cli("measure", "--preset", "squeezenet1_1", "--device", "rpi4", "--predict")
    assert code == 1 and "no predictor was calibrated on the device" in err
    save(threads=rpi4.threads)
    code, out, err = cli("measure", "--preset", "squeezenet1_1", "--device", "rpi4", "--predict",
                         "--json")
    assert code == 0, err
    got = json.loads(out)
    want = 1.5 * cost(preset("squeezenet1_1")).macs / 1e6 + 3.0
    assert got["latency_kind"] == "predicted" and math.isclose(got["latency_ms"], want,
                                                                rel_tol=0.05)
