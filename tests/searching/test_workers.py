"""Many workers on one study: exact trial counts, lost workers, interrupts, and storages that
are never damaged or created by a command that only reads (real SQLite, journal files and a
real PostgreSQL server on loopback)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from autosq._io import CACHE_ENV
from autosq.searching.storage import finished_count, storage_for

Cli = Callable[..., tuple[int, str, str]]
TINY = ["search", "--device", "host", "--space", "tiny", "--input-size", "32", "--max-mb", "1",
        "--sampler", "random", "--no-retime", "--study", "w"]


def _study(url: str) -> optuna.Study:
    return optuna.load_study(study_name="w", storage=storage_for(url, create=False))


def _complete(url: str) -> int:
    return len(_study(url).get_trials(states=(optuna.trial.TrialState.COMPLETE,)))


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, CACHE_ENV: str(cache)}


@pytest.mark.parametrize("kind", ["journal", "postgresql"])
def test_three_workers_finish_exactly_the_trials_asked_for(
        kind: str, cli: Cli, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = (f"journal:///{tmp_path / 'w.log'}" if kind == "journal"
           else str(request.getfixturevalue("postgres_url")))
    code, _, err = cli(*TINY, "--storage", url, "--trials", "9", "--workers", "3", "--json")
    assert code == 0, err
    study = _study(url)
    assert finished_count(study) == 9 and _complete(url) == 9
    # (How the trials were shared depends on how fast the workers started: not asserted.)
    code, _, err = cli(*TINY, "--storage", url, "--trials", "9", "--workers", "3")
    assert code == 0 and _complete(url) == 9  # already there: nothing more


def test_workers_need_a_shared_storage(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli(*TINY, "--storage", f"sqlite:///{tmp_path / 's.db'}", "--workers", "2")
    assert code == 2 and "--workers needs a storage several processes can write" in err
    assert not (tmp_path / "s.db").exists()


def _start(url: str, cache: Path, trials: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "autosq", *TINY, "--storage", url,
                             "--trials", str(trials), "--data", "builtin:shapes:30",
                             "--epochs", "3", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=_env(cache))


def _wait_running(url: str, proc: subprocess.Popen[str]) -> None:
    """Until the process has a trial running (or has exited: the caller's asserts fail)."""
    while proc.poll() is None:
        try:
            trials = _study(url).get_trials(deepcopy=False,
                                            states=(optuna.trial.TrialState.RUNNING,))
        except Exception:  # the study is not created yet
            trials = []
        if any(t.user_attrs.get("worker") for t in trials):
            return
        time.sleep(0.1)


def _running_of(url: str, pid: int) -> bool:
    trials = _study(url).get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return any(str(t.user_attrs.get("worker", "")).endswith(f":{pid}") for t in trials)


def _freeze_in_trial(url: str, proc: subprocess.Popen[str]) -> None:
    """Stop ``proc`` (SIGSTOP) at a moment it is inside a trial of its own, without luck: it is
    frozen, and let go again until the storage shows it running a trial."""
    while True:
        _wait_running(url, proc)
        assert proc.poll() is None, "the worker exited before it could be frozen in a trial"
        proc.send_signal(signal.SIGSTOP)
        if _running_of(url, proc.pid):
            return
        proc.send_signal(signal.SIGCONT)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["journal", "postgresql"])
def test_a_killed_worker_loses_nothing_and_the_rerun_reaches_the_count(
        kind: str, tmp_path: Path, isolated_cache: Path, request: pytest.FixtureRequest,
        cli: Cli) -> None:
    url = (f"journal:///{tmp_path / 'w.log'}" if kind == "journal"
           else str(request.getfixturevalue("postgres_url")))
    proc = _start(url, isolated_cache, 4)
    _wait_running(url, proc)
    while _complete(url) < 1 and proc.poll() is None:  # at least one finished trial to keep
        time.sleep(0.1)
    _freeze_in_trial(url, proc)
    proc.kill()  # SIGKILL: the running trial is left RUNNING
    proc.wait()
    kept = _complete(url)
    assert kept >= 1
    code, _, err = cli(*TINY, "--storage", url, "--trials", "4", "--data", "builtin:shapes:30",
                       "--epochs", "3")
    assert code == 0, err
    study = _study(url)
    lost = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert lost and all(t.user_attrs.get("fail_reason", "").startswith("its worker stopped")
                        for t in lost)
    assert _complete(url) == 4 and finished_count(study) == 4


