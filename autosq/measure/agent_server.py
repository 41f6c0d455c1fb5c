"""The on-device agent: a small HTTP server that times ONNX models where it runs.

Run it on the target (it needs only Python, numpy, onnxruntime and this module's package):
``autosq agent --host 0.0.0.0 --port 8765``. Then a profile with ``[latency] source = "agent"``
and ``url = "http://DEVICE:8765"`` gets latency kind ``device``. It uses the same timing
protocol as local timing (:class:`autosq.measure.local.LocalTimer`), with the device's own threads.

Endpoints: ``GET /info`` (what the device is) and ``POST /time?threads=N&graph_optimization=
all&budget_ms=X`` with the ONNX file as the body (JSON result, or ``{"error": ...}`` with 400).
It serves one request at a time, since two timings at once corrupt each other. Only run it on
a network you trust: it runs whatever model it is sent.
"""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import fields
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from autosq.errors import AutosqError
from autosq.measure.protocol import TimingProtocol

MAX_BODY = 512 * 1024 * 1024


def info() -> dict[str, Any]:
    """What this device is: reported by ``GET /info`` and recorded with its timings."""
    import onnxruntime as ort

    from autosq import __version__
    from autosq.measure.host import cpu_model

    return {"agent": "autosq", "version": __version__, "onnxruntime": ort.__version__,
            "cpu": cpu_model(), "machine": platform.machine(), "cores": os.cpu_count(),
            "host": platform.node()}


def protocol_from_query(query: dict[str, str]) -> TimingProtocol:
    """The timing protocol a client sent as query parameters (defaults for those left out)."""
    values: dict[str, Any] = {}
    for f in fields(TimingProtocol):
        if f.name not in query:
            continue
        text = query[f.name]
        try:
            value: float = int(text) if f.type in ("int", int) else float(text)
        except ValueError:
            raise ValueError(f"protocol field {f.name} must be a number; got {text!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"protocol field {f.name} must be a finite number >= 0; got {text}")
        values[f.name] = value
    return TimingProtocol(**values)


class _Handler(BaseHTTPRequestHandler):
    server_version = "autosq-agent"

    def _send(self, code: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the CLI prints one line per request itself

    def do_GET(self) -> None:
        if urlparse(self.path).path == "/info":
            self._send(200, info())
        else:
            self._send(404, {"error": f"no such endpoint {self.path}; try GET /info"})

    def do_POST(self) -> None:
        from autosq.measure.local import LocalTimer

        url = urlparse(self.path)
        if url.path != "/time":
            self._send(404, {"error": f"no such endpoint {url.path}; try POST /time"})
            return
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            length = int(self.headers.get("Content-Length", "0"))
            if not 0 < length <= MAX_BODY:
                raise ValueError(f"the body must be an ONNX file of 1 byte to {MAX_BODY} bytes; "
                                 f"got {length}")
            data = self.rfile.read(length)
            threads = int(query.get("threads", "1"))
            budget = float(query["budget_ms"]) if "budget_ms" in query else None
            timer = LocalTimer(threads=threads,
                               graph_optimization=query.get("graph_optimization", "all"),
                               protocol=protocol_from_query(query))
            result = timer.time(data, budget)
        except (ValueError, KeyError, AutosqError) as exc:
            self._send(400, {"error": str(exc)})
            return
        payload = result.to_dict()
        payload["latency_kind"] = "device"
        payload["protocol"]["device"] = info()
        self._send(200, payload)


def make_server(host: str = "127.0.0.1", port: int = 8765) -> HTTPServer:
    """The agent's HTTP server (not started); ``port=0`` picks a free port."""
    return HTTPServer((host, port), _Handler)
