"""The on-device agent: an HTTP server that times ONNX models where it runs.

Run it on the target (it needs only Python, numpy, onnxruntime and this package):
``AUTOSQ_AGENT_TOKEN=... autosq agent --host 0.0.0.0``. A profile with ``[latency] source =
"agent"`` and ``url = "http://DEVICE:8765"`` then gets latency kind ``device``.

Endpoints (every one needs ``Authorization: Bearer TOKEN`` when the agent has a token):

- ``GET /info``: the device's facts (:func:`autosq.measure.host.device_facts`);
- ``POST /time?threads=N&graph_optimization=all&budget_ms=X&...``: the ONNX file as the body,
  the whole timing protocol as query parameters; a JSON :class:`LatencyResult`;
- ``POST /time-batch?sizes=N1,N2,...&...``: several ONNX files, concatenated, timed together,
  interleaved; ``{"results": [...]}``.

Bad requests get ``{"error": ...}`` with 400 (401 for the token, 404, 413 for a body too large).

Requests are served on threads with socket timeouts, so an idle or slow client never blocks
another; timings run one at a time, in arrival order (two at once corrupt each other), each in
the contained timing process (:mod:`autosq.measure.contained`). Results are cached by model hash,
protocol and device fingerprint; ``fresh=1`` times again.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from autosq._io import cache_dir, read_json_cache, write_json
from autosq.errors import AutosqError, UsageError
from autosq.measure.agent_gate import (
    HEADER_SECONDS,
    MAX_CONNECTIONS,
    PER_CLIENT,
    Gate,
    quick_answer,
)
from autosq.measure.agent_request import (
    BadRequest,
    TimingRequest,
    batch_sizes,
    check_token,
    split_batch,
)
from autosq.measure.contained import TimingProcess
from autosq.measure.host import device_facts, fingerprint
from autosq.measure.limits import MIB, Limits
from autosq.measure.protocol import LatencyResult

SOCKET_TIMEOUT = 30.0  # seconds a client may stay silent while sending its request
DRAIN_BYTES = 1 << 20  # a refused body up to this size is read, so the client sees the answer
DRAIN_SECONDS = 2.0  # ... within this long, from a client without the token


class AgentServer(ThreadingHTTPServer):
    """The agent: threaded HTTP, one FIFO timing queue, a token, a result cache; connections
    admitted by a :class:`~autosq.measure.agent_gate.Gate` (slots, a share per client, a
    deadline for the headers)."""

    daemon_threads = True
    block_on_close = False
    max_connections = MAX_CONNECTIONS  # beyond this, a new connection is answered 503
    per_client = PER_CLIENT  # connections one address may hold at once
    header_seconds = HEADER_SECONDS  # for the request line and headers (and TLS handshake)

    def process_request(self, request: Any, client_address: Any) -> None:
        refused = self.gate.admit(request, client_address[0])
        if refused is not None:
            self.log(f"{client_address[0]} refused: {refused}")
            quick_answer(request, 503, "Service Unavailable", refused)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.gate.release(request, client_address[0])

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        self.log(f"{client_address[0]} connection error: {type(exc).__name__}: {exc}"[:300])

    def __init__(self, address: tuple[str, int], *, token: str | None = None,
                 limits: Limits | None = None, cache: bool = True,
                 log: Callable[[str], None] | None = None) -> None:
        self.token = token
        self.limits = limits or Limits()
        self.cache = cache
        self.log = log or (lambda line: None)
        self.queue = ThreadPoolExecutor(max_workers=1, thread_name_prefix="autosq-timing")
        self.process = TimingProcess(self.limits)
        self.facts = device_facts()
        self.device = fingerprint(self.facts)
        self.gate = Gate(self.max_connections, self.per_client, self.header_seconds)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)  # binds: closes itself when that fails

    def authorized(self, header: str | None) -> bool:
        """Whether the Authorization header carries the token (constant-time comparison)."""
        if self.token is None:
            return True
        given = (header or "").encode()
        return hmac.compare_digest(given, f"Bearer {self.token}".encode())

    def _cached(self, path: Path | None, n: int) -> list[LatencyResult] | None:
        if path is None:
            return None
        cached = read_json_cache(path).get("results")
        if isinstance(cached, list) and len(cached) == n:
            try:
                return [LatencyResult.from_dict(r) for r in cached]
            except (ValueError, TypeError):
                pass  # an unreadable entry is timed again
        return None

    def time(self, request: TimingRequest, models: list[bytes],
             abandoned: Callable[[], bool] | None = None) -> tuple[list[LatencyResult], str]:
        """Time ``models`` (queued behind earlier timings), or answer from the cache.
        ``abandoned()`` says the client went away: its timing is dropped or stopped."""
        path = cache_dir("agent") / f"{request.key(models, self.device)}.json" \
            if self.cache else None
        if not request.fresh and (hit := self._cached(path, len(models))) is not None:
            return hit, "hit"
        return self.queue.submit(self._time, request, models, path, abandoned).result()

    def _time(self, request: TimingRequest, models: list[bytes], path: Path | None,
              abandoned: Callable[[], bool] | None) -> tuple[list[LatencyResult], str]:
        from autosq.measure.local import LocalTimer

        # Identical requests that queued together: the first one timed, the rest read it.
        if not request.fresh and (hit := self._cached(path, len(models))) is not None:
            return hit, "hit"
        if abandoned is not None and abandoned():
            raise AutosqError("the client went away before its turn")
        timer = LocalTimer(request.threads, graph_optimization=request.graph_optimization,
                           protocol=request.protocol, limits=self.limits,
                           input_size=request.input_size, process=self.process)
        timer.abandoned = abandoned
        results = [timer.time(models[0], request.budget_ms)] if len(models) == 1 \
            else timer.time_many(models)
        if path is not None:
            with contextlib.suppress(OSError):  # the cache only saves time
                write_json(path, {"results": [r.to_dict() for r in results]})
        return results, "miss"

    def server_close(self) -> None:
        super().server_close()
        self.gate.close()
        self.queue.shutdown(wait=False, cancel_futures=True)
        self.process.stop()


class _Handler(BaseHTTPRequestHandler):
    server_version = "autosq-agent"
    protocol_version = "HTTP/1.0"
    timeout = SOCKET_TIMEOUT
    server: AgentServer
    _read_body = False
    _authorized = False

    def _send(self, code: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if code == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="autosq-agent"')
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client went away: nobody to answer
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """Errors the HTTP layer finds (bad request line, unknown method, headers too long)
        are answered in JSON too."""
        self.close_connection = True
        self.request_version = "HTTP/1.0"  # a status line and headers, whatever was sent
        self._send(code, {"error": message or explain or f"HTTP {code}"})
        self.server.log(f"{self.client_address[0]} {code} {message or ''}"[:200])

    def parse_request(self) -> bool:
        ok = super().parse_request()
        self.server.gate.headers_in(self.connection)  # the header deadline is met
        return ok

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the agent logs one line per request itself

    def _line(self, what: str, outcome: str, t0: float) -> None:
        self.server.log(f"{self.client_address[0]} {self.command} {what} {outcome} "
                        f"{time.perf_counter() - t0:.2f}s")

    def _check_auth(self) -> None:
        if not self.server.authorized(self.headers.get("Authorization")):
            raise BadRequest(401, "missing or wrong token: send 'Authorization: Bearer TOKEN' "
                                  "with the agent's AUTOSQ_AGENT_TOKEN")
        self._authorized = True

    def _gone(self) -> bool:
        """Whether the client closed its connection (it waits for the answer otherwise)."""
        import select

        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            # Readable while it waits: either its close (no data) or stray bytes.
            return not socket.socket.recv(self.connection, 1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True

    def do_GET(self) -> None:
        t0 = time.perf_counter()
        try:
            self._check_auth()
            if urlparse(self.path).path != "/info":
                raise BadRequest(404, f"no such endpoint {urlparse(self.path).path}; try GET "
                                      "/info")
            self._send(200, {**self.server.facts, **device_facts()})
            self._line("/info", "200", t0)
        except BadRequest as exc:
            self._send(exc.status, {"error": str(exc)})
            self._line(self.path[:60], f"{exc.status} {exc}", t0)

    def _length(self) -> int:
        given = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if len(given) > 1:  # which one the body follows is anyone's guess: refuse both
            raise BadRequest(400, "conflicting Content-Length headers; send exactly one")
        text = self.headers.get("Content-Length", "")
        if self.headers.get("Transfer-Encoding") or not (text.isascii() and text.isdigit()):
            raise BadRequest(411, "send the ONNX file as the body, with a Content-Length (no "
                                  "chunked encoding)")
        return int(text)

    def _body(self, sizes: list[int] | None) -> bytes:
        """The body, its length checked before anything is read: one model at most
        --max-model-mb, a batch at most that in all."""
        length = self._length()
        limit = int(self.server.limits.max_model_mb * MIB)
        if length <= 0:
            raise BadRequest(400, "the body is empty; send the ONNX file as the body")
        if length > limit:
            raise BadRequest(413, f"the body is {length / MIB:.1f} MB, over the agent's limit "
                                  f"of {self.server.limits.max_model_mb:g} MB a request")
        if sizes is not None and sum(sizes) != length:
            raise BadRequest(400, f"sizes add up to {sum(sizes)} bytes but the body has "
                                  f"{length}")
        self._read_body = True
        data = self.rfile.read(length)
        if len(data) < length:
            raise BadRequest(400, f"the body ended after {len(data)} of {length} bytes")
        return data

    def _drain(self) -> None:
        """Read a refused body, so that the client, still sending it, gets the answer rather
        than a broken pipe: up to --max-model-mb from a client with the token, a small one
        from others, and that within DRAIN_SECONDS (a client without the token cannot hold a
        slot by trickling a body); a larger one is not read: the connection is closed."""
        try:
            length = self._length()
        except BadRequest:
            return
        limit = self.server.limits.max_model_mb * MIB if self._authorized else DRAIN_BYTES
        if not 0 < length <= limit:
            self.close_connection = True
            return
        deadline = None if self._authorized else time.monotonic() + DRAIN_SECONDS
        with contextlib.suppress(OSError):
            while length > 0:
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self.close_connection = True
                        return
                    self.connection.settimeout(left)
                if not (chunk := self.rfile.read1(min(length, 1 << 20))):
                    return
                length -= len(chunk)

    def do_POST(self) -> None:
        t0 = time.perf_counter()
        self._read_body = self._authorized = False
        url = urlparse(self.path)
        what = url.path
        try:
            self._check_auth()
            if url.path not in ("/time", "/time-batch"):
                raise BadRequest(404, f"no such endpoint {url.path}; try POST /time")
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            try:
                request = TimingRequest(query)
            except UsageError as exc:  # a protocol the dataclass refuses
                raise BadRequest(400, str(exc)) from None
            sizes = batch_sizes(query.get("sizes")) if url.path == "/time-batch" else None
            body = self._body(sizes)
            models = [body] if sizes is None else split_batch(body, sizes)
            what = ",".join(hashlib.sha256(m).hexdigest()[:12] for m in models)
            try:
                results, cache = self.server.time(request, models, self._gone)
            except AutosqError as exc:
                raise BadRequest(400, " ".join(str(exc).split())) from None
            except CancelledError:
                raise BadRequest(503, "the agent is shutting down") from None
            payloads = []
            for r in results:
                p = r.to_dict()
                p["latency_kind"] = "device"
                p["protocol"] = {**p["protocol"], "device": self.server.facts, "cache": cache}
                payloads.append(p)
            self._send(200, payloads[0] if url.path == "/time" else {"results": payloads})
            shown = " ".join(f"{r.latency_ms:.4g}ms" for r in results)
            self._line(what, f"200 {shown} (cache {cache})", t0)
        except BadRequest as exc:
            if not self._read_body:
                self._drain()
            self._send(exc.status, {"error": str(exc)})
            self._line(what, f"{exc.status} {exc}", t0)
        except TimeoutError:
            self._line(what, "client too slow: closed", t0)


def make_server(host: str = "127.0.0.1", port: int = 8765, *, token: str | None = None,
                limits: Limits | None = None, cache: bool = True,
                tls: tuple[str, str] | None = None,
                log: Callable[[str], None] | None = None) -> AgentServer:
    """The agent's server (not started); ``port=0`` picks a free port. Without a token it only
    listens on a loopback address; ``tls`` is (certificate file, key file)."""
    import ipaddress
    import socket

    if token is not None:
        check_token(token)
    if not host:
        raise UsageError("the address to listen on is empty; use 127.0.0.1 (this machine) or "
                         "0.0.0.0 (every interface, with a token)")
    if cache:
        cache_dir("agent")  # an unusable cache folder is refused now, not at the first request
    cache_dir()  # the timing lock lives there
    if token is None:
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, port)}
        except (socket.gaierror, UnicodeError) as exc:
            raise UsageError(f"cannot listen on {host}: {exc}") from None
        if not all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses):
            raise UsageError(
                f"listening on {host} without a token would let anyone on the network run "
                "models on this device; set AUTOSQ_AGENT_TOKEN (both here and where the "
                "search runs), or listen on 127.0.0.1")
    server = AgentServer((host, port), token=token, limits=limits, cache=cache, log=log)
    if tls is not None:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(*tls)
        except (OSError, ssl.SSLError) as exc:
            server.server_close()
            from autosq.measure.agent_tls import tls_problem

            raise UsageError(tls_problem(tls[0], tls[1], exc)) from None
        # The handshake happens on the request's own thread (with its timeout), so a client
        # that connects and says nothing cannot block accept().
        server.socket = context.wrap_socket(server.socket, server_side=True,
                                            do_handshake_on_connect=False)
    return server
