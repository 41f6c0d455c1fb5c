"""How many threads a training uses.

Default: ``OMP_NUM_THREADS`` when it is set, else half the CPUs this process may run on (its
affinity), at least one. Chosen by measurement (``bench/threads_bench.py``, 2-vCPU VM,
2026-12-03, squeezenet1_1, batch 64): alone, 2 threads train 1.18x faster than 1 at 32 px and
1.7x at 224 px; beside a second training (another worker, another search) 2 threads each fall to
a fifth of 1 thread each at 32 px (113 against 618 images/s) and 0.7x at 224 px. A training that
takes every core wins little when the machine is idle and loses most when it is not, so by default
it leaves half the machine to the rest (the data loader's workers, another search, the user).
Pure Python.
"""

from __future__ import annotations

import os

from autosq.errors import UsageError

MAX_THREADS = 256


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity; every CPU where there is none)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - macOS, Windows


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when set (at most the CPUs available), else half the CPUs available,
    at least 1 (see the module docstring for the measurement)."""
    cpus = available_cpus()
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise UsageError(f"OMP_NUM_THREADS must be a whole number >= 1; got {env!r}")
        return min(int(env), cpus)
    return max(1, cpus // 2)


def resolve_threads(threads: int | None, name: str = "threads") -> int:
    """``threads`` checked (a whole number from 1 to the CPUs this process may use), or the
    default when None; ``name`` is what the error calls it (a parameter, or a flag)."""
    if threads is None:
        return default_threads()
    cpus = available_cpus()
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= cpus:
        raise UsageError(f"{name} must be a whole number from 1 to {cpus} (the CPUs this "
                         f"process may use); got {threads!r}")
    return threads
