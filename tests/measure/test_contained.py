"""Hostile models timed locally: refused before allocating, stopped at the cap, stopped by
Ctrl-C; the timing lock says who holds it and is released when its holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import hostile
import pytest
from util import FAST

from autosq._io import CACHE_ENV
from autosq.errors import MeasurementError, UsageError
from autosq.measure import contained
from autosq.measure.host import timing_lock
from autosq.measure.limits import Limits, input_shape
from autosq.measure.local import LocalTimer

Cli = Callable[..., tuple[int, str, str]]


def test_input_shapes_are_filled_and_bounded() -> None:
    assert input_shape("x", ["n", 3, "h", "w"], "tensor(float)", 64, 100) == (1, 3, 64, 64)
    assert input_shape("x", [1, 3, 224, 224], "tensor(float16)", None, 100) == (1, 3, 224, 224)
    with pytest.raises(MeasurementError, match=r"shape 1x3x8000x8000: 732 MB, over the limit "
                                               "of 512 MB"):
        input_shape("x", [1, 3, 8000, 8000], "tensor(float)", None, 512)
    with pytest.raises(MeasurementError, match="dimension 2 of the model's input 'x' is "
                                               "dynamic"):
        input_shape("x", [1, 3, "h", "w"], "tensor(float)", None, 512)
    with pytest.raises(MeasurementError, match=r"is tensor\(string\)"):
        input_shape("x", [1], "tensor(string)", None, 512)


@pytest.mark.parametrize(("field", "value"), [
    ("max_seconds", 0), ("max_model_mb", float("nan")), ("max_memory_mb", 100),
    ("max_input_mb", -1), ("max_seconds", 1e10), ("max_memory_mb", 1e12)])
def test_limits_refuse_nonsense(field: str, value: float) -> None:
    with pytest.raises(UsageError, match=field):
        Limits(**{field: value})


@pytest.mark.parametrize(("model", "expected"), [
    (hostile.huge_input, "shape 30000x30000: 3,433 MB, over the limit of 256 MB"),
    (hostile.huge_intermediate, "memory"),
    (hostile.no_input, "the model has no input"),
    (hostile.endless_loop, "timing stopped after 3 s, the cap"),
])
def test_hostile_models_are_contained(model: Callable[[], bytes], expected: str) -> None:
    timer = LocalTimer(protocol=FAST, limits=Limits(max_seconds=3, max_memory_mb=1024),
                       input_size=32)
    try:
        with pytest.raises(MeasurementError, match=expected):
            timer.time(model())
    finally:
        timer.close()


def test_a_model_file_over_the_limit_is_refused_before_timing(tmp_path: Path, cli: Cli) -> None:
    with pytest.raises(MeasurementError, match=r"over the limit of 0\.001 MB"):
        LocalTimer(limits=Limits(max_model_mb=0.001)).time(b"x" * 2000)
    model = tmp_path / "big.onnx"
    model.write_bytes(b"x" * 2000)
    code, _, err = cli("measure", str(model), "--max-model-mb", "0.001")
    assert code == 2 and "over --max-model-mb 0.001" in err


def test_measure_stops_an_endless_model_at_the_cap(tmp_path: Path, cli: Cli) -> None:
    model = tmp_path / "loop.onnx"
    model.write_bytes(hostile.endless_loop())
    code, _, err = cli("measure", str(model), "--max-seconds", "2")
    assert code == 1 and "timing stopped after 2 s, the cap (--max-seconds: 2 s a model)" in err
    assert len(err.strip().splitlines()) == 1
    model.write_bytes(hostile.huge_input())
    code, _, err = cli("measure", str(model))
    assert code == 1 and "30000x30000" in err and "refused before allocating it" in err


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_ctrl_c_stops_an_endless_timing_at_once(tmp_path: Path, isolated_cache: Path) -> None:
    model = tmp_path / "loop.onnx"
    model.write_bytes(hostile.endless_loop())
    proc = subprocess.Popen([sys.executable, "-m", "autosq", "measure", str(model)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, CACHE_ENV: str(isolated_cache)})
    # Wait (without a clock) until the timing process exists and has said it is ready, i.e. the
    # endless model is being loaded or run: its command line is readable in /proc.
    worker = None
    while worker is None and proc.poll() is None:
        kids = _children(proc.pid)
        worker = kids[0] if kids else None
    assert worker is not None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    # Without containment this never returns: the run ignores SIGINT. The timeout only turns
    # such a hang into a failure.
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err
    # The timing process dies with it (at most a moment later, reaped by init).
    deadline = time.monotonic() + 30
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_a_waiting_process_is_told_who_holds_the_lock(isolated_cache: Path) -> None:
    env = {**os.environ, CACHE_ENV: str(isolated_cache)}
    script = ("from autosq.measure.host import timing_lock\n"
              "with timing_lock():\n    print('got it', flush=True)\n")
    with timing_lock():
        waiter = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        assert waiter.stderr is not None
        line = waiter.stderr.readline()  # printed before it blocks on the lock
        assert f"waiting for the timing lock, held by pid {os.getpid()}" in line
        assert " since " in line
    out, _ = waiter.communicate(timeout=60)
    assert out.strip() == "got it"


def test_the_lock_is_released_when_its_holder_dies(isolated_cache: Path) -> None:
    env = {**os.environ, CACHE_ENV: str(isolated_cache)}
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom autosq.measure.host import timing_lock\n"
         "with timing_lock():\n    print('held', flush=True)\n    time.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True, env=env)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    waited: list[str] = []
    waiting, got = threading.Event(), threading.Event()

    def on_wait(message: str) -> None:
        waited.append(message)
        waiting.set()

    def take() -> None:
        with timing_lock(on_wait=on_wait):
            got.set()

    thread = threading.Thread(target=take)
    thread.start()
    assert waiting.wait(timeout=60)  # it found the lock held, and says by whom
    holder.kill()  # SIGKILL: no cleanup runs in the holder
    holder.wait()
    thread.join(timeout=60)
    assert got.is_set() and f"held by pid {holder.pid}" in waited[0]


def test_a_timing_after_a_killed_one_starts_a_new_process() -> None:
    from autosq.arch.model import build
    from autosq.arch.presets import preset
    from autosq.measure.onnx import export_bytes

    small = export_bytes(build(preset("squeezenet1_1", input_size=32, num_classes=10), seed=0),
                         32)
    timer = LocalTimer(protocol=FAST, limits=Limits(max_seconds=2, max_memory_mb=1024))
    try:
        with pytest.raises(MeasurementError, match="cap"):
            timer.time(hostile.endless_loop())
        assert timer.time(small).latency_ms > 0
    finally:
        timer.close()


def test_a_model_cannot_read_files_next_to_the_timing_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secret.txt").write_bytes(b"TOPSECRET-pass=hunter2")
    monkeypatch.chdir(tmp_path)
    # Without graph optimisation ONNX Runtime reads external data from the working folder.
    timer = LocalTimer(protocol=FAST, graph_optimization="disable",
                       limits=Limits(max_seconds=10, max_memory_mb=1024))
    try:
        with pytest.raises(MeasurementError) as info:
            timer.time(hostile.external_data("secret.txt"))
    finally:
        timer.close()
    # The child runs in an empty folder of its own: the file is not there to be read.
    assert "secret.txt" in str(info.value) and "TOPSECRE" not in str(info.value)
    leaked = int.from_bytes(b"TOPSECRE", "little")
    assert str(leaked) not in str(info.value)


def test_a_timing_waits_for_heavy_work_on_the_machine_to_end(isolated_cache: Path,
                                                             tmp_path: Path) -> None:
    # Another process exports or trains (heavy work) and writes a mark just before it stops:
    # if our timing waited for it, the mark is there when it returns (no clock involved).
    from autosq.arch.model import build
    from autosq.arch.presets import preset
    from autosq.measure.onnx import export_bytes

    small = export_bytes(build(preset("squeezenet1_1", input_size=32, num_classes=10), seed=0),
                         32)
    mark = tmp_path / "done"
    worker = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path\n"
         "from autosq.measure.host import heavy_work\n"
         "with heavy_work():\n    print('working', flush=True); time.sleep(1.0); "
         "Path(sys.argv[1]).write_text('x')", str(mark)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, CACHE_ENV: str(isolated_cache)})
    assert worker.stdout is not None and worker.stdout.readline().strip() == "working"
    timer = LocalTimer(protocol=FAST)
    try:
        timer.time(small)
    finally:
        timer.close()
    assert mark.exists(), "the timing ran while another process was busy exporting or training"
    worker.wait()


def test_a_sigterm_while_the_timing_process_starts_kills_it(
        monkeypatch: pytest.MonkeyPatch, raising_sigterm: type[Exception]) -> None:
    # Held until the child is recorded (so that it is killed), then raised: neither lost in
    # the fork's at-fork hooks nor leaving the child running.
    real_popen = subprocess.Popen
    started: list[subprocess.Popen[bytes]] = []

    def popen_then_sigterm(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(proc)
        signal.raise_signal(signal.SIGTERM)  # the handler would run from here on
        return proc

    monkeypatch.setattr(subprocess, "Popen", popen_then_sigterm)
    timing = contained.TimingProcess(Limits(max_seconds=3, max_memory_mb=1024))
    with pytest.raises(raising_sigterm):
        timing.request({"op": "ping"}, [], 5)
    assert len(started) == 1 and started[0].poll() is not None  # killed and reaped
    assert timing._proc is None


def test_the_folders_of_killed_timing_processes_are_swept(tmp_path: Path) -> None:
    """A process killed with SIGKILL leaves its timing child's empty working folder behind;
    the next timing process removes it, and nothing of a live process, with files in it, of
    another pid namespace or named otherwise."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = int(gone.stdout)  # exited and reaped: pids are not reused before they wrap
    ours = f"{contained.CWD_PREFIX}{contained._namespace()}-"
    orphan = tmp_path / f"{ours}{dead}-abc"
    kept = [tmp_path / f"{ours}{dead}-def",  # not empty
            tmp_path / f"{ours}{os.getpid()}-ghi",  # alive
            tmp_path / f"{contained.CWD_PREFIX}1{contained._namespace()}-{dead}-jkl",
            tmp_path / f"{ours}\u00b2-x",  # a digit int() does not read
            tmp_path / f"{contained.CWD_PREFIX}nopid"]
    for folder in (orphan, *kept):
        folder.mkdir()
    (kept[0] / "model.onnx").write_bytes(b"x")
    assert contained.sweep_orphan_folders(str(tmp_path)) == 1
    assert not orphan.exists() and all(k.exists() for k in kept)
    assert contained.sweep_orphan_folders(str(tmp_path / "missing")) == 0


def test_a_timing_process_works_in_a_folder_named_for_it_and_sweeps_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    orphan = tmp_path / f"{contained.CWD_PREFIX}{contained._namespace()}-{int(gone.stdout)}-a"
    orphan.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    child = contained.TimingProcess(Limits())
    try:
        child._start()
        assert Path(child._cwd.name).name.startswith(contained.cwd_prefix())
        assert not orphan.exists()
    finally:
        child.stop()
    assert list(tmp_path.iterdir()) == []
