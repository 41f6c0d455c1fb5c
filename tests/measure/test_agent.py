"""The on-device agent on loopback: real HTTP, real ONNX Runtime timing, latency kind device."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from autosq.arch.model import build
from autosq.arch.presets import preset
from autosq.errors import AgentError
from autosq.measure import timer_for
from autosq.measure.agent_client import AgentTimer
from autosq.measure.agent_server import make_server
from autosq.measure.onnx import export_bytes
from autosq.measure.profiles import load_profile
from autosq.measure.protocol import TimingProtocol

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def agent_url() -> Iterator[str]:
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def small_onnx() -> bytes:
    return export_bytes(build(preset("squeezenet1_1", input_size=32, num_classes=10), seed=0), 32)


def test_agent_times_a_model(agent_url: str, small_onnx: bytes) -> None:
    r = AgentTimer(agent_url, threads=1, graph_optimization="all").time(small_onnx)
    assert r.latency_kind == "device" and r.runs > 0 and r.latency_ms > 0
    assert r.protocol["device"]["agent"] == "autosq" and r.protocol["threads"] == 1
    over = AgentTimer(agent_url, 1, "all").time(small_onnx, budget_ms=1e-6)
    assert over.stop == "over_budget" and over.over_budget


def test_the_protocol_reaches_the_device(agent_url: str, small_onnx: bytes) -> None:
    from util import FAST

    r = AgentTimer(agent_url, 1, "all", protocol=FAST).time(small_onnx)
    assert {k: r.protocol[k] for k in asdict(FAST)} == asdict(FAST)
    careful = AgentTimer(agent_url, 1, "all", protocol=TimingProtocol.careful())
    assert careful.protocol == TimingProtocol.careful()


def test_agent_errors_are_clear(agent_url: str) -> None:
    with pytest.raises(AgentError, match="refused the model: ONNX Runtime cannot load"):
        AgentTimer(agent_url, 1, "all").time(b"not onnx")
    with pytest.raises(AgentError, match=r"cannot reach the agent at http://127\.0\.0\.1:9 "):
        AgentTimer("http://127.0.0.1:9", 1, "all", timeout=5).time(b"x")


def test_agent_profile_measures_on_the_device(cli: Cli, agent_url: str, tmp_path: Path,
                                              small_onnx: bytes) -> None:
    (tmp_path / "board.toml").write_text(
        f'name = "board"\n[budget]\nmax_mb = 1\n[latency]\nsource = "agent"\nurl = "{agent_url}"\n')
    timer = timer_for(load_profile("board", [tmp_path]))
    assert timer.kind == "device"
    model = tmp_path / "m.onnx"
    model.write_bytes(small_onnx)
    code, out, err = cli("measure", str(model), "--device", "board", "--profiles", str(tmp_path),
                         "--json")
    assert code == 0, err
    assert json.loads(out)["latency_kind"] == "device"


def test_agent_port_in_use_is_one_line(cli: Cli) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code, _, err = cli("agent", "--port", str(busy.getsockname()[1]))
    assert code == 2 and "cannot listen on 127.0.0.1:" in err
    assert len(err.strip().splitlines()) == 1
