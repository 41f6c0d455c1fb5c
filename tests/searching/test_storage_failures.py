"""A search whose storage or machine fails under it (badinput-2: B-pg-server-dies,
B-full-search-*, B-env-ulimit-*): one line naming what failed (passwords masked), the finished
trials kept, the study readable and resumable, and trials that failed because of the machine
never counted towards --trials. Real PostgreSQL (a server of this module's own, stopped by the
test), real SQLite and journal files on a small tmpfs, a real timing process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
from tmpfs import fill, small_tmpfs

from autosq._io import CACHE_ENV
from autosq.searching.storage import finished_count, storage_for

Cli = Callable[..., tuple[int, str, str]]
TINY = ["search", "--device", "host", "--space", "tiny", "--input-size", "32", "--max-mb", "1",
        "--sampler", "random", "--no-retime", "--study", "f"]


def _study(url: str) -> optuna.Study:
    return optuna.load_study(study_name="f", storage=storage_for(url, create=False))


PROGRESS = re.compile(r"autosq: \[\d\d:\d\d\] ")


def _states(url: str) -> list[str]:
    return [t.state.name for t in _study(url).trials]


def _error(err: str) -> str:
    """autosq's own line (progress lines, ``autosq: [mm:ss] ...``, may come before it)."""
    lines = [line for line in err.splitlines()
             if line.startswith("autosq:") and not PROGRESS.match(line)]
    assert len(lines) == 1 and "Traceback" not in err and "internal error" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def own_server() -> Iterator[object]:
    """A PostgreSQL server for this module alone: its tests stop it."""
    from pgserver import running_server

    with running_server() as server:
        yield server


def _pg_ctl(server: object, action: str) -> None:
    from pgserver import _bin

    folder: Path = server.folder  # type: ignore[attr-defined]
    extra = ["-m", "immediate"] if action == "stop" else [
        "-w", "-l", str(folder / "log"), "-o",
        f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1"]  # type: ignore[attr-defined]
    subprocess.run([*server._as, _bin("pg_ctl"), "-D", str(folder / "data"), *extra,  # type: ignore[attr-defined]
                    action], check=True, capture_output=True, cwd=folder)


def test_a_server_that_dies_mid_search_is_one_masked_line_and_the_trials_are_kept(
        own_server: object, cli: Cli) -> None:
    # The search runs in a thread of this process (torch already loaded), the server is
    # stopped (immediate shutdown) once a trial is finished.
    import threading

    url = own_server.new_database()  # type: ignore[attr-defined]
    outcome: list[tuple[int, str, str]] = []
    search = threading.Thread(target=lambda: outcome.append(
        cli(*TINY, "--storage", url, "--trials", "500")))
    search.start()
    deadline = time.monotonic() + 120
    while not _study_has(url, 1):  # a finished trial to keep
        assert search.is_alive() and time.monotonic() < deadline, outcome
        time.sleep(0.05)
    _pg_ctl(own_server, "stop")
    try:
        search.join(timeout=120)
    finally:
        _pg_ctl(own_server, "start")
    assert not search.is_alive() and outcome
    code, _, err = outcome[0]
    assert code == 1
    line = _error(err)
    assert "the study storage postgresql://autosq:***@127.0.0.1:" in line, line
    assert "s3cret-pw" not in err and "keeps every finished trial" in line
    assert _states(url).count("COMPLETE") >= 1  # kept, and readable once it is back
    code, out, err = cli("front", "--study", "f", "--storage", url)
    assert code == 0 and "complete" in out, err


def _study_has(url: str, complete: int) -> bool:
    try:
        return _states(url).count("COMPLETE") >= complete
    except Exception:  # not created yet
        return False


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_disk_that_fills_up_mid_search_is_one_line_and_the_study_resumes(
        kind: str, tmp_path: Path, cli: Cli) -> None:
    with small_tmpfs(tmp_path / "disk") as disk:
        url = f"{kind}:///{disk / ('s.db' if kind == 'sqlite' else 's.log')}"
        code, _, err = cli(*TINY, "--storage", url, "--trials", "2")
        assert code == 0, err
        filler = fill(disk)
        code, _, err = cli(*TINY, "--storage", url, "--trials", "6")
        assert code == 1
        line = _error(err)
        assert "no space left on the device holding" in line and str(disk)[1:] in line, line
        assert "keeps every finished trial" in line
        filler.unlink()
        code, out, err = cli("front", "--study", "f", "--storage", url)
        assert code == 0 and "2 complete" in out, err  # readable, nothing cut
        code, _, err = cli(*TINY, "--storage", url, "--trials", "4")
        assert code == 0, err
        study = _study(url)
        assert finished_count(study) == 4 and _states(url).count("COMPLETE") == 4


def test_a_machine_that_cannot_time_stops_the_search_without_counting_it(
        tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    # The environment, not the candidate (an inherited limit, a broken Python for the timing
    # process): the search says so and stops; its trial is not counted, and the same command
    # in a working environment reaches --trials (B-env-ulimit-search, -rerun).
    url = f"sqlite:///{tmp_path / 's.db'}"
    monkeypatch.setenv("PYTHONHOME", str(tmp_path / "no-python-here"))
    code, _, err = cli(*TINY, "--storage", url, "--trials", "2")
    assert code == 1 and "the timing process could not start" in _error(err), err
    monkeypatch.delenv("PYTHONHOME")
    assert finished_count(_study(url)) == 0 and _states(url) == ["FAIL"]
    code, _, err = cli(*TINY, "--storage", url, "--trials", "2")
    assert code == 0, err
    assert _states(url).count("COMPLETE") == 2


def test_failures_recorded_for_the_machine_do_not_count(tmp_path: Path) -> None:
    from autosq.searching.storage import counts

    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=storage_for(url), study_name="f")
    for reason in ("the timing process cannot limit its memory to 8192 MB (--max-memory-mb); "
                   "use a smaller limit",  # what earlier versions recorded under ulimit -v
                   "not counted: this machine could not evaluate it: no space left",
                   "ONNX Runtime failed on the model: bad graph"):
        trial = study.ask()
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    assert [counts(t) for t in study.trials] == [False, False, True]


def test_an_inherited_memory_limit_is_followed(tmp_path: Path, isolated_cache: Path) -> None:
    # B-env-ulimit-measure-preset: under `ulimit -v` below the default cap (8 GiB here), the
    # timing process takes what this process may have instead of refusing every timing.
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    run = subprocess.run([sys.executable, "-m", "autosq", "measure", "--preset",
                          "squeezenet1_1", "--input-size", "32", "--json"],
                         capture_output=True, text=True, timeout=120, preexec_fn=limit,
                         env={**os.environ, CACHE_ENV: str(isolated_cache)})
    assert run.returncode == 0, run.stderr
    assert '"latency_kind": "measured"' in run.stdout
