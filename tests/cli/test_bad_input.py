"""The bad-input catalogue, by kind: every bad file, flag value or implied allocation gets one
line saying what is wrong and what is expected, the right exit code (2 usage, 1 runtime), no
traceback, and nothing written or changed. The tests build their own bad files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., tuple[int, str, str]]
SPACE = (Path(__file__).resolve().parents[2] / "search_spaces" / "tiny.toml").read_text()
PROFILE = ('name = "{name}"\n[budget]\nmax_mb = 5\n[runtime]\nthreads = {threads}\n'
           'input_size = {size}\n[latency]\nsource = "measured"\n')


def one_line(code: int, err: str, want_code: int, *needles: str) -> None:
    assert code == want_code, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not err.startswith("\n"), repr(err)  # nothing before the line (a progress bar)
    assert "internal error" not in err, err
    for needle in needles:
        assert needle in err, err


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def bad_files(tmp: Path) -> dict[str, Path]:
    """One bad file of each kind (the same kinds serve as profile and as space files)."""
    files = {
        "binary": b"\x00\x01\x02\xff\xfe binary",
        "latin1": "name = 'caf\u00e9'\n".encode("latin-1"),
        "deep": b"a = " + b"[" * 5000 + b"]" * 5000,
        "empty": b"",
    }
    out = {}
    for name, content in files.items():
        out[name] = tmp / f"{name}.toml"
        out[name].write_bytes(content)
    (tmp / "folder.toml").mkdir()
    out["folder"] = tmp / "folder.toml"
    (tmp / "loop.toml").symlink_to(tmp / "loop.toml")
    out["loop"] = tmp / "loop.toml"
    out["missing"] = tmp / "missing.toml"
    return out


KINDS = ["binary", "latin1", "deep", "empty", "folder", "loop", "missing"]
WHY = {"binary": "not", "latin1": "not UTF-8 text", "deep": "not valid TOML",
       "empty": "key", "folder": "is a folder", "loop": "link loop", "missing": "does not exist"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ["profile", "space"])
def test_bad_profile_and_space_files(cli: Cli, tmp_path: Path, kind: str, role: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    path = bad_files(work)[kind]
    before = snapshot(work)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    if role == "profile":
        code, _, err = cli("search", "--device", str(path), "--space", "tiny", "--storage",
                           storage)
    else:
        code, _, err = cli("search", "--device", "host", "--space", str(path), "--storage",
                           storage)
    one_line(code, err, 2, str(path), WHY[kind])
    assert snapshot(work) == before and not (tmp_path / "s.db").exists()


@pytest.mark.parametrize(("edit", "needle"), [
    (("low = 0.125\nhigh = 0.5", "low = 0.125\nhigh = inf"), "'params.sr.high' must be a finite"),
    (("low = 0.125\nhigh = 0.5", "low = 0.125\nhigh = nan"), "'params.sr.high' must be a finite"),
    (("low = 0.125\nhigh = 0.5", "low = 0.5\nhigh = 0.125"), "sr"),
    (('name = "tiny"', 'name = 7'), "'name'"),
])
def test_bad_space_values(cli: Cli, tmp_path: Path, edit: tuple[str, str], needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SPACE.replace(*edit))
    code, _, err = cli("search", "--device", "host", "--space", str(path), "--storage",
                       f"sqlite:///{tmp_path / 's.db'}")
    one_line(code, err, 2, needle)
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize(("name", "threads", "size", "needle"), [
    ("nl\\nname", 1, 224, "key 'name' must be a non-empty name"),
    ("board", 1000, 224, "key 'runtime.threads' must be at most 256"),
    ("board", 64, 224, "asks for 64 threads, but this machine gives autosq"),
    ("board", 0, 224, "runtime.threads"),
    ("board", 1, 8, "board.toml"),  # too small for the space: the profile is named
])
def test_bad_profile_values(cli: Cli, tmp_path: Path, name: str, threads: int, size: int,
                            needle: str) -> None:
    if threads == 64 and (os.cpu_count() or 1) >= 64:
        pytest.skip("this machine has 64 CPUs")
    path = tmp_path / "board.toml"
    path.write_text(PROFILE.format(name=name, threads=threads, size=size))
    code, _, err = cli("search", "--device", str(path), "--space", "tiny", "--storage",
                       f"sqlite:///{tmp_path / 's.db'}")
    one_line(code, err, 2, needle)
    assert not (tmp_path / "s.db").exists()


def test_profiles_folder_that_is_a_file(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(PROFILE.format(name="board", threads=1, size=224))
    code, _, err = cli("devices", "--profiles", str(path))
    one_line(code, err, 2, "is a file", "expected a folder of NAME.toml profiles")


def test_a_path_that_is_not_a_toml_file_is_read_as_a_profile(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "board").mkdir()
    code, _, err = cli("measure", "--preset", "squeezenet1_1", "--device",
                       str(tmp_path / "board"))
    one_line(code, err, 2, "is a folder")


@pytest.mark.parametrize(("args", "needle"), [
    (["measure", "--preset", "squeezenet1_1", "--num-classes", "100000000", "--device", "host"],
     "parameters needs"),
    (["search", "--data", "builtin:shapes", "--input-size", "4000", "--trials", "1"],
     "builtin:shapes (3,600 images at 4000px) needs to be held in memory"),
    (["search", "--data", "builtin:shapes:100000000", "--trials", "1"],
     "builtin:shapes:100000000 (1,200,000,000 images at 224px) needs to be held"),
    (["export", "--study", "s", "--trial", "0", "--out", "m.onnx", "--data",
      "builtin:shapes:100000000"], "needs"),
])
def test_impossible_allocations_are_refused_with_the_numbers(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str],
        needle: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(*args)
    if args[0] == "export":  # no such study: refused before the data is even looked at
        assert code in (1, 2) and "internal error" not in err
        return
    one_line(code, err, 2, needle, "of memory; this machine has", "available: ask for")
    assert list(tmp_path.iterdir()) == []  # no study created


@pytest.mark.parametrize("data", ["", " "])
def test_an_empty_data_name_is_refused_not_read_as_the_current_folder(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: str) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):  # the current folder would pass for a data set of two classes
        (tmp_path / name).mkdir()
    code, _, err = cli("search", "--device", "host", "--space", "tiny", "--trials", "1",
                       "--data", data)
    one_line(code, err, 2, "data is empty; expected a folder of images")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no study created


def test_outputs_that_cannot_be_created_are_refused_before_the_work(cli: Cli,
                                                                    tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    code, _, err = cli("search", "--device", "host", "--space", "tiny", "--csv",
                       "/proc/front.csv", "--storage", storage)
    one_line(code, err, 2, "--csv: cannot write /proc/front.csv")
    assert not (tmp_path / "s.db").exists()


def test_refine_of_a_study_autosq_did_not_create(cli: Cli, tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'foreign.db'}"
    optuna.create_study(study_name="foreign", storage=url)
    before = (tmp_path / "foreign.db").read_bytes()
    code, _, err = cli("refine", "--study", "foreign", "--storage", url)
    one_line(code, err, 2, "was not created by autosq")
    assert (tmp_path / "foreign.db").read_bytes() == before


def test_unreadable_images_are_one_warning_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from PIL import Image

    root = tmp_path / "data"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(10):
            Image.new("RGB", (20, 20), (20 * i, 100 if cls == "a" else 0, 0)).save(
                root / cls / f"{i}.png")
    (root / "a" / "broken.png").write_bytes(b"not an image")
    proc = subprocess.run(
        [sys.executable, "-m", "autosq", "search", "--device", "host", "--max-mb", "1",
         "--space", "tiny", "--input-size", "32", "--trials", "1", "--epochs", "0.1",
         "--data", str(root), "--storage", f"sqlite:///{tmp_path / 's.db'}", "--json",
         "--no-retime"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "skipped" in ln or "warn" in ln.lower()]
    assert lines == [f"autosq: warning: skipped 1 unreadable image(s) in {root} (first: "
                     f"{root / 'a' / 'broken.png'})"], proc.stderr


def test_repair_refuses_what_is_not_a_journal(cli: Cli, tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "study.db"
    sqlite3.connect(db).execute("create table t (x)").connection.commit()
    before = db.read_bytes()
    code, _, err = cli("repair", "--storage", f"journal:///{db}")
    one_line(code, err, 2, "is not an Optuna journal", "nothing was changed")
    assert db.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "study.db"]
    code, _, err = cli("repair", "--storage", f"journal:///{tmp_path}")
    one_line(code, err, 2, "is a folder")


@pytest.mark.parametrize(("url", "needle"), [
    ("http://[::1", "must be a URL http://HOST:PORT"),
    ("http://:8765", "must be a URL http://HOST:PORT"),
    ("http://host:99999", "must be a URL http://HOST:PORT"),
    ("http://user:pw@host:8765", "must not hold credentials"),
])
def test_bad_agent_urls_in_profiles(cli: Cli, tmp_path: Path, url: str, needle: str) -> None:
    path = tmp_path / "board.toml"
    path.write_text(f'name = "board"\n[budget]\nmax_mb = 5\n[latency]\nsource = "agent"\n'
                    f'url = "{url}"\n')
    code, _, err = cli("measure", "--preset", "squeezenet1_1", "--device", str(path))
    one_line(code, err, 2, "key 'latency.url'", needle)
    assert "pw" not in err


@pytest.mark.parametrize(("args", "needle"), [
    (["--study", "a" * 300], "at most 200 characters"),
    (["--study", "a\nb"], "printable name"),
    (["--storage", "sqlite://"], "is in memory"),
    (["--storage", "sqlite:///:memory:"], "is in memory"),
])
def test_bad_study_names_and_storages(cli: Cli, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, args: list[str],
                                      needle: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("search", "--device", "host", "--space", "tiny", "--trials", "1", *args)
    one_line(code, err, 2, needle)
    assert list(tmp_path.iterdir()) == []


def test_a_cache_variable_that_is_a_file_fails_before_the_study(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from autosq._io import CACHE_ENV

    blocker = tmp_path / "cachefile"
    blocker.write_text("x")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    code, _, err = cli("search", "--device", "host", "--space", "tiny", "--trials", "1",
                       "--storage", f"sqlite:///{tmp_path / 's.db'}")
    one_line(code, err, 2, CACHE_ENV)
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize(("edit", "needle"), [
    (("step = 0.125", "step = 1e-300"), "must leave at most 1,000,000 values"),
    (('name = "tiny"', 'name = "a b/c,d"'), "key 'name' must be a name"),
])
def test_hostile_space_values(cli: Cli, tmp_path: Path, edit: tuple[str, str],
                              needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SPACE.replace(*edit, 1))
    code, _, err = cli("search", "--device", "host", "--space", str(path), "--storage",
                       f"sqlite:///{tmp_path / 's.db'}")
    one_line(code, err, 2, needle)
    assert not (tmp_path / "s.db").exists()


def test_export_checks_its_profiles_folder_first(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("export", "--study", "s", "--trial", "0", "--out",
                       str(tmp_path / "m.onnx"), "--storage", f"sqlite:///{tmp_path / 's.db'}",
                       "--profiles", str(tmp_path / "nodir"))
    one_line(code, err, 2, "profiles folder")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("budgets", ["99999999999999999999999", "", "1,,2", "0"])
def test_proxy_check_budgets(cli: Cli, budgets: str) -> None:
    code, _, err = cli("proxy-check", "--budgets", budgets, "--no-supernet")
    one_line(code, err, 2, "--budgets must be")


def test_a_model_with_two_inputs_is_refused(cli: Cli, tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    shape = [1, 3, 32, 32]
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["z"])], "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, shape)])
    path = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                ir_version=8), path)
    code, _, err = cli("measure", str(path), "--device", "host")
    one_line(code, err, 1, "the model has 2 inputs", "one float tensor")


def test_a_folder_given_as_a_model(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "m.onnx").mkdir()
    code, _, err = cli("measure", str(tmp_path / "m.onnx"), "--device", "host")
    one_line(code, err, 2, "is a folder")


@pytest.mark.parametrize(("args", "needle"), [
    (["search", "--epochs", "2"], "need --data"),
    (["search", "--batch-size", "8"], "need --data"),
])
def test_training_flags_without_data(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     args: list[str], needle: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(*args)
    one_line(code, err, 2, needle)
    assert list(tmp_path.iterdir()) == []


def test_a_step_that_does_not_divide_the_range(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SPACE.replace("step = 0.125", "step = 0.3", 1))
    code, _, err = cli("search", "--device", "host", "--space", str(path), "--storage",
                       f"sqlite:///{tmp_path / 's.db'}")
    one_line(code, err, 2, "must divide high - low")


@pytest.mark.parametrize(("value", "needle"), [
    ("accuracy,speed", "unknown objective 'speed'"),
    ("latency,size", "accuracy cannot be left out"),
    ("accuracy", "latency cannot be left out"),
    ("accuracy,latency,latency", "names one twice"),
    ("accuracy,latency,size,memory", "at most one of size, memory"),
    ("", "cannot be left out"),
    ("accuracy,latency," + "x" * 5000, "unknown objective"),
])
def test_bad_objectives(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        value: str, needle: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("search", "--device", "host", "--space", "tiny", "--objectives", value)
    one_line(code, err, 2, "--objectives", needle)
    assert len(err) < 400  # a long value is cut, not echoed whole
    assert list(tmp_path.iterdir()) == []  # no study database created


@pytest.mark.parametrize("flag", ["--pretrained", "--teacher"])
def test_an_empty_source_is_named_by_its_flag(cli: Cli, flag: str) -> None:
    code, _, err = cli("search", "--space", "tiny", "--input-size", "32", "--trials", "1",
                       flag, " ")
    one_line(code, err, 2, f"Invalid value for {flag}: must name a file or a source")


def test_a_cache_folder_that_is_a_file_says_so(cli: Cli, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "f").write_text("")
    monkeypatch.setenv("AUTOSQ_CACHE_DIR", str(tmp_path / "f"))
    code, _, err = cli("measure", "--preset", "squeezenet1_1", "--input-size", "32")
    one_line(code, err, 2, "(it is a file, not a folder)")
