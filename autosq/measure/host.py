"""This machine, as timing sees it: the cross-process timing lock, CPU pinning, CPU facts."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from pathlib import Path

from autosq._io import cache_dir


@contextlib.contextmanager
def timing_lock() -> Iterator[None]:
    """Exclusive across processes on this machine (an flock on the cache folder's lock file)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
        yield
        return
    with open(cache_dir() / "timing.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def pinned_cpus(threads: int) -> Iterator[list[int]]:
    """Pin this thread (and the ONNX Runtime threads it creates) to ``threads`` CPUs."""
    if not hasattr(os, "sched_setaffinity"):  # pragma: no cover - macOS, Windows
        yield []
        return
    before = os.sched_getaffinity(0)
    cpus = sorted(before)[-threads:] if threads < len(before) else sorted(before)
    os.sched_setaffinity(0, cpus)
    try:
        yield cpus
    finally:
        os.sched_setaffinity(0, before)


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo or platform reports it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key() -> str:
    """What identifies this machine for cached timings: host name, CPU model, CPU count."""
    return f"{platform.node()}|{cpu_model()}|{os.cpu_count()}"

