"""A child process that times models, so that a hostile one is contained: its address space is
limited (``RLIMIT_AS``), it is killed when a request runs over its wall-clock cap or when the
user presses Ctrl-C, and it dies with the process that started it (``PR_SET_PDEATHSIG``).

One child serves many requests (starting one costs the import of ONNX Runtime); a child that was
killed is started again for the next request. Requests and answers travel over its stdin and
stdout as frames: a 4-byte length, a JSON header, then the header's ``blobs`` (model files) as
raw bytes. Answers are JSON only: nothing the child sends is unpickled.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from autosq._signals import SignalHold
from autosq.errors import MeasurementError, TimingUnavailable
from autosq.measure.limits import MIB, Limits, ceiling_text

_LEN = struct.Struct(">Q")
STARTUP_SECONDS = 60.0  # importing ONNX Runtime on a slow board
# The child's working folder: PREFIX, the parent's pid namespace and pid, "-", a random part
CWD_PREFIX = "autosq-timing-"


def write_frame(out: IO[bytes], header: dict[str, Any], blobs: Sequence[bytes] = ()) -> None:
    """Write one frame: length, JSON header (with the blobs' sizes), blobs."""
    head = json.dumps({**header, "blobs": [len(b) for b in blobs]}).encode()
    out.write(_LEN.pack(len(head)) + head)
    for b in blobs:
        out.write(b)
    out.flush()


def read_frame(inp: IO[bytes]) -> tuple[dict[str, Any], list[bytes]] | None:
    """Read one frame (blocking); None at end of input."""
    raw = inp.read(_LEN.size)
    if len(raw) < _LEN.size:
        return None
    header = json.loads(inp.read(_LEN.unpack(raw)[0]))
    blobs = [inp.read(n) for n in header.pop("blobs", [])]
    return header, blobs


class _Deadline(Exception):
    pass


class _Abandoned(Exception):
    pass


def _read_exact(fd: int, n: int, deadline: float,
                abandoned: Callable[[], bool] | None = None) -> bytes:
    chunks, got = [], 0
    while got < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Deadline
        ready, _, _ = select.select([fd], [], [], min(left, 0.5) if abandoned else left)
        if not ready:
            if abandoned is not None and abandoned():
                raise _Abandoned
            continue
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def with_parent(signum: int, gone_code: int | None = None) -> Callable[[], None] | None:
    """A function for a child to run before exec: the kernel sends it ``signum`` when this
    process dies, however it dies (Linux ``PR_SET_PDEATHSIG``), even while it is still
    starting; with ``gone_code``, a child whose parent died before that was armed exits with
    it at once. Built here, so that the child only makes C calls. None where there is no such
    thing."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(1, int(signum))
        if gone_code is not None and os.getppid() != parent:
            os._exit(gone_code)

    return arm


def _namespace() -> str:
    """This process's pid namespace (a container has its own; a pid means something only in
    it), "0" where the system does not say."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def cwd_prefix() -> str:
    """The start of this process's timing child's working folder name."""
    return f"{CWD_PREFIX}{_namespace()}-{os.getpid()}-"


def sweep_orphan_folders(folder: str | None = None) -> int:
    """Remove the empty working folders of timing processes whose parent is gone (a process
    killed with SIGKILL cannot remove its own) in ``folder`` (the temporary folder); returns
    how many. Only this user's folders of this pid namespace whose process no longer exists:
    one with anything in it, another user's, or another container's is left alone."""
    import tempfile

    removed = 0
    ours = f"{CWD_PREFIX}{_namespace()}-"
    try:
        entries = list(os.scandir(folder or tempfile.gettempdir()))
    except OSError:
        return 0
    for entry in entries:
        pid_text = entry.name[len(ours):].split("-", 1)[0]
        if not (entry.name.startswith(ours) and pid_text.isascii() and pid_text.isdigit()):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            os.kill(int(pid_text), 0)
            continue  # alive (PermissionError below: alive, another user's)
        except ProcessLookupError:
            pass
        except (OSError, OverflowError):
            continue
        with contextlib.suppress(OSError):  # not empty, or gone meanwhile
            os.rmdir(entry.path)
            removed += 1
    return removed


def _package_root() -> str:
    """The folder that holds the autosq package (the child runs in another working folder)."""
    return str(Path(__file__).resolve().parents[2])


