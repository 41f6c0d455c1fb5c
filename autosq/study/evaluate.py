"""One candidate's measurements: size gate, export, timing, accuracy -> a :class:`TrialRecord`.

Cheap first: size and peak activation memory come from the plan, in pure Python. A candidate
that breaks either budget is recorded with its constraint values and never built, exported or
timed. The search and the comparison both call :meth:`Evaluator.evaluate`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from autosq.arch.config import SqueezeNetConfig
from autosq.arch.cost import cost_of
from autosq.arch.plan import plan
from autosq.arch.space import make_config, split_values
from autosq.measure.host import heavy_work
from autosq.study.records import Budget, TrialRecord

if TYPE_CHECKING:
    from autosq.accuracy import AccuracyEstimator
    from autosq.measure import Timer


def export_model(config: SqueezeNetConfig, precision: str, seed: int) -> bytes:
    """The ONNX model that is timed for a candidate: fp32, or int8 when its precision says so.
    Latency does not depend on the weights' values, so untrained (seeded) weights serve."""
    from autosq.arch.model import build
    from autosq.measure.onnx import export_bytes

    data = export_bytes(build(config, seed=seed), config.input_size)
    if precision == "int8":
        from autosq.measure.quantize import quantize_bytes

        data = quantize_bytes(data, config.input_size)
    return data


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

    def analyse(self, values: dict[str, Any]) -> TrialRecord:
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
        record = TrialRecord(values, config, precision, cost.params, cost.macs, size,
                             cost.peak_mem_mb, constraints)
        record.seconds["analyse"] = time.perf_counter() - t0
        return record

    def evaluate(self, values: dict[str, Any], seed: int = 0,
                 analysed: TrialRecord | None = None) -> TrialRecord:
        """Measure one candidate, cheapest checks first (``analysed``: its :meth:`analyse`,
        when the caller already has it)."""
        c = analysed if analysed is not None else self.analyse(values)
        over = [k for k, v in c.constraints.items() if v > 0]
        if over:
            c.skipped = "over budget before timing: " + ", ".join(over)
            return c
        t1 = time.perf_counter()
        with heavy_work():  # never while another worker times a model on this machine
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
        with heavy_work():
            c.search_accuracy, c.accuracy_details = self.accuracy.score(c.config, seed)
        c.search_accuracy_kind = self.accuracy.kind
        c.seconds["accuracy"] = time.perf_counter() - t3
        return c
