"""Flags are checked by the CLI before any work: one line naming the flag, exit 2, and nothing
created (no study storage for a search refused at its flags)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., tuple[int, str, str]]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["search", "--seed", "-1"], "--seed must be in 0..4294967295; got -1"),
        (["search", "--seed", str(2**32)], "--seed must be in 0..4294967295"),
        (["search", "--trials", "0"], "--trials must be >= 1; got 0"),
        (["search", "--timeout", "nan"], "--timeout must be a finite number > 0"),
        (["search", "--timeout", "-5"], "--timeout must be a finite number > 0"),
        (["search", "--timeout", "0"], "--timeout must be a finite number > 0"),
        (["search", "--max-mb", "nan"], "--max-mb must be a finite number > 0"),
        (["search", "--max-ms", "-1"], "--max-ms must be a finite number >= 0"),
        (["search", "--input-size", "0"], "--input-size must be >= 1; got 0"),
        (["search", "--study", ""], "--study must be a non-empty name"),
        (["search", "--sampler", "bogus"], "--sampler must be one of tpe, tpe-only, nsga2, random"),
        (["search", "--proxy", "vibes"], "--proxy must be one of synflow"),
        (["search", "--refine", "1"], "--refine trains front members: it needs --data"),
        (["search", "--refine", "1", "--data", "builtin:shapes:20", "--accuracy", "proxy"],
         "not a proxy"),
        (["measure", "--preset", "squeezenet1_1", "--max-ms", "-1"], "--max-ms must be"),
        (["agent", "--port", "70000"], "--port must be in 0..65535; got 70000"),
        (["agent", "--port", "-1"], "--port must be in 0..65535; got -1"),
        (["arch", "--sr", "inf"], "sr must be a finite number; got inf"),
        (["export", "--study", "s", "--out", "m.onnx", "--format", "tflite"],
         "--format must be one of onnx, pt"),
        (["compare", "--devices", "rpi4", "--max-ms", "nan"], "--max-ms values must be finite"),
    ],
)
def test_bad_flags_are_one_line_and_create_nothing(cli: Cli, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    args: list[str], needle: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(*args)
    assert code == 2, err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no autosq.db, no partial output


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\x00\x01\x02binary", "not valid TOML"),
        ("name = 'caf\u00e9'".encode("latin-1"), "is not UTF-8 text"),
        (b"a = " + b"[" * 5000 + b"]" * 5000, "not valid TOML"),
        (b"name = 'x'\n[budget]\nmax_mb = nan\n[latency]\nsource = 'measured'\n",
         "key 'budget.max_mb' must be a finite number"),
    ],
)
def test_unreadable_profile_files_are_one_line(cli: Cli, tmp_path: Path, content: bytes,
                                               needle: str) -> None:
    path = tmp_path / "board.toml"
    path.write_bytes(content)
    code, _, err = cli("measure", "--preset", "squeezenet1_1", "--device", str(path))
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_a_folder_or_a_link_loop_as_a_profile(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "dir.toml").mkdir()
    code, _, err = cli("measure", "--preset", "squeezenet1_1", "--device",
                       str(tmp_path / "dir.toml"))
    assert code == 2 and "is a folder" in err
    loop = tmp_path / "loop.toml"
    loop.symlink_to(loop)
    code, _, err = cli("measure", "--preset", "squeezenet1_1", "--device", str(loop))
    assert code == 2 and "link loop" in err


def test_outputs_are_checked_before_the_work(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "out.csv").mkdir()
    code, _, err = cli("search", "--csv", str(tmp_path / "out.csv"), "--storage",
                       f"sqlite:///{tmp_path / 's.db'}")
    assert code == 2 and "--csv" in err and "is a folder" in err
    assert not (tmp_path / "s.db").exists()