@pytest.mark.slow
def test_sigterm_marks_the_trial_and_exits_143(tmp_path: Path, isolated_cache: Path,
                                               cli: Cli) -> None:
    url = f"journal:///{tmp_path / 'w.log'}"
    proc = _start(url, isolated_cache, 3)
    _freeze_in_trial(url, proc)
    proc.send_signal(signal.SIGTERM)  # delivered inside the trial, once it runs again
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted: study 'w'" in err and "run the same command again" in err
    assert len([line for line in err.splitlines() if line.startswith("autosq:")
                and not re.match(r"autosq: \[\d\d:\d\d\] ", line)]) == 1
    reasons = [t.user_attrs.get("fail_reason") for t in _study(url).trials
               if t.state == optuna.trial.TrialState.FAIL]
    # Inside the trial's work it is marked interrupted; in the moment Optuna stores a finished
    # trial the signal waits, so that trial is kept. Never a failure without a reason.
    assert reasons in ([], ["interrupted"])
    code, _, err = cli(*TINY, "--storage", url, "--trials", "3", "--data", "builtin:shapes:30",
                       "--epochs", "3")
    assert code == 0 and _complete(url) == 3


def test_two_searches_racing_on_a_new_sqlite_file_both_succeed(tmp_path: Path,
                                                               isolated_cache: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    procs = [subprocess.Popen([sys.executable, "-m", "autosq", *TINY, "--storage", url,
                               "--trials", "2", "--json"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=_env(isolated_cache))
             for _ in range(2)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert _complete(url) >= 2


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_damaged_journal_is_refused_without_a_byte_appended(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    url = f"journal:///{log}"
    code, _, err = cli(*TINY, "--storage", url, "--trials", "2")
    assert code == 0, err
    with log.open("ab") as fh:
        fh.write(b'{"op_code": 5, "worker_id": "x", "trial_id"')  # a write cut short
    before = _digest(log)
    for args in ([*TINY, "--storage", url, "--trials", "3"],
                 ["front", "--study", "w", "--storage", url]):
        code, _, err = cli(*args)
        assert code == 1 and "is damaged at record" in err and "autosq repair" in err
        assert _digest(log) == before
    hinted = err.split("`autosq repair --storage ", 1)[1].split("`", 1)[0]
    code, out, err = cli("repair", "--storage", hinted)  # the command the message gives
    assert code == 0 and "kept the" in out and (tmp_path / "w.log.damaged-1").is_file()
    code, _, err = cli(*TINY, "--storage", url, "--trials", "3")
    assert code == 0, err
    assert _complete(url) == 3


@pytest.mark.parametrize("kind", ["sqlite", "journal", "postgresql"])
def test_read_only_commands_change_no_file_and_create_nothing(
        kind: str, cli: Cli, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = {"sqlite": f"sqlite:///{tmp_path / 's.db'}",
           "journal": f"journal:///{tmp_path / 's.log'}"}.get(kind) or \
        str(request.getfixturevalue("postgres_url"))
    code, _, err = cli("front", "--study", "w", "--storage", url)
    assert code != 0 and not list(tmp_path.iterdir())  # nothing created
    if kind == "postgresql":
        import sqlalchemy

        engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        assert sqlalchemy.inspect(engine).get_table_names() == []
        engine.dispose()
        assert "has no Optuna tables" in err
    code, _, err = cli(*TINY, "--storage", url, "--trials", "2")
    assert code == 0, err
    files = {p: _digest(p) for p in tmp_path.iterdir()}
    for args in (["front", "--study", "w"], ["front", "--study", "nosuch"]):
        cli(*args, "--storage", url)
    assert {p: _digest(p) for p in tmp_path.iterdir()} == files


def test_an_unreachable_server_and_a_password_are_one_masked_line(cli: Cli) -> None:
    code, _, err = cli("front", "--study", "w", "--storage",
                       "postgresql://me:hunter2@127.0.0.1:9/db")
    assert code == 1 and "cannot use storage postgresql://me:***@127.0.0.1:9/db" in err
    assert "hunter2" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_live_worker_takes_over_the_slot_of_a_killed_one(tmp_path: Path,
                                                          isolated_cache: Path) -> None:
    url = f"journal:///{tmp_path / 'w.log'}"
    first = _start(url, isolated_cache, 3)
    _freeze_in_trial(url, first)
    second = _start(url, isolated_cache, 3)
    while not _running_of(url, second.pid) and second.poll() is None:
        time.sleep(0.1)  # the second worker is live
    first.kill()
    first.wait()
    _, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    study = _study(url)
    assert _complete(url) == 3 and finished_count(study) == 3  # no rerun needed
    assert [t.user_attrs.get("fail_reason") for t in study.trials
            if t.state == optuna.trial.TrialState.FAIL] == ["its worker stopped (process gone)"]


@pytest.mark.slow
def test_a_silent_worker_on_a_server_is_failed_by_heartbeat_within_the_grace_period(
        postgres_url: str, tmp_path: Path, cli: Cli) -> None:
    # A worker frozen mid-trial (SIGSTOP: its process lives, its heartbeat stops), as a worker
    # on a machine that lost its network would be: a live worker fails its trial once the
    # grace period (20 s) has passed, and finishes the study. The frozen one has a cache folder
    # of its own, as another machine would (the timing lock is per machine).
    from autosq.searching.storage import GRACE_SECONDS

    assert GRACE_SECONDS <= 30
    other_machine = tmp_path / "other-cache"
    other_machine.mkdir()
    frozen = _start(postgres_url, other_machine, 3)
    _freeze_in_trial(postgres_url, frozen)
    try:
        code, _, err = cli(*TINY, "--storage", postgres_url, "--trials", "3", "--data",
                           "builtin:shapes:30", "--epochs", "3")
        assert code == 0, err
        study = _study(postgres_url)
        failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
        assert len(failed) == 1 and not failed[0].user_attrs.get("fail_reason")  # by heartbeat
        assert _complete(postgres_url) == 3 and finished_count(study) == 3
    finally:
        frozen.kill()
        frozen.wait()


def test_a_worker_frozen_inside_a_transaction_does_not_hold_the_others_forever(
        postgres_url: str) -> None:
    # A worker stopped mid-transaction keeps its socket open and its row locks held; the live
    # workers, waiting on those locks, never got to fail its trial by heartbeat (seen: a search
    # hung with "idle in transaction" beside "SELECT waiting"). The server now ends the
    # frozen session, and the waiting one goes on.
    import sqlalchemy

    from autosq.searching.storage import IDLE_IN_TRANSACTION_SECONDS

    optuna.create_study(storage=storage_for(postgres_url), study_name="locks")
    engine = storage_for(postgres_url).engine
    frozen, live = engine.connect(), engine.connect()
    try:
        frozen.execute(sqlalchemy.text("SELECT study_id FROM studies FOR UPDATE"))  # then silent
        live.execute(sqlalchemy.text("SET statement_timeout = '120s'"))  # a failure, not a hang
        start = time.monotonic()
        live.execute(sqlalchemy.text("SELECT study_id FROM studies FOR UPDATE"))
        assert time.monotonic() - start >= IDLE_IN_TRANSACTION_SECONDS - 1
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="idle-in-transaction timeout"):
            frozen.execute(sqlalchemy.text("SELECT 1"))  # its session was ended
    finally:
        live.close()
        with contextlib.suppress(Exception):
            frozen.close()


@pytest.mark.timeout(120)
def test_a_dead_workers_trial_is_failed_by_the_live_ones_while_they_run(
        tmp_path: Path, isolated_cache: Path, cli: Cli) -> None:
    # badinput-2 B-wk-kill-one: a worker killed by SIGKILL stays a zombie until its parent
    # reaps it, and a zombie still answers signal 0; its RUNNING trial held a slot forever and
    # the live processes polled for it. Here a real killed, unreaped child holds a real trial.
    import socket

    from autosq.searching.records import WORKER_ATTR

    url = f"journal:///{tmp_path / 'w.log'}"
    assert cli(*TINY, "--storage", url, "--trials", "1")[0] == 0
    zombie = subprocess.Popen(["sleep", "600"])
    zombie.kill()  # not waited for: a zombie from here on
    try:
        held = _study(url).ask()
        held.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{zombie.pid}")
        code, _, err = cli(*TINY, "--storage", url, "--trials", "3")  # hung here before
        assert code == 0, err
        study = _study(url)
        assert _complete(url) == 3 and finished_count(study) == 3
        assert study.trials[held.number].user_attrs["fail_reason"] == \
            "its worker stopped (process gone)"
    finally:
        zombie.wait()


def test_workers_stop_when_the_search_that_started_them_is_killed(
        tmp_path: Path, isolated_cache: Path) -> None:
    # badinput-2 B-wk-kill-main: SIGKILL to the main search; its workers (PR_SET_PDEATHSIG)
    # get SIGTERM, mark their trial and stop, instead of searching on unsupervised.
    url = f"journal:///{tmp_path / 'w.log'}"
    main = subprocess.Popen([sys.executable, "-m", "autosq", *TINY, "--storage", url,
                             "--trials", "500", "--workers", "3"], env=_env(isolated_cache),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[str] = []
    deadline = time.monotonic() + 120
    while len(workers) < 2:
        assert main.poll() is None and time.monotonic() < deadline, "no workers started"
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{main.pid}/task/{main.pid}/children").read_text().split()
            workers = [c for c in children
                       if b"--worker" in Path(f"/proc/{c}/cmdline").read_bytes()]
        time.sleep(0.05)
    while not any(_running_of(url, int(w)) for w in workers):  # inside a trial of their own
        assert main.poll() is None and time.monotonic() < deadline, "no worker ran a trial"
        time.sleep(0.05)
    main.kill()
    main.wait()

    def running(pid: str) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 60
    while any(running(w) for w in workers):
        assert time.monotonic() < deadline, "the workers outlived their parent"
        time.sleep(0.05)
    reasons = {t.user_attrs.get("fail_reason") for t in _study(url).trials
               if t.state == optuna.trial.TrialState.FAIL}
    assert reasons <= {"interrupted", "its worker stopped (process gone)", None}


def test_a_worker_gets_the_time_the_first_one_has_left() -> None:
    from autosq.searching.processes import worker_argv

    argv = ["search", "--timeout", "60", "--json", "--csv", "f.csv", "--trials-timeout=30"]
    assert worker_argv(argv) == ["search", "--timeout", "60", "--trials-timeout=30"]
    assert worker_argv(argv, 41.25) == ["search", "--trials-timeout=30", "--timeout", "41.250"]
    assert worker_argv(["search", "--timeout=60"], 0.2) == ["search", "--timeout", "1.000"]


def test_a_started_worker_counts_the_trials_timeout_from_its_launch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its setup takes seconds the first process spends sampling already: counted from its
    own first trial, it would keep sampling after the first one stopped and waits for it."""
    from autosq.cli import search

    monkeypatch.setattr(search, "seconds_since_launch", lambda: 2.5)
    assert search._trials_window(30.0, worker=0) == 30.0  # the first: from its first trial
    assert search._trials_window(30.0, worker=2) == 27.5
    assert search._trials_window(None, worker=2) is None
    assert search._trials_window(2.0, worker=1) == 1.0  # never less than a second
