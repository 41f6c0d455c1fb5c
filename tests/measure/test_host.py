"""How busy the machine's other CPUs were during a timing: /proc/stat read and compared
(pure logic here; a real busy process against a real timing in test_local.py)."""

from __future__ import annotations

import pytest
from util import timed

from autosq.measure.host import contention, parse_cpu_times
from autosq.measure.protocol import CONTENDED, LatencyResult

STAT = """cpu  300 0 30 900 0 0 0 0 0 0
cpu0 100 0 10 500 0 0 0 0 0 0
cpu1 200 0 20 400 0 0 0 0 0 0
intr 12345
procs_running 2
"""


def test_proc_stat_is_read_per_cpu() -> None:
    assert parse_cpu_times(STAT) == {0: (110, 610, 0), 1: (220, 620, 0)}
    # An old kernel's four columns; no per-CPU line; a garbled one.
    assert parse_cpu_times("cpu0 1 2 3 4\n") == {0: (6, 10, 0)}
    assert parse_cpu_times("cpu  1 2 3 4\nintr 5\n\n") is None
    assert parse_cpu_times("cpu0 1 x 3 4\n") is None


def test_contention_is_the_other_cpus_busy_share_or_the_stolen_share() -> None:
    before = {0: (100, 1000, 0), 1: (100, 1000, 0), 2: (100, 1000, 0)}
    # The timing on CPU 2; CPU 0 busy the whole time, CPU 1 idle: half the others' time.
    after = {0: (200, 1100, 0), 1: (100, 1100, 0), 2: (200, 1100, 0)}
    assert contention(before, after, [2], {0, 1, 2}) == pytest.approx(0.5)
    # Only the CPUs this process may use count (a container's cpuset).
    assert contention(before, after, [2], {1, 2}) == 0.0
    assert contention(before, after, [2], {0, 2}) == 1.0
    # The hypervisor took 30 of CPU 2's 100 ticks; the others were idle.
    stolen = {0: (100, 1100, 0), 1: (100, 1100, 0), 2: (200, 1100, 30)}
    assert contention(before, stolen, [2], {0, 1, 2}) == pytest.approx(0.3)
    # Unknown: no /proc/stat, no pinned CPU, or no tick passed.
    assert contention(None, after, [2], {0, 1, 2}) is None
    assert contention(before, after, [], {0, 1, 2}) is None
    assert contention(before, before, [2], {0, 1, 2}) is None
    # One CPU in all: nothing else to be busy, only steal to see.
    assert contention(before, after, [2], {2}) == 0.0
    # Ticks that went backwards (iowait may, proc(5)) cannot make a share above 1.
    odd = {0: (180, 1020, 0), 1: (100, 1100, 0), 2: (200, 1100, 0)}
    assert contention(before, odd, [2], {0, 2}) == 1.0


def test_a_contended_result_is_named_and_a_bad_share_refused() -> None:
    assert timed(1.0, contention=CONTENDED).contended
    assert not timed(1.0, contention=CONTENDED - 0.01).contended
    assert not timed(1.0).contended  # unknown
    assert not timed(1.0, kind="predicted", contention=1.0).contended  # never timed
    back = LatencyResult.from_dict(timed(1.0, contention=0.25).to_dict())
    assert back.contention == 0.25
    for bad in (1.5, -0.1, float("nan"), "busy", True):
        with pytest.raises(ValueError, match="contention must be a share from 0 to 1"):
            LatencyResult.from_dict({**timed(1.0).to_dict(), "contention": bad})
