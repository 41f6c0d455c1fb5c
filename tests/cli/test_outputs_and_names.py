"""Outputs that are a command's own inputs, and names no file system can hold (badinput-2:
B-self-*, B-rp-out-is-db, B-uni-*-long, B-rp-out-longname, F5-20): one usage line, exit 2,
checked before anything is written, so the study, the model or the container is left as it
was."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., tuple[int, str, str]]
TINY = ["--space", "tiny", "--input-size", "32", "--max-mb", "1", "--sampler", "random",
        "--no-retime", "--trials", "2"]


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small study in a SQLite file and in a journal."""
    import contextlib
    import io

    from autosq.cli import main

    folder = tmp_path_factory.mktemp("self")
    made = {}
    for kind in ("sqlite", "journal"):
        path = folder / f"study.{kind}"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["search", *TINY, "--study", "s", "--storage",
                         f"{kind}:///{path}"]) == 0
        made[kind] = path
    return made


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
@pytest.mark.parametrize(("command", "suffix"), [
    (["front", "--study", "s", "--csv"], ".csv"),  # B-self-front-csv-is-db
    (["front", "--study", "s", "--plot"], ".png"),
    (["report", "--study", "s", "--out"], ".html"),  # B-rp-out-is-db
    (["export", "--study", "s", "--trial", "0", "--out"], ".onnx"),  # B-self-export-out-is-db
    (["search", *TINY, "--study", "s", "--report"], ".html"),  # B-self-search-report-is-db
])
def test_no_output_is_written_over_the_study(cli: Cli, studies: dict[str, Path], kind: str,
                                             command: list[str], suffix: str,
                                             tmp_path: Path) -> None:
    # The study's own file, named like the output (study.csv), given both ways.
    study = tmp_path / f"study{suffix}"
    study.write_bytes(studies[kind].read_bytes())
    before = _digest(study)
    # SQLAlchemy's options after '?' are not part of the file's name
    urls = [f"{kind}:///{study}"] + ([f"sqlite:///{study}?timeout=5"] if kind == "sqlite" else [])
    for output in (study, tmp_path / "." / study.name):
        for url in urls:
            code, _, err = cli(*command, str(output), "--storage", url)
            assert code == 2 and len(err.strip().splitlines()) == 1, err
            assert "is the study's storage file" in err and "choose another file name" in err
    assert _digest(study) == before and sorted(tmp_path.iterdir()) == [study]


def test_compress_and_decompress_never_overwrite_what_they_read(cli: Cli,
                                                                tmp_path: Path) -> None:
    from hostile import valid_container

    dcz = tmp_path / "m.dcz"
    dcz.write_bytes(valid_container())
    before = _digest(dcz)
    code, _, err = cli("compress", str(dcz.with_suffix(".pt")), "--out", str(dcz))
    assert code == 2  # no such model: refused before anything
    code, _, err = cli("decompress", str(dcz), "--out", str(tmp_path / "m.onnx"))
    assert code == 0, err
    model = tmp_path / "m.onnx"
    for args, needle in ((["compress", str(model), "--out", str(model)], ".onnx"),
                         (["decompress", str(dcz), "--out", str(tmp_path / "m.dcz.json")],
                          "must end with .onnx or .pt"),
                         (["compress", str(model), "--out", str(tmp_path / "x.dcz"), "--data",
                           str(tmp_path)], "lies inside the data (--data)")):
        code, _, err = cli(*args)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert _digest(dcz) == before and not (tmp_path / "x.dcz").exists()


LONG = "x" * 300


@pytest.mark.parametrize("args", [
    ["report", "--study", "s", "--out", "{tmp}/" + LONG + ".html"],
    ["front", "--study", "s", "--csv", "{tmp}/" + LONG + ".csv"],
    ["export", "--study", "s", "--trial", "0", "--out", "{tmp}/" + LONG + ".onnx"],
    ["search", *TINY, "--storage", "sqlite:///{tmp}/" + LONG + ".db"],
    ["front", "--study", "s", "--storage", "sqlite:///{tmp}/" + "d/" * 2500 + "s.db"],
    ["measure", "--preset", "squeezenet1_1", "--input-size", "32", "--device", "x" * 5000],
    ["measure", "--preset", "squeezenet1_1", "--input-size", "32", "--device",
     "{tmp}/" + LONG + ".toml"],
    ["compress", "{tmp}/" + LONG + ".pt", "--out", "{tmp}/m.dcz"],
    ["front", "--study", "s", "--storage", "journal://"],
])
def test_names_no_file_system_holds_are_one_usage_line(cli: Cli, tmp_path: Path,
                                                       args: list[str]) -> None:
    code, _, err = cli(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert len(err) < 600 and "File name too long" not in err, err
    assert any(w in err for w in ("bytes; file systems allow at most 255", "characters long",
                                  "unknown device", "names no file")), err
    assert list(tmp_path.iterdir()) == []
