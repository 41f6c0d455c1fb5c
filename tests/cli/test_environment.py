"""The environment a command runs in (badinput-2: B-env-*, B-full-cache-data,
B-full-calibrate-*, F2-32, B-pg-*, B-me-*, B-ex-cz-dczimmutable, F6-18; calibrate killed; a
second Ctrl-C): a home folder that is not one, variables with a stray newline, full disks,
limits, server URLs and immutable files are one clear line, and nothing is left that blocks the
next run."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tmpfs import fill, small_tmpfs

from autosq._io import CACHE_ENV

Cli = Callable[..., tuple[int, str, str]]


def one_line(code: int, err: str, want: int, *needles: str) -> None:
    assert code == want, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "internal error" not in err, err
    for needle in needles:
        assert needle in err, err


def test_an_unusable_home_creates_nothing_and_prints_only_autosq_s_line(
        tmp_path: Path) -> None:
    # B-env-cache-unset-nohome (ONNX Runtime made $HOME/.cache at the file system's root) and
    # B-env-cache-unset-home-file (its raw telemetry log line): HOME is checked before it runs.
    home = tmp_path / "no-such-home"
    env = {k: v for k, v in os.environ.items() if k not in (CACHE_ENV, "XDG_CACHE_HOME")}
    run = subprocess.run([sys.executable, "-m", "autosq", "measure", "--preset",
                          "squeezenet1_1", "--input-size", "32"], capture_output=True,
                         text=True, timeout=120, env={**env, "HOME": str(home)})
    one_line(run.returncode, run.stderr, 2, f"the home folder {home} (HOME) does not exist",
             f"set {CACHE_ENV} to a writable folder")
    assert not home.exists()


def test_a_home_that_is_a_file_is_named(cli: Cli, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "passwd"
    home.write_text("root:x:0:0\n")
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # unset for autosq, and restored after the test
    monkeypatch.setenv("HOME", str(home))
    code, _, err = cli("measure", "--preset", "squeezenet1_1", "--input-size", "32")
    one_line(code, err, 2, f"the home folder {home} (HOME) is not a folder")
    assert os.environ["XDG_CACHE_HOME"] != str(home)  # ONNX Runtime looks elsewhere


def test_a_trailing_newline_in_a_variable_is_shown(cli: Cli, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # B-env-profiles-newline: the folder exists; the newline pasted after it did not show.
    monkeypatch.setenv("AUTOSQ_PROFILES", f"{tmp_path}\n")
    code, _, err = cli("devices")
    one_line(code, err, 2, f"profiles folder '{tmp_path}\\n' does not exist")
    monkeypatch.delenv("AUTOSQ_PROFILES")
    monkeypatch.setenv(CACHE_ENV, f"{tmp_path / 'cache'}\n")
    code, _, err = cli("measure", "--preset", "squeezenet1_1", "--input-size", "32")
    one_line(code, err, 2, f"the cache folder '{tmp_path / 'cache'}\\n' (from {CACHE_ENV}): "
             "its name holds a control character")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def full_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The cache folder on a tmpfs filled to its last byte."""
    with small_tmpfs(tmp_path / "cache", "64k") as folder:
        filler = fill(folder)
        monkeypatch.setenv(CACHE_ENV, str(folder))
        yield folder
        filler.unlink()


def test_a_full_cache_disk_only_costs_time(full_cache: Path) -> None:
    # B-full-cache-data: the data cache "only saves time"; torch's writer failed with its own
    # RuntimeError (no OSError) and the search stopped.
    from autosq.accuracy.datasets import load_dataset
    from autosq.measure.host import timing_lock

    data = load_dataset("builtin:shapes:10", 32)
    x, _ = data.sample("train", 4)
    assert len(data.train) == 100 and x.shape == (4, 3, 32, 32)
    data_dir = full_cache / "data"
    assert not data_dir.exists() or list(data_dir.iterdir()) == []  # nothing half-written
    waited: list[str] = []
    with timing_lock(waited.append):  # who holds it is a courtesy a full disk may skip
        pass
    assert waited == []


