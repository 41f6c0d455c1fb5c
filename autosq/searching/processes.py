"""The worker processes a search starts on this machine: started as copies of the invoking
command, waited for, and told to stop when the search is."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence

from autosq.errors import Terminated
from autosq.measure.contained import with_parent

# Flags of the invoking command that only the first process acts on (one value each).
_FIRST_ONLY = ("--workers", "--csv", "--plot", "--report")


def worker_argv(argv: Sequence[str], timeout: float | None = None) -> list[str]:
    """The command line of a further worker: the invoking one without the outputs only the
    first process writes, and with ``timeout`` (the seconds the first one has left) as its
    ``--timeout``: a worker started later must stop sampling when the first one does."""
    dropped = _FIRST_ONLY + (("--timeout",) if timeout is not None else ())
    out = [a for a in argv if a not in ("--json", "--debug")]
    for flag in dropped:
        while flag in out:
            i = out.index(flag)
            del out[i:i + 2]
    out = [a for a in out if not a.startswith(tuple(f + "=" for f in dropped))]
    return out + ([] if timeout is None else ["--timeout", f"{max(1.0, timeout):.3f}"])


def start_workers(argv: Sequence[str], n: int,
                  timeout: float | None = None) -> list[subprocess.Popen[bytes]]:
    """``n`` more processes running ``autosq ARGV`` as workers 1..n (their output is discarded;
    the study records what they do), with ``timeout`` seconds left to the run when given. They
    stop when this process dies, however it dies (so a worker never searches on
    unsupervised)."""
    base = worker_argv(argv, timeout)
    return [subprocess.Popen([sys.executable, "-m", "autosq", *base, "--worker", str(i + 1),
                              "--no-retime"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL,
                             # SIGTERM when this process dies: they stop like Ctrl-C.
                             preexec_fn=with_parent(signal.SIGTERM, gone_code=143))
            for i in range(n)]


def wait_workers(started: Sequence[subprocess.Popen[bytes]]) -> None:
    """Wait for the workers this process started (they stop at the trial count or when the
    time budget says)."""
    for p in started:
        p.wait()


def interrupt_workers(started: Sequence[subprocess.Popen[bytes]]) -> None:
    """Pass a Ctrl-C on to the workers (a terminal sends it to them too; ``kill -INT`` to
    this process alone does not), so that waiting for them ends."""
    for p in started:
        with contextlib.suppress(OSError):
            p.send_signal(signal.SIGINT)


@contextlib.contextmanager
def terminate_as_interrupt(started: Sequence[subprocess.Popen[bytes]]) -> Iterator[None]:
    """SIGTERM stops the search like Ctrl-C (the running trial marked, the study kept), and is
    passed on to the workers this process started."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        for p in started:
            with contextlib.suppress(OSError):
                p.send_signal(signal.SIGTERM)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
