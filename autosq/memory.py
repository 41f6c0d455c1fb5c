"""What an input implies in memory, checked before it is allocated (a leaf module: standard
library only, usable from every layer).

A flag can ask for more than any machine has: ``--num-classes 100000000`` is a 205 GB
classifier, ``builtin:shapes:100000000`` or a 4000-pixel input a dataset of terabytes.
Allocating first fails late and badly (an out-of-memory kill, a swap storm, or "internal
error"); :func:`check_allocation` says the numbers instead, before anything is allocated.
"""

from __future__ import annotations

import os

from autosq.errors import UsageError

# A request may take at most this share of the memory available now: the rest is the
# process's own, the page cache's and other programs'.
SHARE = 0.8


def available_bytes() -> float:
    """Memory available to a new allocation now (``MemAvailable`` on Linux, else the physical
    memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return float("inf")


def human_bytes(n: float) -> str:
    """``1.5 GiB``, ``205.0 GiB``, ``3.2 TiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_allocation(nbytes: float, what: str, expected: str) -> None:
    """Raise :class:`UsageError` naming ``what`` and the numbers when ``nbytes`` is more than
    this machine can give now; ``expected`` says what to ask for instead."""
    available = available_bytes()
    if nbytes > SHARE * available:
        raise UsageError(f"{what} needs {human_bytes(nbytes)} of memory; this machine has "
                         f"{human_bytes(available)} available: {expected}")


__all__ = ["available_bytes", "check_allocation", "human_bytes"]