class TimingProcess:
    """The child process that times models, under ``limits``."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._proc: subprocess.Popen[bytes] | None = None
        self._cwd: Any = None

    def _start(self) -> subprocess.Popen[bytes]:
        import tempfile

        cmd = [sys.executable, "-m", "autosq.measure.worker",
               str(int(self.limits.max_memory_mb * MIB)), str(os.getpid())]
        # An empty working folder: ONNX Runtime resolves a model's "external data" files
        # relative to it, and a hostile model could otherwise read files next to it (their
        # bytes come back in error messages).
        with contextlib.suppress(Exception):  # housekeeping: never in the way of a timing
            sweep_orphan_folders()
        self._cwd = tempfile.TemporaryDirectory(prefix=cwd_prefix())
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in [_package_root(), os.environ.get("PYTHONPATH", "")] if p)}
        # Ctrl-C and SIGTERM wait until the child is recorded, so that it is always killed
        # (and a handler's exception raised in the fork's at-fork hooks would be lost).
        hold = SignalHold()
        hold.hold()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, start_new_session=True,
                                    cwd=self._cwd.name, env=env,
                                    preexec_fn=with_parent(signal.SIGKILL))
            self._proc = proc
            hold.release()  # may raise now
            try:
                self._read(proc, time.monotonic() + STARTUP_SECONDS)  # the ready frame
            except (MeasurementError, _Deadline) as exc:
                why = str(exc) or f"no answer in {STARTUP_SECONDS:g} s"
                raise TimingUnavailable(f"the timing process could not start: {why}") \
                    from None
        except BaseException:
            try:
                hold.release()
            finally:
                self.stop()
            raise
        return proc

    def _read(self, proc: subprocess.Popen[bytes], deadline: float,
              abandoned: Callable[[], bool] | None = None) -> dict[str, Any]:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        try:
            head = _read_exact(fd, _LEN.size, deadline, abandoned)
            frame: dict[str, Any] = json.loads(
                _read_exact(fd, _LEN.unpack(head)[0], deadline))
        except EOFError:
            code = proc.wait()
            self._proc = None
            raise MeasurementError(self._death(code)) from None
        return frame

    def _death(self, code: int) -> str:
        if code == 3:  # the worker could not set its limit (see autosq.measure.worker)
            return (f"it cannot limit its memory to {self.limits.max_memory_mb:g} MB, more "
                    f"than {ceiling_text()}")
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return (f"the timing process was killed ({name}); the model may need more memory "
                    f"than the {self.limits.max_memory_mb:g} MB the timing process may use")
        return (f"the timing process exited with code {code}; the model may need more memory "
                f"than the {self.limits.max_memory_mb:g} MB the timing process may use")

    def request(self, header: dict[str, Any], blobs: Sequence[bytes], seconds: float,
                abandoned: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Send one request and wait at most ``seconds`` for its answer. The child is killed
        when the cap is reached, when ``abandoned()`` turns true (polled twice a second: the
        client went away), or on Ctrl-C (KeyboardInterrupt is re-raised)."""
        for b in blobs:
            self.limits.check_model_size(len(b))
        proc = self._proc if self._proc is not None and self._proc.poll() is None \
            else self._start()
        assert proc.stdin is not None
        try:
            write_frame(proc.stdin, header, blobs)
            answer = self._read(proc, time.monotonic() + seconds, abandoned)
        except _Deadline:
            self.stop()
            n = len(blobs)
            cap = f"{self.limits.max_seconds:g} s a model" + (f" x {n} models" if n > 1 else "")
            raise MeasurementError(
                f"timing stopped after {seconds:g} s, the cap (--max-seconds: {cap}): the "
                "model runs too long (or never ends)") from None
        except _Abandoned:
            self.stop()
            raise MeasurementError("timing stopped: the client went away") from None
        except BrokenPipeError:
            code = proc.wait()
            self._proc = None
            raise MeasurementError(self._death(code)) from None
        except BaseException:  # KeyboardInterrupt above all: stop the model at once
            self.stop()
            raise
        if "error" in answer:
            raise MeasurementError(str(answer["error"]))
        return answer

    def stop(self) -> None:
        """Kill the child (if any) and reap it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self._cwd is not None:
            with contextlib.suppress(OSError):
                self._cwd.cleanup()
            self._cwd = None

    def __del__(self) -> None:
        try:  # noqa: SIM105 - at interpreter exit contextlib may be gone already
            self.stop()
        except Exception:
            pass
