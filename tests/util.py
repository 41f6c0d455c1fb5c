"""Helpers shared by the tests (imported as ``from util import ...``)."""

from __future__ import annotations

from autosq.measure.protocol import TimingProtocol

# A timing protocol for tests: real ONNX Runtime runs, but few and short, so a tiny model
# times in tens of milliseconds. The default protocol is measured by bench/, not here.
FAST = TimingProtocol(warmup_runs=2, warmup_seconds=0.0, block_runs=3, block_seconds=0.005,
                      min_blocks=2, target_gap=0.5, max_seconds=0.3)
