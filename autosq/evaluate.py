"""One candidate's measurements: size gate, export, timing, accuracy -> a record.

Cheap first: size and peak activation memory come from the plan, in pure Python. A candidate
that breaks either budget is recorded with its constraint values and never built, exported or
timed. The search and the comparison both call :meth:`Evaluator.evaluate`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from autosq.arch import SqueezeNetConfig, plan
from autosq.cost import cost_of
from autosq.space import make_config, split_values

if TYPE_CHECKING:
    from autosq.latency import LatencyResult, Timer

# Objective values recorded for a candidate that was never measured (skipped by the gate or
# over the latency budget). Optuna needs numbers; these are never shown, and such a trial is
# infeasible, so it is never on a front.
UNMEASURED_LATENCY_MS = 1e6
UNMEASURED_ACCURACY = 0.0


@dataclass(frozen=True)
class Budget:
    """What must fit: size in MiB at the candidate's precision, latency, peak activations."""

    max_mb: float
    max_ms: float | None = None
    max_ram_mb: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {"max_mb": self.max_mb, "max_ms": self.max_ms, "max_ram_mb": self.max_ram_mb}


def export_model(config: SqueezeNetConfig, precision: str, seed: int) -> bytes:
    """The ONNX model that is timed for a candidate: fp32, or int8 when its precision says so.
    Latency does not depend on the weights' values, so untrained (seeded) weights serve."""
    from autosq.model import build
    from autosq.onnx_io import export_bytes

    data = export_bytes(build(config, seed=seed), config.input_size)
    if precision == "int8":
        from autosq.quantize import quantize_bytes

        data = quantize_bytes(data, config.input_size)
    return data


class AccuracyEstimator(Protocol):
    """Gives a candidate its accuracy objective: a proxy score, or validation top-1."""

    kind: str
    expensive: bool

    def score(self, config: SqueezeNetConfig, seed: int) -> tuple[float, dict[str, Any]]:
        """(accuracy, details) of a configuration."""
        ...


@dataclass
class Candidate:
    """Everything measured about one configuration."""

    values: dict[str, Any]
    config: SqueezeNetConfig
    precision: str
    params: int
    macs: int
    size_mb: float
    peak_mem_mb: float
    constraints: dict[str, float]
    latency: LatencyResult | None = None
    accuracy: float | None = None
    accuracy_kind: str | None = None
    accuracy_details: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return self.skipped is None and all(v <= 0 for v in self.constraints.values())

    @property
    def objectives(self) -> tuple[float, float, float]:
        """(accuracy, latency_ms, size_mb) as Optuna records them."""
        acc = UNMEASURED_ACCURACY if self.accuracy is None else self.accuracy
        lat = UNMEASURED_LATENCY_MS if self.latency is None else self.latency.latency_ms
        return acc, lat, self.size_mb

    def to_attrs(self) -> dict[str, Any]:
        """A JSON-ready record, stored with the trial."""
        return {
            "values": self.values,
            "config": self.config.to_dict(),
            "arch_id": self.config.arch_id,
            "precision": self.precision,
            "params": self.params,
            "macs": self.macs,
            "size_mb": self.size_mb,
            "peak_mem_mb": self.peak_mem_mb,
            "constraints": self.constraints,
            "latency": None if self.latency is None else self.latency.to_dict(),
            "accuracy": self.accuracy,
            "accuracy_kind": self.accuracy_kind,
            "accuracy_details": self.accuracy_details,
            "skipped": self.skipped,
            "seconds": self.seconds,
        }


class Evaluator:
    """Measures candidates for one device, budget, input size and accuracy source."""

    def __init__(
        self,
        timer: Timer,
        budget: Budget,
        accuracy: AccuracyEstimator,
        input_size: int,
        num_classes: int,
    ) -> None:
        self.timer = timer
        self.budget = budget
        self.accuracy = accuracy
        self.input_size = input_size
        self.num_classes = num_classes

    def analyse(self, values: dict[str, Any]) -> Candidate:
        """The analytic part: config, plan, cost and the size and memory constraints."""
        t0 = time.perf_counter()
        config = make_config(values, self.input_size, self.num_classes)
        _, precision = split_values(values)
        cost = cost_of(plan(config))
        size = cost.size_mb(precision)
        constraints = {"size_mb": size - self.budget.max_mb}
        if self.budget.max_ram_mb is not None:
            constraints["peak_mem_mb"] = cost.peak_mem_mb - self.budget.max_ram_mb
        if self.budget.max_ms is not None:
            # Unknown until timed; samplers want the same constraint names on every trial, and
            # a skipped candidate is infeasible through its size or memory anyway.
            constraints["latency_ms"] = 0.0
        c = Candidate(values, config, precision, cost.params, cost.macs, size,
                      cost.peak_mem_mb, constraints)
        c.seconds["analyse"] = time.perf_counter() - t0
        return c

    def evaluate(self, values: dict[str, Any], seed: int = 0,
                 analysed: Candidate | None = None) -> Candidate:
        """Measure one candidate, cheapest checks first (``analysed``: its :meth:`analyse`,
        when the caller already has it)."""
        c = analysed if analysed is not None else self.analyse(values)
        over = [k for k, v in c.constraints.items() if v > 0]
        if over:
            c.skipped = "over budget before timing: " + ", ".join(over)
            return c
        t1 = time.perf_counter()
        data = export_model(c.config, c.precision, seed)
        t2 = time.perf_counter()
        c.seconds["export"] = t2 - t1
        c.latency = self.timer.time(data, self.budget.max_ms)
        t3 = time.perf_counter()
        c.seconds["timing"] = t3 - t2
        c.seconds["timing_runs"] = c.latency.run_seconds
        if self.budget.max_ms is not None:
            c.constraints["latency_ms"] = c.latency.latency_ms - self.budget.max_ms
        if c.constraints.get("latency_ms", 0.0) > 0 and self.accuracy.expensive:
            c.skipped = "over the latency budget: accuracy not estimated"
            return c
        c.accuracy, c.accuracy_details = self.accuracy.score(c.config, seed)
        c.accuracy_kind = self.accuracy.kind
        c.seconds["accuracy"] = time.perf_counter() - t3
        return c
