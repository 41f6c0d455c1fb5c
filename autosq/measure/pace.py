"""The machine's pace during a search, read from a small fixed reference model.

A shared machine has slow spells that last seconds to tens of seconds and slow every run alike
(5-30% on this project's 2-vCPU VM, measured with ``bench/peer_bench.py``), longer than any
brief timing can see from inside. A screen (:meth:`~autosq.measure.protocol.TimingProtocol.
screen`) with ``pace_runs`` above 0 therefore first times a fixed reference model for that many
runs in the same process; :class:`Pace` keeps those readings and gives the factor by which the
machine is slower now than its typical speed in this timing process: the median of the last
:data:`WINDOW` readings over the median of all so far. The screen divides its figures by that
factor and records it (``LatencyResult.pace``), so a candidate screened in a slow spell is not
ranked behind its twins screened outside one.

Measured while building it (this VM, 2026-12-04; 2,610 screens of two SqueezeNets alternating
with readings over 240 s): 10-s medians of the screens and of the reference moved together
(within 2-3%); dividing by the factor brought the screens' spread (sd of log latency) from
0.055 to 0.041 and 0.047 to 0.036. A single reading is noisier than a screen (sd 0.073), hence
the median of a window; the level is causal (readings before the screen only).

This module is pure computation; the reference model's graph is written by
:func:`reference_model` (numpy and onnx, no torch).
"""

from __future__ import annotations

import statistics
from collections import deque

WINDOW = 15  # readings in the current level: 2-3 s of a search's screens
HISTORY = 4096  # readings kept for the typical speed (a search's last few thousand screens)


class Pace:
    """Readings of the reference model (ms) and the slow-down they show."""

    def __init__(self, window: int = WINDOW, history: int = HISTORY) -> None:
        if window < 1 or history < window:
            raise ValueError(f"window must be >= 1 and history >= window; got window={window}, "
                             f"history={history}")
        self.window = window
        self._readings: deque[float] = deque(maxlen=history)

    def add(self, ms: float) -> None:
        """One reading: the median of the reference's runs just before a screen."""
        if not ms > 0:
            raise ValueError(f"ms must be > 0; got {ms!r}")
        self._readings.append(ms)

    @property
    def readings(self) -> int:
        return len(self._readings)

    def factor(self) -> float:
        """How much slower the machine runs now than typically in this process (1.0 until a
        whole window of readings is in)."""
        if len(self._readings) < self.window:
            return 1.0
        recent = list(self._readings)[-self.window:]
        return statistics.median(recent) / statistics.median(self._readings)


def reference_model() -> bytes:
    """The reference's ONNX graph: a SqueezeNet v1.1 with base_e 64, incr_e 32, 10 classes at
    128 px, fixed weights (about 0.34 ms a run, one thread, on this project's VM): the same
    operators as every candidate, small enough that a reading costs a few ms."""
    from autosq.arch.plan import plan
    from autosq.arch.presets import preset
    from autosq.measure.graph import onnx_from_plan

    return onnx_from_plan(plan(preset("squeezenet1_1", base_e=64, incr_e=32, num_classes=10,
                                      input_size=128)))


__all__ = ["HISTORY", "WINDOW", "Pace", "reference_model"]
