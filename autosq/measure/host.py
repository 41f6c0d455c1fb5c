"""This machine, as timing sees it: the cross-process timing lock, CPU pinning, how busy the
other CPUs were during a timing, CPU facts."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from autosq._io import cache_dir


def _who() -> str:
    import sys
    import time

    command = " ".join(["autosq", *sys.argv[1:]])[:120] if sys.argv else "python"
    return f"pid {os.getpid()} ({command}) since {time.strftime('%Y-%m-%d %H:%M:%S')}"


QUIET_WAIT = 2.0  # seconds of waiting for the timing lock before saying who holds it


def _try_lock(fh: Any, fcntl: Any, seconds: float) -> bool:
    """Try for ``seconds`` to take the lock without blocking (workers sharing a machine take
    turns all the time; only a long wait is worth a line)."""
    import time

    end = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= end:
                return False
            time.sleep(0.05)


@contextlib.contextmanager
def timing_lock(on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Exclusive across processes on this machine (an flock on the cache folder's lock file,
    released by the kernel when its holder dies, however it dies). A process that waits longer
    than QUIET_WAIT is told who holds it and since when (``on_wait``; by default a line on
    stderr)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
        yield
        return
    with open(cache_dir() / "timing.lock", "a+") as fh:
        if not _try_lock(fh, fcntl, QUIET_WAIT):
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            message = f"waiting for the timing lock, held by {holder}"
            if on_wait is None:
                import sys

                print(f"autosq: {message}", file=sys.stderr, flush=True)
            else:
                on_wait(message)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            # Who holds it, for waiters to read: only a courtesy, so a full disk skips it.
            # Unbuffered: a write that fails leaves nothing for close() to fail on again.
            with contextlib.suppress(OSError):
                os.ftruncate(fh.fileno(), 0)
                os.pwrite(fh.fileno(), _who().encode(), 0)
            yield
        finally:
            with contextlib.suppress(OSError):  # no stale holder shown to the next waiter
                os.ftruncate(fh.fileno(), 0)
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def heavy_work() -> Iterator[None]:
    """Around work that loads the CPUs (export, training): it runs alongside other such work,
    never while a timing runs (:func:`exclusive_machine`). A waiting timing goes first: new
    work waits at the turnstile while it does."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    folder = cache_dir()
    with open(folder / "work.turnstile", "a+") as gate:
        fcntl.flock(gate, fcntl.LOCK_EX)
        fcntl.flock(gate, fcntl.LOCK_UN)
    with open(folder / "work.lock", "a+") as room:
        fcntl.flock(room, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(room, fcntl.LOCK_UN)


@contextlib.contextmanager
def exclusive_machine() -> Iterator[None]:
    """Around a timing: waits until no :func:`heavy_work` runs, and keeps new work out."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    folder = cache_dir()
    with open(folder / "work.turnstile", "a+") as gate, open(folder / "work.lock", "a+") as room:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(room, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(room, fcntl.LOCK_UN)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)


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


CpuTimes = dict[int, tuple[int, int, int]]


def cpu_times() -> CpuTimes | None:
    """Each CPU's (busy, total, steal) clock ticks since boot, from /proc/stat; None where it
    cannot be read (not Linux)."""
    try:
        return parse_cpu_times(Path("/proc/stat").read_text())
    except OSError:
        return None


def parse_cpu_times(text: str) -> CpuTimes | None:
    """:func:`cpu_times` from the text of /proc/stat (None when it has no per-CPU line)."""
    out: CpuTimes = {}
    for line in text.splitlines():
        name, *fields = line.split() or [""]
        if not name.startswith("cpu") or name == "cpu":
            continue
        try:
            cpu, ticks = int(name[3:]), [int(x) for x in fields[:8]]
        except ValueError:
            return None
        ticks += [0] * (8 - len(ticks))  # older kernels have fewer columns
        user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
        out[cpu] = (user + nice + system + irq + softirq + steal, sum(ticks), steal)
    return out or None


def contention(before: CpuTimes | None, after: CpuTimes | None, pinned: list[int],
               allowed: set[int]) -> float | None:
    """How contended a timing on the ``pinned`` CPUs was, between two :func:`cpu_times`: the
    share of the time the other CPUs this process may use (``allowed``) were busy, or the share
    the hypervisor took from the pinned ones (steal), whichever is larger. The timing's own
    process is idle on the other CPUs (its parent waits), so their busy time is someone else's.
    None when unknown (no /proc/stat, or too short to see: under one tick)."""
    if before is None or after is None or not pinned:
        return None

    def share(cpus: list[int], part: int) -> float | None:
        num = den = 0
        for c in cpus:
            if c in before and c in after:
                num += after[c][part] - before[c][part]
                den += after[c][1] - before[c][1]
        return num / den if den > 0 else None

    others = sorted(allowed - set(pinned))
    busy = share(others, 0) if others else None  # no other CPU: only steal can be seen
    steal = share(pinned, 2)
    known = [v for v in (busy, steal) if v is not None]
    # Clamped: /proc/stat's iowait may go backwards (proc(5)).
    return min(1.0, max(0.0, max(known))) if known else None


def allowed_cpus() -> set[int]:
    """The CPUs this process may run on (every CPU where affinity is unknown: none listed)."""
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()


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



def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def device_facts() -> dict[str, Any]:
    """What this device is and what state it is in, as far as it can be read: CPU, cores,
    frequency governor and current frequency (MHz), temperature (degrees C), throttling (a
    Raspberry Pi's firmware flags), ONNX Runtime's version and providers."""
    import onnxruntime as ort

    from autosq._version import __version__

    cpufreq = "/sys/devices/system/cpu/cpu0/cpufreq/"
    cur = _read(cpufreq + "scaling_cur_freq")
    top = _read(cpufreq + "cpuinfo_max_freq")
    temp = _read("/sys/class/thermal/thermal_zone0/temp")
    throttled = _read("/sys/devices/platform/soc/soc:firmware/get_throttled")
    return {
        "agent": "autosq", "version": __version__, "host": platform.node(),
        "cpu": cpu_model(), "machine": platform.machine(), "cores": os.cpu_count(),
        "governor": _read(cpufreq + "scaling_governor"),
        "freq_mhz": int(cur) / 1000 if cur and cur.isdigit() else None,
        "max_freq_mhz": int(top) / 1000 if top and top.isdigit() else None,
        "temperature_c": int(temp) / 1000 if temp and temp.lstrip("-").isdigit() else None,
        "throttled": throttled,
        "onnxruntime": ort.__version__, "providers": ort.get_available_providers(),
        "python": platform.python_version(),
    }


def fingerprint(facts: dict[str, Any]) -> str:
    """What identifies a device's timings (its state, such as temperature, left out)."""
    keys = ("host", "cpu", "machine", "cores", "max_freq_mhz", "onnxruntime", "version")
    return "|".join(str(facts.get(k)) for k in keys)
