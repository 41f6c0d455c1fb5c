"""What a person reads after a search: the front table at 80, 120 and 160 columns, the thinned
front and --all, the int8 flag, the next steps, --version, help placeholders and defaults, and
progress written to a pipe (issues 24 and 28)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from util import synthetic_study

from autosq.searching.thinning import SHOWN

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def long_front(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('front') / 's.db'}"
    synthetic_study(url, "long", 40, int8_slower=True)
    return url


def rows(text: str) -> list[str]:
    """The table's body rows (they hold a trial number after the marker column)."""
    return [line for line in text.splitlines()
            if re.match(r"^\s*│?\s*[*]?\s*│\s*\d+\s*│", line)]


@pytest.mark.parametrize("columns", [80, 120, 160])
def test_the_table_fits_and_keeps_the_marker_and_trials(cli: Cli, long_front: str,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        columns: int) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, err = cli("front", "--study", "long", "--storage", long_front)
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= columns
    body = rows(out)
    assert len(body) == SHOWN
    assert sum(line.lstrip("│ ").startswith("*") for line in body) == 1
    trials = [int(re.findall(r"\d+", line)[0]) for line in body]
    assert len(set(trials)) == SHOWN
    assert "int8!" in out and "int8 runs slower here" in out
    assert f"{SHOWN} of the 41 members shown" in out and "--all lists every one" in out


def test_all_shows_every_member_and_json_follows(cli: Cli, long_front: str) -> None:
    code, out, _ = cli("front", "--study", "long", "--storage", long_front, "--all")
    assert code == 0 and len(rows(out)) == 41 and "members shown" not in out
    code, thin, _ = cli("front", "--study", "long", "--storage", long_front, "--json")
    code_all, full, _ = cli("front", "--study", "long", "--storage", long_front, "--json",
                            "--all")
    assert code == code_all == 0
    shown, every = json.loads(thin), json.loads(full)
    assert len(shown) == SHOWN and len(every) == 41
    assert all(m["shown"] for m in shown) and sum(m["shown"] for m in every) == SHOWN
    assert sum(m["recommended"] for m in shown) == 1
    lat = [m["latency_ms"] for m in every]
    acc = [m["accuracy"] for m in every]
    ends = {every[lat.index(min(lat))]["trial"], every[acc.index(max(acc))]["trial"]}
    assert ends <= {m["trial"] for m in shown}
    flagged = [m for m in every if m["slower_than_fp32"]]
    assert len(flagged) == 1 and flagged[0]["config"]["precision"] == "int8"
    assert flagged[0]["fp32_trial"] is not None


def test_version_and_clean_help(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from autosq import __version__

    monkeypatch.setenv("COLUMNS", "250")  # help lines whole, for the phrases below
    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"autosq {__version__}"
    for command in ("search", "front", "compress", "export", "compare", "report"):
        code, text, _ = cli(command, "--help")
        assert code == 0
        assert "<bool>" not in text and "list[" not in text, command
        assert not re.search(r"\d\.\d{6,}", text), command  # no 0.3333333333333333
    code, text, _ = cli("search", "--help")
    assert "--trials-timeout" in text and "from launch to the printed front" in text
    assert "as many as the time allows" in text


def test_progress_to_a_pipe_is_plain_lines_and_a_search_ends_with_next_steps(
        tmp_path: Path) -> None:
    """Through a real pipe (not a terminal): plain lines, no cursor codes, one at the start
    and one when the confirmation begins; then the next steps on stdout."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    proc = subprocess.run(
        [sys.executable, "-m", "autosq", "search", "--device", "host", "--space", "tiny",
         "--input-size", "32", "--num-classes", "10", "--max-mb", "0.2", "--trials", "2",
         "--storage", url],
        capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "AUTOSQ_PROGRESS_SECONDS": "3600"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "\x1b" not in proc.stderr and "\r" not in proc.stderr
    assert all(line.startswith("autosq: [") for line in lines), lines
    assert "2 trials to run" in lines[0] and "confirming the front" in lines[-1]
    assert re.search(r"^next: autosq export --study \S+ --storage \S+ --recommended "
                     r"--out model.onnx; autosq report ", proc.stdout, re.M)


def test_plain_progress_ticks_with_the_latest_status() -> None:
    from autosq.cli.progress import PlainProgress

    now = [0.0]
    out = StringIO()
    plain = PlainProgress(out, 10.0, clock=lambda: now[0])
    plain.label, plain.total, plain.done, plain.status = "s", 50, 7, "feasible 3"
    now[0] = 75.0
    plain.tick()
    plain.training = "step 10/500, loss 1.2"
    now[0] = 85.0
    plain.tick()
    assert out.getvalue().splitlines() == [
        "autosq: [01:15] s: 7/50 trials, feasible 3",
        "autosq: [01:25] s: 7/50 trials, feasible 3; training a candidate: step 10/500, loss 1.2",
    ]


def test_plain_progress_of_a_search_the_time_decides() -> None:
    from autosq.cli.progress import PlainProgress

    out = StringIO()
    plain = PlainProgress(out, 3600.0, clock=lambda: 0.0)
    plain.start("s", None)
    plain.done = 12
    plain.tick()
    plain.set_phase("confirming the front")
    plain.stop()
    assert out.getvalue().splitlines() == [
        "autosq: [00:00] s: as many trials as the time allows; a status line every 3600 s",
        "autosq: [00:00] s: 12 trials",
        "autosq: [00:00] s: 12 trials; confirming the front",
    ]


def test_without_data_the_accuracy_column_is_called_a_ranking_guess(
        cli: Cli, long_front: str, tmp_path: Path) -> None:
    """Issue 25: the table and the page say that a proxy score is a guess, and how to get
    real accuracy."""
    code, out, _ = cli("front", "--study", "long", "--storage", long_front)
    assert code == 0
    said = " ".join(out.split())  # the line as wrapped by the console
    assert "the accuracy column is a ranking guess: the synflow score" in said
    assert "--data FOLDER" in said and "--pretrained torchvision" in said
    page = tmp_path / "page.html"
    code, _, err = cli("report", "--study", "long", "--storage", long_front, "--out", str(page))
    assert code == 0, err
    assert "is a ranking guess" in page.read_text()


def test_trained_accuracy_needs_no_caveat() -> None:
    from autosq.accuracy import AccuracySetting

    assert AccuracySetting("val_top1", data="d").caveat() is None
    assert "refine" in (AccuracySetting("supernet", data="d").caveat() or "")


def test_timings_taken_on_a_busy_machine_are_counted_in_the_notes(cli: Cli,
                                                                   tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    synthetic_study(url, "busy", 12, contended=3)
    code, out, err = cli("front", "--study", "busy", "--storage", url)
    assert code == 0, err
    flat = " ".join(out.split())
    assert "3 of 12 timed candidates kept a timing taken while other processes kept" in flat
    quiet = f"sqlite:///{tmp_path / 'q.db'}"
    synthetic_study(quiet, "quiet", 12)
    code, out, err = cli("front", "--study", "quiet", "--storage", quiet)
    assert code == 0, err
    assert "other processes" not in out
