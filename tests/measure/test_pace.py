"""The machine's pace: the reference readings' slow-down (pure), and screens divided by it on
real ONNX Runtime sessions, in this process and in the timing process."""

from __future__ import annotations

import dataclasses
import statistics

import onnx
import pytest

from autosq.arch.model import build
from autosq.arch.presets import preset
from autosq.measure import local
from autosq.measure.local import LocalTimer
from autosq.measure.onnx import export_bytes
from autosq.measure.pace import WINDOW, Pace, reference_model
from autosq.measure.protocol import LatencyResult, TimingProtocol


@pytest.fixture(scope="module")
def small_onnx() -> bytes:
    return export_bytes(build(preset("squeezenet1_1", input_size=32, num_classes=10), seed=0), 32)


def test_no_factor_until_a_whole_window_is_in() -> None:
    pace = Pace(window=3)
    for ms in (1.0, 2.0):
        pace.add(ms)
        assert pace.factor() == 1.0
    pace.add(3.0)
    assert pace.factor() == 1.0  # the window is everything so far


def test_factor_is_the_recent_median_over_the_typical_one() -> None:
    pace = Pace(window=3)
    for ms in [1.0] * 10 + [1.2, 1.3, 1.25]:
        pace.add(ms)
    assert pace.readings == 13
    assert pace.factor() == pytest.approx(1.25 / statistics.median([1.0] * 10 + [1.2, 1.3, 1.25]))
    for ms in [1.0] * 3:  # the spell is over
        pace.add(ms)
    assert pace.factor() == 1.0


def test_one_slow_reading_moves_nothing() -> None:
    pace = Pace(window=5)
    for ms in [1.0] * 20 + [5.0]:
        pace.add(ms)
    assert pace.factor() == 1.0


def test_history_is_bounded() -> None:
    pace = Pace(window=2, history=4)
    for ms in [9.0] * 100 + [1.0] * 4:
        pace.add(ms)
    assert pace.readings == 4 and pace.factor() == 1.0


@pytest.mark.parametrize(("window", "history"), [(0, 10), (5, 4)])
def test_bad_settings(window: int, history: int) -> None:
    with pytest.raises(ValueError, match="window must be >= 1"):
        Pace(window, history)


@pytest.mark.parametrize("ms", [0.0, -1.0, float("nan")])
def test_a_reading_must_be_positive(ms: float) -> None:
    with pytest.raises(ValueError, match="ms must be > 0"):
        Pace().add(ms)


def test_reference_model_is_a_fixed_valid_graph() -> None:
    data = reference_model()
    assert data == reference_model()  # the same weights every time
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 128, 128]


def test_only_a_paced_protocol_times_the_reference(small_onnx: bytes,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "_PACERS", {})
    plain = LocalTimer(protocol=dataclasses.replace(TimingProtocol.screen(), pace_runs=0),
                       contained=False).time(small_onnx)
    assert plain.pace is None and not local._PACERS
    paced = LocalTimer(protocol=TimingProtocol.screen(), contained=False).time(small_onnx)
    assert paced.pace == 1.0 and paced.protocol["pace_runs"] == TimingProtocol.screen().pace_runs
    (pacer,) = local._PACERS.values()
    assert pacer.pace.readings == 1


def test_a_screen_in_a_slow_spell_is_divided_by_it(small_onnx: bytes,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "_PACERS", {})
    timer = LocalTimer(protocol=TimingProtocol.screen(), contained=False)
    timer.time(small_onnx)  # creates the reference's session
    (pacer,) = local._PACERS.values()
    # A history in which the reference ran at 1 us, then a window that ran at 2 us: whatever
    # the next real reading, the recent median is 2 us and the typical one 1 us.
    pacer.pace = Pace()
    for _ in range(100):
        pacer.pace.add(0.001)
    for _ in range(WINDOW - 1):
        pacer.pace.add(0.002)
    r = timer.time(small_onnx)
    assert r.pace == pytest.approx(2.0) and pacer.pace.readings == 100 + WINDOW
    assert r.min_ms <= r.latency_ms <= r.p90_ms  # every figure divided alike
    assert LatencyResult.from_dict(r.to_dict()).pace == r.pace  # stored with the trial


def test_the_timing_process_keeps_its_pace_between_screens(small_onnx: bytes) -> None:
    timer = LocalTimer(protocol=TimingProtocol.screen())  # contained: the real path
    try:
        results = [timer.time(small_onnx) for _ in range(WINDOW + 10)]
    finally:
        timer.close()
    assert [r.pace for r in results[:WINDOW]] == [1.0] * WINDOW
    # readings carried over between requests: once the window is full, the factor moves
    # (it would stay 1.0 if every request started a new pace)
    assert any(r.pace != 1.0 for r in results[WINDOW:])
    assert all(r.latency_kind == "measured" for r in results)
