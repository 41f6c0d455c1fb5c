"""Client of the on-device agent (:mod:`autosq.measure.agent_server`): latency kind ``device``.

The timing protocol travels with every request (as query parameters), so the device times
with the same protocol a local timing would use."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict
from urllib.parse import urlencode

from autosq.errors import AgentError
from autosq.measure.protocol import LatencyResult, TimingProtocol


class AgentTimer:
    """Times models on a device through its agent at ``url`` (one request per model)."""

    kind = "device"

    def __init__(self, url: str, threads: int, graph_optimization: str,
                 protocol: TimingProtocol | None = None, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.threads = threads
        self.graph_optimization = graph_optimization
        self.protocol = protocol or TimingProtocol()
        self.timeout = timeout

    def _hint(self) -> str:
        return ("start it on the device with `autosq agent --host 0.0.0.0 --port PORT` and "
                "check the profile's [latency] url")

    def time(self, onnx_bytes: bytes, budget_ms: float | None = None) -> LatencyResult:
        query: dict[str, object] = {"threads": self.threads,
                                    "graph_optimization": self.graph_optimization,
                                    **asdict(self.protocol)}
        if budget_ms is not None:
            query["budget_ms"] = budget_ms
        request = urllib.request.Request(f"{self.url}/time?{urlencode(query)}", data=onnx_bytes,
                                         method="POST",
                                         headers={"Content-Type": "application/octet-stream"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", str(exc))
            except ValueError:
                message = str(exc)
            raise AgentError(f"the agent at {self.url} refused the model: {message}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AgentError(f"cannot reach the agent at {self.url} ({reason}); "
                             f"{self._hint()}") from None
        try:
            if not isinstance(payload, dict):
                raise ValueError("not a JSON object")
            result = LatencyResult.from_dict(payload)
        except ValueError as exc:
            raise AgentError(f"the agent at {self.url} answered something that is not a "
                             f"timing ({exc}; another program on that port, or another autosq "
                             "version?)") from None
        if result.latency_kind != "device":
            raise AgentError(f"the agent at {self.url} answered a {result.latency_kind!r} "
                             "timing; expected one measured on the device")
        return result

    def time_many(self, models: Sequence[bytes]) -> list[LatencyResult]:
        """One after another: the agent serves one timing at a time."""
        return [self.time(m) for m in models]