def test_a_full_disk_names_the_file_it_could_not_write(cli: Cli, full_cache: Path,
                                                      tmp_path: Path) -> None:
    # B-full-calibrate-nospace-at-all: '[Errno 28] No space left on device', no path (the
    # timing lock's holder line; see above). A write that fails names its file.
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, _, err = cli("search", "--space", "tiny", "--input-size", "32", "--max-mb", "1",
                       "--no-retime", "--trials", "1", "--study", "s", "--storage", url)
    assert code == 0, err
    code, _, err = cli("front", "--study", "s", "--storage", url, "--csv",
                       str(full_cache / "front.csv"))
    one_line(code, err, 1, f"no space left on the device holding {full_cache / 'front.csv'}")
    assert not (full_cache / "front.csv").exists()


def _holder(cache: Path) -> str:
    with contextlib.suppress(OSError):
        return (cache / "timing.lock").read_text()
    return ""


def test_a_killed_calibrate_leaves_nothing_that_blocks_a_rerun(
        isolated_cache: Path, cli: Cli) -> None:
    # Two calibrations at once: the one that holds the timing lock is killed (SIGKILL); the
    # kernel releases the lock, and the other, waiting, takes it over; the file (with the dead
    # holder's name) stays and blocks nothing. The second then gets two Ctrl-C: the second one
    # arrives while the first is handled, and it still ends with 130, not a death by SIGINT.
    from autosq.measure.host import timing_lock

    args = [sys.executable, "-m", "autosq", "calibrate", "--device", "host", "--space", "tiny",
            "--input-size", "32", "--samples", "8"]
    env = {**os.environ, CACHE_ENV: str(isolated_cache)}
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    try:
        deadline = time.monotonic() + 120

        def holding() -> subprocess.Popen[str] | None:
            text = _holder(isolated_cache)
            return next((p for p in procs if f"pid {p.pid} " in text), None)

        while (first := holding()) is None:
            assert all(p.poll() is None for p in procs) and time.monotonic() < deadline
            time.sleep(0.02)
        first.kill()
        first.wait()
        (second,) = [p for p in procs if p is not first]
        while holding() is not second:  # it waited, and now holds the lock
            assert second.poll() is None and time.monotonic() < deadline, second.stderr
            time.sleep(0.02)
        second.send_signal(signal.SIGINT)
        time.sleep(0.05)
        second.send_signal(signal.SIGINT)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 130, (second.returncode, err)
        assert err.strip().splitlines()[-1] == "autosq: error: interrupted", err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert (isolated_cache / "timing.lock").exists()
    with open(isolated_cache / "timing.lock") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: raises if anyone holds it
        fcntl.flock(fh, fcntl.LOCK_UN)
    waited: list[str] = []
    with timing_lock(waited.append):
        pass
    assert waited == []


def test_a_profile_input_too_small_names_the_profile(cli: Cli, tmp_path: Path) -> None:
    # F2-32: the profile's input size was accepted, and the later error did not name it.
    profile = ('name = "tiny"\n[budget]\nmax_mb = 5\n[runtime]\ninput_size = {size}\n'
               '[latency]\nsource = "measured"\n')
    (tmp_path / "tiny.toml").write_text(profile.format(size=5))
    code, _, err = cli("measure", "--preset", "squeezenet1_1", "--device",
                       str(tmp_path / "tiny.toml"))
    one_line(code, err, 2, "key 'runtime.input_size' must be >= 17")
    (tmp_path / "tiny.toml").write_text(profile.format(size=19))
    code, _, err = cli("measure", "--preset", "squeezenet1_0", "--device",
                       str(tmp_path / "tiny.toml"))
    one_line(code, err, 2, f"{tmp_path / 'tiny.toml'}: key 'runtime.input_size' (19) does not "
             "fit squeezenet1_0", "give --input-size")


