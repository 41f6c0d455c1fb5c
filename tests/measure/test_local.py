"""The timing protocol on real ONNX Runtime sessions (small models keep it quick)."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from util import FAST

from autosq._io import CACHE_ENV
from autosq.arch.model import build
from autosq.arch.presets import preset
from autosq.errors import MeasurementError
from autosq.measure import timer_for
from autosq.measure.estimated import EstimatedTimer
from autosq.measure.host import pinned_cpus
from autosq.measure.local import LocalTimer
from autosq.measure.onnx import export_bytes
from autosq.measure.profiles import Calibration, load_profile
from autosq.measure.protocol import (
    CONTENDED,
    TimingProtocol,
    block_gap,
    quantile,
    summarize,
)

Cli = Callable[..., tuple[int, str, str]]
@pytest.fixture(scope="module")
def small_onnx() -> bytes:
    return export_bytes(build(preset("squeezenet1_1", input_size=32, num_classes=10), seed=0), 32)


def test_statistics() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([5.0], 0.9) == 5.0
    assert block_gap([[10.0, 10.0], [11.0], [30.0]]) == pytest.approx(0.1)
    assert block_gap([[1.0]]) == math.inf
    s = summarize([[12.0, 12.0, 12.0], [10.0, 10.0, 30.0], [11.0, 11.0, 11.0]])
    assert s.latency_ms == 10.0  # the quietest block's median
    assert s.min_ms == 10.0 and s.runs == 9 and s.blocks == 3
    assert s.p90_ms >= 12.0  # noise stays visible in p90 and spread


def test_protocol_on_a_real_session(small_onnx: bytes) -> None:
    r = LocalTimer(threads=1, protocol=FAST).time(small_onnx)
    assert r.latency_kind == "measured" and r.stop in {"agreement", "time_cap"}
    assert 0 < r.min_ms <= r.latency_ms <= r.p90_ms * 1.5
    assert r.runs >= FAST.min_blocks * FAST.block_runs and r.blocks >= FAST.min_blocks
    assert 0 < r.run_seconds <= r.seconds
    proto = r.protocol
    assert proto["threads"] == 1 and proto["statistic"] == "median"
    assert proto["onnxruntime"] and proto["provider"] == "CPUExecutionProvider"
    assert len(proto["cpus"]) == 1


def test_stops_early_when_clearly_over_budget(small_onnx: bytes) -> None:
    r = LocalTimer(protocol=FAST).time(small_onnx, budget_ms=1e-6)
    assert r.stop == "over_budget" and r.over_budget
    assert r.runs == FAST.over_budget_min_runs


def test_time_cap_bounds_a_noisy_timing(small_onnx: bytes) -> None:
    never = TimingProtocol(
        warmup_runs=1,
        warmup_seconds=0,
        block_runs=2,
        block_seconds=0.0,
        min_blocks=2,
        target_gap=-1.0,
        max_seconds=0.2,
    )
    t0 = time.perf_counter()
    r = LocalTimer(protocol=never).time(small_onnx)
    assert r.stop == "time_cap" and time.perf_counter() - t0 < 2.0


def test_cpu_pinning_restores_affinity() -> None:
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    before = os.sched_getaffinity(0)
    with pinned_cpus(1) as cpus:
        assert os.sched_getaffinity(0) == set(cpus) and len(cpus) == 1
    assert os.sched_getaffinity(0) == before


def test_timings_never_overlap_between_processes(small_onnx: bytes, isolated_cache: Path,
                                                 tmp_path: Path) -> None:
    # Another process holds the timing lock and writes a mark just before it lets go: if our
    # timing waited for the lock, the mark is there when it returns (no wall-clock threshold).
    mark = tmp_path / "released"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from autosq.measure.host import timing_lock\n"
            "with timing_lock():\n    print('held', flush=True); time.sleep(1.0); "
            "Path(sys.argv[1]).write_text('x')",
            str(mark),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, CACHE_ENV: str(isolated_cache)},
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    LocalTimer(protocol=FAST).time(small_onnx)
    assert mark.exists(), "the timing ran while another process held the lock"
    holder.wait()


def test_a_timing_says_when_other_processes_kept_the_machine_busy(small_onnx: bytes) -> None:
    """A busy loop on every other CPU this process may use, running for the whole timing (it
    says so before it starts, and is stopped after): the timing, in its own contained
    process, reports the other CPUs busy nearly all the time. (An idle machine cannot be
    promised to a test, so the quiet case is tested on /proc/stat figures, test_host.py.)"""
    if not Path("/proc/stat").exists() or not hasattr(os, "sched_getaffinity"):
        pytest.skip("no /proc/stat or CPU affinity here: contention is not measured")
    allowed = sorted(os.sched_getaffinity(0))
    if not 2 <= len(allowed) <= 16:
        pytest.skip(f"{len(allowed)} CPUs: needs 2-16 (a busy loop on every other one)")
    quota = Path("/sys/fs/cgroup/cpu.max")
    limit = quota.read_text().split() if quota.exists() else ["max"]
    if limit[0] != "max" and int(limit[0]) / int(limit[1]) < len(allowed):
        pytest.skip("a CPU quota below the CPUs in view: the busy loops would be throttled")
    spin = ("import os, sys\nos.sched_setaffinity(0, [int(sys.argv[1])])\n"
            "print('spinning', flush=True)\nwhile True: pass")
    # The timing takes the last CPUs (pinned_cpus): keep the loops off them.
    loops = [subprocess.Popen([sys.executable, "-c", spin, str(cpu)], stdout=subprocess.PIPE,
                              text=True) for cpu in allowed[:-1]]
    try:
        for loop in loops:
            assert loop.stdout is not None and loop.stdout.readline().strip() == "spinning"
        protocol = replace(FAST, min_seconds=0.3, max_seconds=0.6)
        result = LocalTimer(protocol=protocol).time(small_onnx)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    assert result.contention is not None and result.contention >= CONTENDED
    assert result.contended


def test_bad_model_bytes_are_a_measurement_error() -> None:
    with pytest.raises(MeasurementError, match="cannot load the model"):
        LocalTimer(protocol=FAST).time(b"not an onnx file")


def test_unknown_provider() -> None:
    with pytest.raises(MeasurementError, match="CUDAExecutionProvider is not available"):
        LocalTimer(provider="CUDAExecutionProvider")


def test_estimate_scales_by_the_calibration_and_caches_the_reference(
    small_onnx: bytes, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import autosq.measure.local as local

    cal = Calibration(
        reference="squeezenet1_1",
        reference_input_size=32,
        device_ms=50.0,
        device_threads=4,
        source="test figure",
    )
    # A busy machine's reference is not cached (next test): here the machine's state is not
    # read, so that the test does not depend on it (timed in this process to reach it).
    monkeypatch.setattr(local, "cpu_times", lambda: None)
    timer = EstimatedTimer(cal, LocalTimer(protocol=FAST, contained=False))
    r = timer.time(small_onnx)
    assert r.latency_kind == "estimated"
    ref = timer.reference_ms()
    assert r.scale == pytest.approx(50.0 / ref)
    assert r.host_ms is not None and r.latency_ms == pytest.approx(r.host_ms * 50.0 / ref)
    assert r.protocol["calibration"]["source"] == "test figure"
    cache = json.loads((isolated_cache / "reference_timings.json").read_text())
    assert len(cache) == 1 and "squeezenet1_1@32" in next(iter(cache))
    # A new timer (as in a new process) reads the cached reference instead of timing it again.
    again = EstimatedTimer(cal, LocalTimer(protocol=FAST))
    assert again.reference_ms() == ref
    # The same model as the reference is estimated at the device's own figure (up to noise).
    same = export_bytes(build(preset("squeezenet1_1", input_size=32), seed=0), 32)
    assert again.time(same).latency_ms == pytest.approx(50.0, rel=0.5)


def test_a_reference_timed_on_a_busy_machine_serves_this_run_only(
    isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import autosq.measure.local as local

    monkeypatch.setattr(local, "contention", lambda *args: 1.0)
    cal = Calibration("squeezenet1_1", 32, 10.0, 4, "x")
    timer = EstimatedTimer(cal, LocalTimer(protocol=FAST, contained=False))
    assert timer.reference_ms() > 0
    assert not (isolated_cache / "reference_timings.json").exists()


def test_corrupt_cache_is_rebuilt(isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import autosq.measure.local as local

    monkeypatch.setattr(local, "cpu_times", lambda: None)  # not cached when the machine is busy
    (isolated_cache / "reference_timings.json").write_text("{not json")
    cal = Calibration("squeezenet1_1", 32, 10.0, 4, "x")
    assert EstimatedTimer(cal, LocalTimer(protocol=FAST, contained=False)).reference_ms() > 0
    json.loads((isolated_cache / "reference_timings.json").read_text())


@pytest.mark.parametrize("name", ["host", "rpi4"])
def test_timer_for_profiles(name: str) -> None:
    timer = timer_for(load_profile(name), FAST)
    assert timer.kind == ("measured" if name == "host" else "estimated")


def test_measure_cli_preset_json(cli: Cli) -> None:
    code, out, err = cli(
        "measure", "--preset", "squeezenet1_1", "--device", "host", "--input-size", "64", "--json"
    )
    assert code == 0, err
    d = json.loads(out)
    assert {"latency_ms", "p90_ms", "runs", "threads", "latency_kind"} <= set(d)
    assert d["latency_kind"] == "measured" and d["threads"] == 1 and d["runs"] > 0


@pytest.mark.slow
def test_measure_cli_file_estimated(cli: Cli, tmp_path: Path, small_onnx: bytes) -> None:
    f = tmp_path / "m.onnx"
    f.write_bytes(small_onnx)
    code, out, err = cli("measure", str(f), "--device", "rpi4", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["latency_kind"] == "estimated" and d["scale"] > 0
    code, out, _ = cli("measure", str(f), "--device", "rpi4")
    assert "estimated" in out and "ncnn" in out


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["measure"], 2, "give either MODEL.onnx or an architecture"),
        (["measure", "/no/such.onnx"], 2, "model file /no/such.onnx does not exist"),
        (["measure", "--preset", "squeezenet1_1", "--device", "rpi9"], 2, "unknown device 'rpi9'"),
        (["measure", "--preset", "nope"], 2, "unknown preset 'nope'"),
    ],
)
def test_measure_bad_input(cli: Cli, args: list[str], code: int, needle: str) -> None:
    got, _, err = cli(*args)
    assert got == code and needle in err and len(err.strip().splitlines()) == 1


def test_measure_not_an_onnx_file(cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "junk.onnx"
    f.write_text("hello")
    code, _, err = cli("measure", str(f))
    assert code == 1 and "cannot load the model" in err and len(err.strip().splitlines()) == 1


def test_interleaved_groups_fit_half_the_memory() -> None:
    from autosq.measure.limits import PROCESS_BASE_MB, interleaved_groups, session_bytes

    mib = 1024 * 1024
    sizes = [5 * mib] * 700
    groups = interleaved_groups(sizes, 8192)
    assert groups[0][0] == 0 and groups[-1][1] == 700
    assert all(a[1] == b[0] for a, b in itertools.pairwise(groups))  # in order
    budget = (8192 - PROCESS_BASE_MB) * mib / 2
    need = session_bytes(5 * mib, None)
    assert all((stop - start) * need <= budget for start, stop in groups)
    assert len(groups) == -(-700 * need // budget)  # no group smaller than it must be
    # Larger inputs take more per session, so smaller groups.
    assert len(interleaved_groups(sizes, 8192, 448)) > len(groups)
    assert interleaved_groups([10**12], 300) == [(0, 1)]  # one model too big still gets a group
    assert interleaved_groups([], 300) == []


def test_time_many_over_several_groups_times_every_model(small_onnx: bytes) -> None:
    from autosq.measure.limits import Limits, interleaved_groups

    limits = Limits(max_memory_mb=512)  # the timing process itself takes ~250 MB
    models = [small_onnx] * 12
    assert len(interleaved_groups([len(m) for m in models], limits.max_memory_mb)) >= 2
    for contained in (False, True):  # the timing process groups by the same limit
        results = LocalTimer(protocol=FAST, limits=limits, contained=contained).time_many(models)
        assert len(results) == 12
        assert all(r.latency_kind == "measured" and r.latency_ms > 0 for r in results)


def test_a_group_that_runs_out_of_memory_is_timed_in_halves(
        small_onnx: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """The grouping estimate is rough: a group that still fails to allocate is split."""
    timer = LocalTimer(protocol=FAST, contained=False)
    real = timer._time_group
    sizes: list[int] = []

    def picky(models: Any, first: int, total: int) -> Any:
        sizes.append(len(models))
        if len(models) > 3:
            raise MeasurementError("ONNX Runtime failed: Failed to allocate memory for buffer")
        return real(models, first, total)

    monkeypatch.setattr(timer, "_time_group", picky)
    assert len(timer.time_many_here([small_onnx] * 8)) == 8
    assert sizes == [8, 4, 2, 2, 4, 2, 2]


def test_a_settled_model_leaves_the_interleaved_rotation(
        small_onnx: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """Interleaved timing stops timing a model once its own blocks agree; the others go on to
    the cap without it (the first model here settles at 4 blocks, the second never)."""
    from dataclasses import replace

    timer = LocalTimer(protocol=replace(FAST, max_seconds=2.0), contained=False)
    order: list[list[float]] = []

    def first_settles(blocks: list[list[float]], t_start: float) -> bool:
        if not any(b is blocks for b in order):
            order.append(blocks)
        return len(blocks) >= 4 and blocks is order[0]

    monkeypatch.setattr(timer, "_settled", first_settles)
    first, second = timer.time_many_here([small_onnx, small_onnx])
    assert (first.blocks, first.stop) == (4, "agreement")
    assert second.stop == "time_cap" and second.blocks >= 4


def test_a_model_that_never_settles_leaves_the_rotation_after_its_blocks(
        small_onnx: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the protocol's own window has passed, a model timed together with others leaves
    the rotation unsettled after ROTATION_BLOCKS times the blocks agreement needs, and says so
    (blocks stand-ins here: instant, and the second model's never agree)."""
    from autosq.measure.local import ROTATION_BLOCKS

    # Long blocks on paper: the rotation's own end (1.5 x the blocks x the models) is far off.
    timer = LocalTimer(protocol=replace(FAST, block_seconds=60.0, max_seconds=0.0),
                       contained=False)
    order: list[object] = []
    counts = [0, 0]

    def block(session: object, feed: object) -> tuple[list[float], bool]:
        if not any(session is s for s in order):
            order.append(session)
        i = next(k for k, s in enumerate(order) if s is session)
        counts[i] += 1
        return [1.0 if i == 0 else 2.0 ** counts[i]], False  # the second's never agree

    monkeypatch.setattr(timer, "_block", block)
    monkeypatch.setattr(timer, "_warm_up", lambda session, feed: None)
    steady, drifting = timer.time_many_here([small_onnx, small_onnx])
    assert (steady.blocks, steady.stop) == (FAST.min_blocks, "agreement")
    assert (drifting.blocks, drifting.stop) == (ROTATION_BLOCKS * FAST.min_blocks, "block_cap")
