"""The agent under slow, unauthenticated or confused clients (badinput-2: B-ag-*): slots, a
per-client share, a header deadline, an HTTP answer to every refused connection, conflicting
Content-Length headers refused, TLS files and trust problems said plainly."""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autosq.errors import AgentError, UsageError
from autosq.measure.agent_client import AgentTimer
from autosq.measure.agent_server import AgentServer, make_server
from autosq.measure.limits import Limits

TOKEN = "test-token-0123456789abcdef"
DATA = Path(__file__).parent / "data"
CERT, KEY = str(DATA / "agent-cert.pem"), str(DATA / "agent-key.pem")


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch,
          request: pytest.FixtureRequest) -> Iterator[AgentServer]:
    """An agent with small numbers: 6 slots, 3 a client still sending headers, and 2 s for
    them (or the test's parameter): far more than accepting a few connections takes."""
    monkeypatch.setattr(AgentServer, "max_connections", 6)
    monkeypatch.setattr(AgentServer, "per_client", 3)
    monkeypatch.setattr(AgentServer, "header_seconds", getattr(request, "param", 2.0))
    server = make_server("127.0.0.1", 0, token=TOKEN, limits=Limits(max_memory_mb=1024))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _slow(server: AgentServer, source: str) -> socket.socket:
    """A client on ``source`` that starts a request and never finishes its headers."""
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", server.server_port))
    s.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n")
    return s


def _answer(s: socket.socket) -> bytes:
    """What the agent answered before closing (waits at most the socket's timeout)."""
    chunks = []
    try:
        while chunk := s.recv(4096):
            chunks.append(chunk)
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


def _info(server: AgentServer, source: str = "127.0.0.1") -> bytes:
    s = socket.create_connection(("127.0.0.1", server.server_port), timeout=10,
                                 source_address=(source, 0))
    s.sendall(f"GET /info HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
    with s:
        return _answer(s)


def test_slow_clients_cannot_starve_those_with_the_token(gated: AgentServer) -> None:
    # B-ag-slowloris-80: many connections trickling headers from one address.
    slow = [_slow(gated, "127.0.0.2") for _ in range(5)]
    try:
        t0 = time.monotonic()
        assert _info(gated).startswith(b"HTTP/1.0 200")  # served while they hang on
        assert time.monotonic() - t0 < 5
        answers = [_answer(s) for s in slow]
        # Beyond the share of that address: answered 503 at once; the rest 408 at the deadline.
        refused = [a for a in answers if a.startswith(b"HTTP/1.0 503")]
        late = [a for a in answers if a.startswith(b"HTTP/1.0 408")]
        assert len(refused) == 2 and len(late) == 3, answers
        assert b"still sending their request" in refused[0] and b"Retry-After" in refused[0]
        assert b"did not arrive within 2 s" in late[0]
    finally:
        for s in slow:
            s.close()


@pytest.mark.parametrize("gated", [60.0], indirect=True)
def test_a_full_agent_answers_503(gated: AgentServer) -> None:
    # Every slot held (from 6 addresses, within their header time); connections are admitted
    # in the order they arrived, so the next one finds the agent full.
    slow = [_slow(gated, f"127.0.0.{i}") for i in range(2, 8)]
    try:
        answer = _info(gated, "127.0.0.9")
        assert answer.startswith(b"HTTP/1.0 503") and b"6 connections are open" in answer
    finally:
        for s in slow:
            s.close()
    deadline = time.monotonic() + 10
    while not _info(gated).startswith(b"HTTP/1.0 200"):  # the slots come back
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_client_without_the_token_cannot_hold_a_slot_with_a_slow_body(
        gated: AgentServer) -> None:
    s = socket.create_connection(("127.0.0.1", gated.server_port), timeout=30)
    with s:
        t0 = time.monotonic()
        s.sendall(b"POST /time HTTP/1.0\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        answer = _answer(s)  # the rest never comes: refused, answered, closed
    assert answer.startswith(b"HTTP/1.0 401") and time.monotonic() - t0 < 15


@pytest.mark.parametrize("lengths", [("5", "50"), ("50", "5")])
def test_conflicting_content_lengths_are_refused(gated: AgentServer,
                                                 lengths: tuple[str, str]) -> None:
    # B-ag-two-CL: which one the body follows would be a guess.
    s = socket.create_connection(("127.0.0.1", gated.server_port), timeout=10)
    with s:
        s.sendall((f"POST /time HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\n"
                   f"Content-Length: {lengths[0]}\r\nContent-Length: {lengths[1]}\r\n\r\n"
                   "abcde").encode())
        answer = _answer(s)
    assert answer.startswith(b"HTTP/1.0 400") and b"conflicting Content-Length" in answer


def test_tls_files_say_which_is_wrong(tmp_path: Path) -> None:
    garbage, empty = tmp_path / "garbage.pem", tmp_path / "empty.pem"
    garbage.write_text("-----BEGIN NONSENSE-----\nabc\n-----END NONSENSE-----\n")
    empty.write_bytes(b"")
    for cert, key, needle in (
            (str(garbage), KEY, f"--tls-cert {garbage} holds no certificate; expected a PEM "
                                "certificate"),
            (str(empty), KEY, f"--tls-cert {empty} is empty; expected a PEM certificate"),
            (KEY, CERT, f"--tls-cert {KEY} holds a private key and --tls-key {CERT} a "
                        "certificate: they are swapped"),
            (CERT, str(empty), f"--tls-key {empty} is empty; expected its PEM private key")):
        with pytest.raises(UsageError) as info:
            make_server("127.0.0.1", 0, token=TOKEN, tls=(cert, key))
        assert needle in str(info.value) and "PEM lib" not in str(info.value), info.value


def test_an_untrusted_certificate_says_the_agent_was_reached_and_to_set_ca_file() -> None:
    server = make_server("127.0.0.1", 0, token=TOKEN, tls=(CERT, KEY),
                         limits=Limits(max_memory_mb=1024))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_port}"
    try:
        with pytest.raises(AgentError, match=r"was reached, but its TLS certificate is not "
                                             r"trusted .*set \[latency\] ca_file"):
            AgentTimer(url, 1, "all", token=TOKEN, timeout=10).info()
        other = ssl.get_default_verify_paths().cafile
        if other is None:
            pytest.skip("no system CA bundle here to stand for a wrong ca_file")
        with pytest.raises(AgentError, match=re.escape(f"ca_file {other} is not the one that "
                                                       "signed it")):
            AgentTimer(url, 1, "all", token=TOKEN, timeout=10, ca_file=other).info()
    finally:
        server.shutdown()
        server.server_close()

