"""Client of the on-device agent (latency kind ``device``). Not available yet."""

from __future__ import annotations

from collections.abc import Sequence

from autosq.errors import AgentError
from autosq.latency import LatencyResult, TimingProtocol


class AgentTimer:
    """Times models on a device through its agent at ``url``."""

    kind = "device"

    def __init__(
        self,
        url: str,
        threads: int,
        graph_optimization: str,
        protocol: TimingProtocol | None = None,
    ) -> None:
        self.url = url
        self.threads = threads

    def time(self, onnx_bytes: bytes, budget_ms: float | None = None) -> LatencyResult:
        raise AgentError(f"timing through an agent ({self.url}) is not implemented yet")

    def time_many(self, models: Sequence[bytes]) -> list[LatencyResult]:
        return [self.time(m) for m in models]
