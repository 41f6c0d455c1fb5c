"""The on-device agent on loopback: real HTTP, real ONNX Runtime timing, latency kind device,
token auth, concurrent and idle clients, hostile models, the result cache, TLS."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import hostile
import pytest
from util import FAST

from autosq.arch.model import build
from autosq.arch.presets import preset
from autosq.errors import AgentError, UsageError
from autosq.measure import timer_for
from autosq.measure.agent_client import AgentTimer
from autosq.measure.agent_server import AgentServer, make_server
from autosq.measure.limits import Limits
from autosq.measure.onnx import export_bytes
from autosq.measure.profiles import load_profile
from autosq.measure.protocol import TimingProtocol

Cli = Callable[..., tuple[int, str, str]]
TOKEN = "test-token-0123456789abcdef"
DATA = Path(__file__).parent / "data"
CAP_SECONDS = 4.0
# Ordinary timings run under a cap no loaded machine reaches; only the endless-model test uses
# the short one (a full protocol on a busy 2-core machine can take more than 4 s).
ROOMY_SECONDS = 120.0


def _serve(server: AgentServer) -> Iterator[AgentServer]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def agent() -> Iterator[AgentServer]:
    """An agent with a token and a roomy wall-clock cap, on a free loopback port."""
    yield from _serve(make_server("127.0.0.1", 0, token=TOKEN, limits=Limits(
        max_seconds=ROOMY_SECONDS, max_memory_mb=1024)))


@pytest.fixture
def capped_agent() -> Iterator[AgentServer]:
    """An agent whose cap (4 s a model) an endless model reaches."""
    yield from _serve(make_server("127.0.0.1", 0, token=TOKEN, limits=Limits(
        max_seconds=CAP_SECONDS, max_memory_mb=1024)))


def url_of(server: AgentServer, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{server.server_port}"


def client(server: AgentServer, **kw: Any) -> AgentTimer:
    kw.setdefault("token", TOKEN)
    kw.setdefault("protocol", FAST)
    return AgentTimer(url_of(server), 1, "all", **kw)


def board_profile(folder: Path, server: AgentServer, extra: str = "") -> None:
    """A profile named board, timed through ``server``, in ``folder``."""
    (folder / "board.toml").write_text(
        f'name = "board"\n[budget]\nmax_mb = 1\n[latency]\nsource = "agent"\n'
        f'url = "{url_of(server)}"\n{extra}')


@pytest.fixture(scope="module")
def small_onnx() -> bytes:
    return export_bytes(build(preset("squeezenet1_1", input_size=32, num_classes=10), seed=0), 32)


def _get(url: str, token: str | None = None, timeout: float = 10) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_agent_times_a_model(agent: AgentServer, small_onnx: bytes) -> None:
    r = client(agent).time(small_onnx)
    assert r.latency_kind == "device" and r.runs > 0 and r.latency_ms > 0
    facts = r.protocol["device"]
    assert facts["agent"] == "autosq" and r.protocol["threads"] == 1
    assert {"cpu", "cores", "governor", "freq_mhz", "temperature_c", "onnxruntime",
            "providers"} <= set(facts)
    over = client(agent).time(small_onnx, budget_ms=1e-6)
    assert over.stop == "over_budget" and over.over_budget


def test_the_whole_protocol_reaches_the_device(agent: AgentServer, small_onnx: bytes) -> None:
    r = client(agent).time(small_onnx)
    assert {k: r.protocol[k] for k in asdict(FAST)} == asdict(FAST)
    assert client(agent, protocol=TimingProtocol.careful()).protocol == TimingProtocol.careful()


def test_a_token_is_required(agent: AgentServer, small_onnx: bytes) -> None:
    base = url_of(agent)
    assert _get(f"{base}/info")[0] == 401
    assert _get(f"{base}/info", token="wrong")[0] == 401
    status, facts = _get(f"{base}/info", token=TOKEN)
    assert status == 200 and facts["agent"] == "autosq"
    with pytest.raises(AgentError, match="set AUTOSQ_TEST_UNSET_TOKEN to the agent's token"):
        client(agent, token="", token_env="AUTOSQ_TEST_UNSET_TOKEN").time(small_onnx)
    with pytest.raises(AgentError, match="is not the agent's token"):
        client(agent, token="wrong").time(small_onnx)


def test_the_token_comes_from_the_profile_variable(agent: AgentServer, tmp_path: Path,
                                                   small_onnx: bytes,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOARD_TOKEN", TOKEN)
    board_profile(tmp_path, agent, 'token_env = "BOARD_TOKEN"\n')
    timer = timer_for(load_profile("board", [tmp_path]), FAST)
    assert timer.kind == "device" and timer.time(small_onnx).latency_kind == "device"


def test_an_idle_or_half_sent_request_does_not_delay_others(agent: AgentServer,
                                                            small_onnx: bytes) -> None:
    port = agent.server_port
    idle = socket.create_connection(("127.0.0.1", port))
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    body = socket.create_connection(("127.0.0.1", port))
    body.sendall(("POST /time HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                  f"Authorization: Bearer {TOKEN}\r\n\r\n").encode() + small_onnx[:100])
    try:
        # Without a thread per connection these would wait for the socket timeout (30 s).
        assert _get(f"{url_of(agent)}/info", token=TOKEN, timeout=10)[0] == 200
        assert client(agent, timeout=20).time(small_onnx).latency_kind == "device"
    finally:
        for s in (idle, half, body):
            s.close()


def test_ten_concurrent_timings_are_all_answered(agent: AgentServer, small_onnx: bytes) -> None:
    models = [export_bytes(build(preset("squeezenet1_1", input_size=32, num_classes=c),
                                 seed=0), 32) for c in range(2, 12)]
    results: list[Any] = [None] * len(models)

    def run(i: int) -> None:
        try:
            results[i] = client(agent, timeout=120).time(models[i])
        except Exception as exc:  # recorded: the assertion below names it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(models))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(getattr(r, "latency_kind", r) == "device" for r in results), results


def test_an_endless_model_is_stopped_at_the_cap_and_the_agent_serves_on(
        capped_agent: AgentServer, small_onnx: bytes) -> None:
    agent = capped_agent
    outcome: list[str] = []

    def post() -> None:
        try:
            client(agent, timeout=60).time(hostile.endless_loop())
            outcome.append("answered a latency")
        except AgentError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=post)
    thread.start()
    # While the endless model runs, the agent answers other clients.
    assert _get(f"{url_of(agent)}/info", token=TOKEN, timeout=30)[0] == 200
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert "timing stopped after 4 s, the cap (--max-seconds: 4 s a model)" in outcome[0]
    assert client(agent).time(small_onnx).latency_kind == "device"


@pytest.mark.parametrize(("model", "expected"), [
    (hostile.huge_input, r"shape 30000x30000: 3,433 MB, over the limit of 256 MB .* refused "
                         "before allocating it"),
    (hostile.no_input, "the model has no input"),
    (hostile.integer_input, r"input 'x' is tensor\(int64\)"),
    (hostile.dynamic_channels, r"dimension 1 of the model's input 'x' is dynamic \('c'\)"),
    (hostile.huge_intermediate, "memory"),
])
def test_hostile_models_are_refused_with_a_reason(agent: AgentServer, small_onnx: bytes,
                                                  model: Callable[[], bytes],
                                                  expected: str) -> None:
    with pytest.raises(AgentError, match=f"refused the model: .*{expected}"):
        client(agent).time(model())
    assert client(agent).time(small_onnx).latency_kind == "device"  # still serving


@pytest.mark.parametrize(("query", "expected"), [
    ("threads=-1", "threads must be a finite number from 1 to"),
    ("threads=300", "threads must be a finite number from 1 to"),
    ("budget_ms=nan", "budget_ms must be a finite number >= 0; got nan"),
    ("graph_optimization=bogus", "graph_optimization must be one of disable, basic, extended, "
                                 "all; got 'bogus'"),
    ("warmup_runs=1.5", "warmup_runs must be an integer; got '1.5'"),
    ("speed=fast", "unknown parameter 'speed'"),
])
def test_bad_protocol_fields_get_a_clear_400(agent: AgentServer, small_onnx: bytes, query: str,
                                             expected: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", agent.server_port, timeout=30)
    conn.request("POST", f"/time?{query}", body=small_onnx,
                 headers={"Authorization": f"Bearer {TOKEN}"})
    response = conn.getresponse()
    assert response.status == 400
    assert expected in json.loads(response.read())["error"]


def test_repeated_timings_come_from_the_cache(agent: AgentServer, small_onnx: bytes) -> None:
    first = client(agent).time(small_onnx)
    again = client(agent).time(small_onnx)
    fresh = client(agent, fresh=True).time(small_onnx)
    assert (first.protocol["cache"], again.protocol["cache"], fresh.protocol["cache"]) == \
        ("miss", "hit", "miss")
    assert again.latency_ms == first.latency_ms
    other = client(agent, protocol=TimingProtocol(**{**asdict(FAST), "block_runs": 4}))
    assert other.time(small_onnx).protocol["cache"] == "miss"  # the protocol is in the key


def test_a_model_the_timer_asked_for_before_is_timed_again(
        agent: AgentServer, small_onnx: bytes) -> None:
    other = export_bytes(build(preset("squeezenet1_1", input_size=32, num_classes=10), seed=1),
                         32)
    timer = client(agent)
    # the search's second look at a slow timing, trials later, wants a new timing
    answers = [timer.time(m).protocol["cache"] for m in (small_onnx, other, small_onnx)]
    assert answers == ["miss", "miss", "miss"]
    assert client(agent).time(small_onnx).protocol["cache"] == "hit"  # another timer: cached


def test_a_batch_is_timed_together_on_the_device(agent: AgentServer, small_onnx: bytes) -> None:
    other = export_bytes(build(preset("squeezenet1_0", input_size=32, num_classes=10), seed=0),
                         32)
    results = client(agent).time_many([small_onnx, other])
    assert [r.latency_kind for r in results] == ["device", "device"]
    assert results[0].runs > 0 and results[1].latency_ms > 0


def test_listening_beyond_loopback_needs_a_token(cli: Cli,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="without a token would let anyone on the network"):
        make_server("0.0.0.0", 0)
    monkeypatch.delenv("AUTOSQ_AGENT_TOKEN", raising=False)
    code, _, err = cli("agent", "--host", "0.0.0.0", "--port", "0")
    assert code == 2 and "set AUTOSQ_AGENT_TOKEN" in err and len(err.strip().splitlines()) == 1


def test_tls_with_a_ca_file(small_onnx: bytes) -> None:
    cert, key = str(DATA / "agent-cert.pem"), str(DATA / "agent-key.pem")
    for server in _serve(make_server("127.0.0.1", 0, token=TOKEN, tls=(cert, key))):
        base = url_of(server, "https")
        r = AgentTimer(base, 1, "all", FAST, token=TOKEN, ca_file=cert).time(small_onnx)
        assert r.latency_kind == "device"
        with pytest.raises(AgentError, match=r"was reached, but its TLS certificate is not "
                                             r"trusted .*set \[latency\] ca_file"):
            AgentTimer(base, 1, "all", FAST, token=TOKEN, timeout=10).time(small_onnx)


class _Fake(BaseHTTPRequestHandler):
    """Says it is an agent (GET /info), then answers a timing with ``answer``."""

    answer = b""

    def do_GET(self) -> None:
        body = b'{"agent": "autosq"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("answer", "expected"), [
    (b"<html><body>router login</body></html>", "not JSON"),
    (json.dumps({"latency_ms": -1.0, "p90_ms": 1.0, "min_ms": 1.0, "mean_ms": 1.0, "runs": 5,
                 "blocks": 1, "block_gap": 0.0, "spread": 1.0, "latency_kind": "device",
                 "threads": 1, "stop": "agreement", "over_budget": False, "seconds": 1.0,
                 "run_seconds": 1.0}).encode(),
     r"not a timing \(latency_ms must be a finite number > 0"),
    (b"[1, 2]", "not a JSON object"),
])
def test_the_client_names_an_agent_answering_garbage(answer: bytes, expected: str) -> None:
    handler = type("Fake", (_Fake,), {"answer": answer})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(AgentError, match=f"agent at http://127.0.0.1:\\d+ answered .*"
                                             f"{expected}"):
            AgentTimer(f"http://127.0.0.1:{server.server_port}", 1, "all").time(b"model")
    finally:
        server.shutdown()
        server.server_close()


def test_agent_errors_are_clear(agent: AgentServer) -> None:
    with pytest.raises(AgentError, match="refused the model: ONNX Runtime cannot load"):
        client(agent).time(b"not onnx")
    with pytest.raises(AgentError, match=r"cannot reach the agent at http://127\.0\.0\.1:9 "):
        AgentTimer("http://127.0.0.1:9", 1, "all", timeout=5).time(b"x")


def test_measure_through_an_authenticated_agent(cli: Cli, agent: AgentServer, tmp_path: Path,
                                                small_onnx: bytes,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOSQ_AGENT_TOKEN", TOKEN)
    board_profile(tmp_path, agent)
    model = tmp_path / "m.onnx"
    model.write_bytes(small_onnx)
    code, out, err = cli("measure", str(model), "--device", "board", "--profiles", str(tmp_path),
                         "--json")
    assert code == 0, err
    assert json.loads(out)["latency_kind"] == "device"
    monkeypatch.setenv("AUTOSQ_AGENT_TOKEN", "wrong")
    code, _, err = cli("measure", str(model), "--device", "board", "--profiles", str(tmp_path))
    assert code == 1 and "is not the agent's token" in err


def test_agent_port_in_use_is_one_line(cli: Cli) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code, _, err = cli("agent", "--port", str(busy.getsockname()[1]))
    assert code == 2 and "cannot listen on 127.0.0.1:" in err
    assert len(err.strip().splitlines()) == 1


def _raw(server: AgentServer, request: bytes) -> tuple[int, dict[str, Any]]:
    """Send raw bytes; the status and the JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=30) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_body_over_the_limit_is_refused_before_it_is_read(agent: AgentServer) -> None:
    # 100 GB announced, 3 bytes sent: answered at once, nothing allocated.
    status, body = _raw(agent, (f"POST /time HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                                f"{TOKEN}\r\nContent-Length: 107374182400\r\n\r\nabc").encode())
    assert status == 413 and "over the agent's limit of 512 MB a request" in body["error"]


@pytest.mark.parametrize(("request_bytes", "status", "expected"), [
    (b"PUT /time HTTP/1.1\r\nHost: x\r\n\r\n", 501, "Unsupported method"),
    (b"GARBAGE\r\n\r\n", 400, "Bad request"),
    (f"POST /time?block_runs={'9' * 400} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}"
     f"\r\nContent-Length: 4\r\n\r\nonnx".encode(), 400, "block_runs must be an integer"),
    (f"POST /time HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
     "Content-Length: 1_0\r\n\r\n0123456789".encode(), 411, "with a Content-Length"),
    (f"POST /time?fresh=maybe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
     "Content-Length: 4\r\n\r\nonnx".encode(), 400, "fresh must be 0 or 1"),
])
def test_malformed_requests_get_json_errors(agent: AgentServer, request_bytes: bytes,
                                            status: int, expected: str) -> None:
    got, body = _raw(agent, request_bytes)
    assert got == status and expected in body["error"]


def test_answers_are_strict_json(agent: AgentServer, small_onnx: bytes) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", agent.server_port, timeout=60)
    conn.request("POST", "/time?budget_ms=0", body=small_onnx,
                 headers={"Authorization": f"Bearer {TOKEN}"})
    text = conn.getresponse().read().decode()

    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    result = json.loads(text, parse_constant=refuse)
    assert result["blocks"] == 1 and result["block_gap"] is None  # one block: no gap


def test_a_timing_whose_client_left_is_stopped(small_onnx: bytes) -> None:
    lines: list[str] = []
    for server in _serve(make_server("127.0.0.1", 0, token=TOKEN, log=lines.append,
                                     limits=Limits(max_seconds=60, max_memory_mb=1024))):
        model = hostile.endless_loop()
        with socket.create_connection(("127.0.0.1", server.server_port)) as s:
            s.sendall((f"POST /time HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                       f"Content-Length: {len(model)}\r\n\r\n").encode() + model)
            deadline = time.monotonic() + 60
            while not any("POST" in line or "went away" in line for line in lines) and \
                    server.process._proc is None:
                assert time.monotonic() < deadline, "the endless model never started timing"
                time.sleep(0.01)  # until the endless model is being timed
        # The next timing waits in the queue behind the endless one until it is stopped.
        assert client(server).time(small_onnx).latency_kind == "device"
        deadline = time.monotonic() + 30  # the stopped request's handler logs on its own thread
        while not any("the client went away" in line for line in lines):
            assert time.monotonic() < deadline, lines
            time.sleep(0.01)


@pytest.mark.parametrize("token", ["", "short", "has spaces in it, long enough", "€uro-token-long"
                                   "-enough"])
def test_weak_or_unusable_tokens_are_refused(token: str) -> None:
    with pytest.raises(UsageError, match="at least 16 printable ASCII characters"):
        make_server("127.0.0.1", 0, token=token)


def test_listening_on_ipv6_loopback(small_onnx: bytes) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        server = make_server("::1", 0)
    except UsageError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    for s in _serve(server):
        r = AgentTimer(f"http://[::1]:{s.server_port}", 1, "all", FAST).time(small_onnx)
        assert r.latency_kind == "device"
