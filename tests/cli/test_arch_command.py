"""``autosq arch`` and the CLI's error contract (one line, exit code, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import pytest

Cli = Callable[..., tuple[int, str, str]]


def test_arch_preset_table(cli: Cli) -> None:
    code, out, err = cli("arch", "squeezenet1_0")
    assert code == 0, err
    assert "fire9.expand3x3" in out and "1,248,424" in out and "818,924,576" in out
    assert "4.76" in out


def test_arch_flags_json(cli: Cli) -> None:
    code, out, _ = cli(
        "arch",
        "--base-e",
        "96",
        "--incr-e",
        "64",
        "--freq",
        "2",
        "--pct-3x3",
        "0.4",
        "--sr",
        "0.25",
        "--macro",
        "v1.1",
        "--bypass",
        "simple",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert {"params", "macs", "size_mb", "peak_mem_mb", "config", "layers"} <= set(data)
    assert data["config"]["base_e"] == 96 and data["config"]["macro"] == "v1.1"
    assert data["size_mb"] == pytest.approx(data["params"] * 4 / 2**20)
    assert sum(layer["params"] for layer in data["layers"]) == data["params"]


def test_flags_override_a_preset(cli: Cli) -> None:
    code, out, _ = cli("arch", "squeezenet1_1", "--sr", "0.25", "--json")
    data = json.loads(out)
    assert code == 0 and data["config"]["sr"] == 0.25 and data["config"]["macro"] == "v1.1"


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["arch", "--pct-3x3", "1.5"], 2, "pct_3x3 must be in [0, 1]; got 1.5"),
        (["arch", "--sr", "0"], 2, "sr (squeeze ratio) must be > 0"),
        (["arch", "--macro", "v3"], 2, "macro must be one of v1.0, v1.1"),
        (["arch", "--input-size", "8"], 2, "input_size must be >= 21"),
        (["arch", "squeezenet9"], 2, "unknown preset 'squeezenet9'"),
        (["arch", "--sr", "abc"], 2, "'--sr'"),
        (["arch", "--no-such-flag"], 2, "No such option: --no-such-flag"),
        (["no-such-command"], 2, "No such command"),
    ],
)
def test_bad_input_is_one_line(cli: Cli, args: list[str], code: int, needle: str) -> None:
    got, out, err = cli(*args)
    assert got == code
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("autosq: error: ")
    assert "Traceback" not in err + out


def test_console_script_help_is_light_and_errors_have_no_traceback() -> None:
    code = (
        "import sys; from autosq.cli import main; rc = main(['--help']); "
        "heavy = [m for m in ('torch', 'onnxruntime', 'optuna', 'pandas') if m in sys.modules]; "
        "sys.exit(10 if heavy else rc)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
    proc = subprocess.run(
        [sys.executable, "-m", "autosq", "arch", "--pct-3x3", "7"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "autosq: error: pct_3x3 must be in [0, 1]; got 7.0"


def test_debug_shows_the_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "autosq", "--debug", "arch", "--sr", "-1"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr
