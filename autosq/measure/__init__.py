"""How fast a candidate runs: device profiles, ONNX export, the timing protocol, and the
timers that apply it here (``measured``), scaled from here (``estimated``) or on the device
through its agent (``device``). :func:`timer_for` picks the one a profile asks for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from autosq.measure.limits import Limits
    from autosq.measure.profiles import DeviceProfile
    from autosq.measure.protocol import LatencyResult, TimingProtocol


class Timer(Protocol):
    """Anything that times an ONNX model: here, scaled from here, or on a device."""

    kind: str
    threads: int

    def time(self, onnx_bytes: bytes, budget_ms: float | None = None) -> LatencyResult: ...

    def time_many(self, models: Sequence[bytes]) -> list[LatencyResult]: ...

    def with_protocol(self, protocol: TimingProtocol) -> Timer: ...


def timer_for(profile: DeviceProfile, protocol: TimingProtocol | None = None,
              limits: Limits | None = None, fresh: bool = False) -> Timer:
    """The timer a profile asks for: measured here, estimated from here, or its agent.
    ``limits`` bound local timings (the agent applies its own); ``fresh`` asks the agent to
    time again rather than answer from its cache."""
    from autosq.measure.estimated import ESTIMATE_HOST_THREADS, EstimatedTimer
    from autosq.measure.local import LocalTimer

    if profile.latency_source == "measured":
        from autosq.measure.profiles import check_local_threads

        check_local_threads(profile)
        return LocalTimer(profile.threads, profile.provider, profile.graph_optimization, protocol,
                          limits=limits, input_size=profile.input_size)
    if profile.latency_source == "estimated":
        assert profile.calibration is not None
        return EstimatedTimer(
            profile.calibration,
            LocalTimer(ESTIMATE_HOST_THREADS, "CPUExecutionProvider", profile.graph_optimization,
                       protocol, limits=limits, input_size=profile.input_size),
        )
    from autosq.measure.agent_client import AgentTimer

    assert profile.agent_url is not None
    return AgentTimer(profile.agent_url, profile.threads, profile.graph_optimization, protocol,
                      token_env=profile.agent_token_env, ca_file=profile.agent_ca_file,
                      input_size=profile.input_size, fresh=fresh)

