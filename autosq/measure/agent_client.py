"""Client of the on-device agent (:mod:`autosq.measure.agent_server`): latency kind ``device``.

The whole timing protocol travels with every request (as query parameters), with the token
(``Authorization: Bearer``) when one is set. Answers are checked: a result must be a timing
measured on the device, with finite, positive latencies."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

from autosq.errors import AgentError
from autosq.measure.protocol import AGENT_MAX_BATCH, LatencyResult, TimingProtocol

TOKEN_ENV = "AUTOSQ_AGENT_TOKEN"
BATCH_BYTES = 64 * 1024 * 1024


def check_result(payload: Any, url: str) -> LatencyResult:
    """A timing the agent answered, checked; AgentError naming the agent when it is not one."""
    try:
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object")
        result = LatencyResult.from_dict(payload)
        for name in ("latency_ms", "p90_ms", "min_ms", "mean_ms"):
            value = getattr(result, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} is {value!r}, not a finite positive number")
        if not isinstance(result.runs, int) or result.runs < 1:
            raise ValueError(f"runs is {result.runs!r}")
    except (ValueError, TypeError) as exc:
        raise AgentError(f"the agent at {url} answered something that is not a timing ({exc}); "
                         "another program on that port, or another autosq version?") from None
    if result.latency_kind != "device":
        raise AgentError(f"the agent at {url} answered a {result.latency_kind!r} timing; "
                         "expected one measured on the device")
    return result


BUSY_RETRIES = 5  # a busy agent (503) is asked again, 0.2 s later, then 0.4 s, ... (6 s)


class _Busy(Exception):
    """The agent answered 503: all its slots were taken at that moment."""


class AgentTimer:
    """Times models on a device through its agent at ``url``."""

    kind = "device"

    def __init__(self, url: str, threads: int, graph_optimization: str,
                 protocol: TimingProtocol | None = None, timeout: float = 600.0, *,
                 token: str | None = None, token_env: str = TOKEN_ENV,
                 ca_file: str | None = None, input_size: int | None = None,
                 fresh: bool = False) -> None:
        self.url = url.rstrip("/")
        self.threads = threads
        self.graph_optimization = graph_optimization
        self.protocol = protocol or TimingProtocol()
        self.timeout = timeout
        self.token_env = token_env
        self.token = token if token is not None else os.environ.get(token_env) or None
        if self.token is not None and not (self.token.isascii() and self.token.isprintable()):
            raise AgentError(f"{token_env} must be printable ASCII (it travels in an HTTP "
                             "header)")
        self.input_size = input_size
        self.fresh = fresh
        self._asked: set[bytes] = set()
        self._checked = False
        self._context = None
        self.ca_file = ca_file
        if ca_file is not None:
            try:
                self._context = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise AgentError(f"cannot use the CA file {ca_file} for the agent at {url}: "
                                 f"{exc}") from None

    def with_protocol(self, protocol: TimingProtocol) -> AgentTimer:
        """This timer with another protocol (sent with every request)."""
        other = copy.copy(self)
        other.protocol = protocol
        other._asked = set()
        return other

    def _hint(self) -> str:
        return ("start it on the device with `autosq agent --host 0.0.0.0` (and "
                f"{TOKEN_ENV} set) and check the profile's [latency] url")

    def info(self) -> dict[str, Any]:
        """The device's facts (``GET /info``)."""
        facts = self._request(urllib.request.Request(f"{self.url}/info",
                                                     headers=self._headers()))
        if not isinstance(facts, dict) or facts.get("agent") != "autosq":
            raise AgentError(f"the agent at {self.url} answered /info with something that is "
                             "not an autosq agent's facts")
        return facts

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/octet-stream"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _post(self, path: str, query: dict[str, object], body: bytes) -> Any:
        if not self._checked:
            # Once: the token and the agent are checked with a small request, since the agent
            # refuses a model from a client without the token before reading it.
            self.info()
            self._checked = True
        return self._request(urllib.request.Request(f"{self.url}{path}?{urlencode(query)}",
                                                    data=body, method="POST",
                                                    headers=self._headers()))

    def _request(self, request: urllib.request.Request) -> Any:
        for attempt in range(BUSY_RETRIES + 1):
            try:
                return self._request_once(request)
            except _Busy as busy:
                if attempt == BUSY_RETRIES:
                    raise AgentError(str(busy)) from None
                time.sleep(0.2 * 2 ** attempt)  # it answers 503 while its slots are full
        raise AssertionError("unreachable")

    def _request_once(self, request: urllib.request.Request) -> Any:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout,
                                        context=self._context) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", str(exc))
            except (ValueError, AttributeError, OSError):
                message = f"HTTP {exc.code} {exc.reason}"
            if exc.code == 401:
                where = (f"set {self.token_env} to the agent's token" if not self.token
                         else f"{self.token_env} is not the agent's token")
                raise AgentError(f"the agent at {self.url} refused the request: {message} "
                                 f"({where})") from None
            if exc.code in (503, 408):
                raise _Busy(f"the agent at {self.url} is busy: {message}; try again "
                            "later") from None
            raise AgentError(f"the agent at {self.url} refused the model: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLCertVerificationError):
                fix = (f"the profile's [latency] ca_file {self.ca_file} is not the one that "
                       "signed it" if self.ca_file else "set [latency] ca_file in the profile")
                raise AgentError(
                    f"the agent at {self.url} was reached, but its TLS certificate is not "
                    f"trusted ({reason.verify_message or reason}): {fix} (a PEM file of the "
                    "CA that signed the agent's certificate, or of that certificate if it is "
                    "self-signed)") from None
            raise AgentError(f"cannot reach the agent at {self.url} ({reason}); "
                             f"{self._hint()}") from None
        try:
            return json.loads(raw)
        except ValueError:
            start = raw[:40].decode("utf-8", "replace").strip()
            raise AgentError(f"the agent at {self.url} answered something that is not JSON "
                             f"({start!r}...); another program on that port?") from None

    def _query(self) -> dict[str, object]:
        query: dict[str, object] = {"threads": self.threads,
                                    "graph_optimization": self.graph_optimization,
                                    **asdict(self.protocol)}
        if self.input_size is not None:
            query["input_size"] = self.input_size
        if self.fresh:
            query["fresh"] = 1
        return query

    def time(self, onnx_bytes: bytes, budget_ms: float | None = None) -> LatencyResult:
        """Time one model on the device. A model this timer has asked for before is timed
        again, not answered from the agent's cache: a caller that repeats itself (the
        search's second look at a suspiciously slow timing) wants a new timing."""
        query = self._query()
        digest = hashlib.sha256(onnx_bytes).digest()
        if digest in self._asked:
            query["fresh"] = 1
        self._asked.add(digest)  # 32 bytes a model: a 1000-trial search holds 32 kB
        if budget_ms is not None:
            query["budget_ms"] = budget_ms
        return check_result(self._post("/time", query, onnx_bytes), self.url)

    def time_many(self, models: Sequence[bytes]) -> list[LatencyResult]:
        """Time several models together on the device, interleaved, in one request (or one
        per AGENT_MAX_BATCH models)."""
        if not models:
            return []
        # Requests of at most AGENT_MAX_BATCH models and BATCH_BYTES (the agent reads a
        # request whole into memory, within its --max-model-mb).
        n, total = 0, 0
        while n < min(len(models), AGENT_MAX_BATCH) and (
                n == 0 or total + len(models[n]) <= BATCH_BYTES):
            total += len(models[n])
            n += 1
        if n < len(models):
            return self.time_many(models[:n]) + self.time_many(models[n:])
        query = {**self._query(), "sizes": ",".join(str(len(m)) for m in models)}
        payload = self._post("/time-batch", query, b"".join(models))
        results = payload.get("results") if isinstance(payload, dict) else None
        if not isinstance(results, list) or len(results) != len(models):
            raise AgentError(f"the agent at {self.url} answered a batch without one result per "
                             "model; another autosq version?")
        return [check_result(r, self.url) for r in results]
