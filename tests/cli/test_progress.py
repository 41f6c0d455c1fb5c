"""The training progress shown by export, refine, proxy-check and the search: images/s and the
time left."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from autosq.cli.progress import TrainClock, _train_status, training_progress


def test_the_time_left_follows_the_pace_and_restarts_with_a_new_training() -> None:
    now = [0.0]
    clock = TrainClock(lambda: now[0])
    assert clock.eta(10, 100) is None  # no pace yet
    now[0] = 9.0
    assert clock.eta(19, 100) == pytest.approx(81.0)  # 9 steps in 9 s, 81 to go
    now[0] = 10.0
    assert clock.eta(5, 50) is None  # a new training: its own pace
    now[0] = 12.0
    assert clock.eta(9, 50) == pytest.approx(2 / 4 * 41)


def test_status_names_images_per_second_and_time_left() -> None:
    assert _train_status(0.5, 1234.4, 75) == "loss 0.500, 1,234 images/s, 1m15s left"
    assert _train_status(0.5, 10.0, None) == "loss 0.500, 10 images/s"
    assert _train_status(0.5, 10.0, 3725).endswith("1h02m left")


def test_plain_lines_name_the_training_and_its_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setenv("AUTOSQ_PROGRESS_SECONDS", "3600")  # only the first line
    with training_progress("training trial 3 for export") as on_step:
        on_step(1, 100, 2.3, 50.0)
        on_step(11, 100, 2.1, 55.0)
    lines = err.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(r"autosq: \[\d\d:\d\d\] training trial 3 for export: step 1/100, loss "
                        r"2.300, 50 images/s; a status line every 3600 s", lines[0])


def test_export_shows_its_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real export with data through the CLI: the first plain line says the training's step
    and images/s (later ones, every AUTOSQ_PROGRESS_SECONDS, the time left too)."""
    from autosq.cli import main

    url = f"sqlite:///{tmp_path / 's.db'}"
    monkeypatch.setenv("AUTOSQ_PROGRESS_SECONDS", "3600")
    assert main(["search", "--device", "host", "--space", "tiny", "--input-size", "32",
                 "--max-mb", "1", "--num-classes", "10", "--trials", "1", "--no-retime",
                 "--storage", url,
                 "--study", "s"]) == 0
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    code = main(["export", "--study", "s", "--trial", "0", "--storage", url, "--data",
                 "builtin:shapes:20", "--epochs", "20", "--out", str(tmp_path / "m.onnx")])
    assert code == 0, err.getvalue()
    text = err.getvalue()
    assert re.search(r"training trial 0 for export: step \d+/\d+, loss \d+\.\d+, [\d,]+ "
                     r"images/s; a status line every 3600 s", text), text