@pytest.mark.parametrize(("args", "needle"), [
    (["--max-seconds", "1e12"], "--max-seconds must be a number of seconds > 0 and at most "
                                "86400"),
    (["--max-memory-mb", "1e9"], "--max-memory-mb must be at most this machine's memory"),
])
def test_the_limits_are_named_as_flags(cli: Cli, args: list[str], needle: str) -> None:
    # B-me-maxseconds-huge, B-me-maxmem-huge: the messages named the Python parameters.
    code, _, err = cli("measure", "--preset", "squeezenet1_1", *args)
    one_line(code, err, 2, needle)
    assert "max_seconds" not in err and "max_memory_mb" not in err


@pytest.mark.parametrize("port", ["99999", "abc", "0"])
def test_a_bad_port_is_a_usage_error(cli: Cli, port: str) -> None:
    # B-pg-port-invalid (exit 1), B-pg-port-nonnumeric ("invalid literal for int()").
    code, _, err = cli("front", "--study", "s", "--storage",
                       f"postgresql://autosq:s3cret-pw@127.0.0.1:{port}/db")
    one_line(code, err, 2, f"port '{port}' is not a number in 1..65535")
    assert "s3cret-pw" not in err and "invalid literal" not in err


def test_a_password_with_at_signs_is_masked_whole_and_parsed(cli: Cli, pg_server: object,
                                                             tmp_path: Path) -> None:
    # B-pg-at-in-password: 'autosq:***@ss@w0rd@127.0.0.1', and 'ss@w0rd@127.0.0.1' looked up.
    import psycopg

    url = pg_server.new_database()  # type: ignore[attr-defined]
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute("DROP ROLE IF EXISTS atuser")
        conn.execute("CREATE ROLE atuser LOGIN SUPERUSER PASSWORD 'p@ss@w0rd'")
    at = url.replace("autosq:s3cret-pw@", "atuser:p@ss@w0rd@")
    code, _, err = cli("front", "--study", "s", "--storage", at)
    one_line(code, err, 2, "has no Optuna tables")  # reached, with the right password
    code, _, err = cli("front", "--study", "s", "--storage", at.replace("p@ss@w0rd", "p@ss@x"))
    one_line(code, err, 1, "cannot use storage postgresql://atuser:***@127.0.0.1:")
    assert "ss@" not in err and "w0rd" not in err and "password authentication failed" in err


def test_an_immutable_destination_is_refused_before_any_work(cli: Cli, tmp_path: Path) -> None:
    # F6-18 (the card), B-ex-cz-dczimmutable (the .dcz, after 22 s of training): refused up
    # front, naming the file, as a usage error.
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, _, err = cli("search", "--space", "tiny", "--input-size", "32", "--max-mb", "1",
                       "--no-retime", "--trials", "1", "--study", "s", "--storage", url)
    assert code == 0, err
    for args, path in (([], tmp_path / "m.onnx.json"),
                       (["--data", "builtin:shapes:10", "--compress"], tmp_path / "m.dcz")):
        path.write_text("old")
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            pytest.skip("chattr +i does not work on this file system")
        try:
            code, _, err = cli("export", "--study", "s", "--trial", "0", "--storage", url,
                               "--out", str(tmp_path / "m.onnx"), *args)
            one_line(code, err, 2, f"cannot replace {path}: it is read-only or immutable")
        finally:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        assert path.read_text() == "old" and not (tmp_path / "m.onnx").exists()
        path.unlink()


@pytest.mark.parametrize("value", ["abc", "0", "-1"])
def test_a_bad_omp_num_threads_is_autosq_s_one_line_not_openmp_s(value: str) -> None:
    """OpenMP prints its own lines about a bad OMP_NUM_THREADS when torch is imported: autosq
    refuses it before (through a real process, where torch is not imported yet)."""
    env = {**os.environ, "OMP_NUM_THREADS": value}
    proc = subprocess.run([sys.executable, "-m", "autosq", "measure", "--preset",
                           "squeezenet1_1", "--input-size", "32"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == (f"autosq: error: OMP_NUM_THREADS must be a whole number >= 1; got "
                           f"{value!r}\n")
