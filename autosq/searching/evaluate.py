"""One candidate's measurements: size gate, export, timing, accuracy -> a :class:`TrialRecord`.

Cheap first: size and peak activation memory come from the plan, in pure Python. A candidate
that breaks either budget is recorded with its constraint values and never built, exported or
timed. The search and the comparison both call :meth:`Evaluator.evaluate`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from autosq.accuracy.proxies import PLAN_PROXIES
from autosq.arch.config import SqueezeNetConfig
from autosq.arch.cost import MIB, cost_of
from autosq.arch.plan import plan
from autosq.arch.space import make_config, split_values
from autosq.compress.estimate import DC_PRECISIONS, compressed_bytes
from autosq.measure.host import heavy_work
from autosq.searching.records import Budget, TrialRecord
from autosq.searching.screening import LatencyScreen, Prediction, predicted_record
from autosq.searching.second_look import MAX_PENDING, SecondLooks

if TYPE_CHECKING:
    from autosq.accuracy import AccuracyEstimator, AccuracySetting
    from autosq.arch.space import SearchSpace
    from autosq.measure import Timer
    from autosq.measure.protocol import LatencyResult


def import_trial_extensions(space: SearchSpace, accuracy: AccuracySetting) -> None:
    """Import before the first trial the compiled extensions a trial would import in its
    middle (onnx, ONNX Runtime's quantizer for int8, torch to train or score): a Ctrl-C or
    SIGTERM raised while one initialises (a call from C++ back into Python) aborts the process
    (onnx's nanobind module, seen in a test run). The caller holds those signals meanwhile."""
    import onnx.helper
    import onnx.numpy_helper  # noqa: F401

    if "int8" in space.precisions:
        import onnxruntime.quantization  # noqa: F401
    if accuracy.kind != "proxy" or accuracy.proxy not in PLAN_PROXIES:
        import torch  # noqa: F401


def export_model(config: SqueezeNetConfig, precision: str, seed: int) -> bytes:
    """The ONNX model that is timed for a candidate: fp32 (also for a compressed precision, which
    runs as the dense network it decodes to), or int8 when its precision says so.
    Latency does not depend on the weights' values, so untrained (seeded) weights serve, and
    the graph is written straight from the plan (no torch)."""
    from autosq.measure.graph import onnx_from_plan

    data = onnx_from_plan(plan(config), seed=seed)
    if precision == "int8":
        import numpy as np

        from autosq.measure.quantize import quantize_bytes

        # One calibration image: scales change values, not the graph that is timed.
        image = np.random.default_rng(seed).standard_normal(
            (1, 3, config.input_size, config.input_size)).astype(np.float32)
        data = quantize_bytes(data, config.input_size, image, preprocess=False)
    return data


def _export(config: SqueezeNetConfig, precision: str, seed: int) -> bytes:
    """:func:`export_model` for a second look, never while another worker times a model."""
    with heavy_work():
        return export_model(config, precision, seed)


class Evaluator:
    """Measures candidates for one device, budget, input size and accuracy source.

    ``timer`` times candidates during the search (a brief screen, by default); ``screen``, when
    given, predicts each candidate's latency first and leaves untimed the ones the prediction
    rules out (:mod:`autosq.searching.screening`); ``timing`` names the timer's protocol in each
    record (``screen`` or ``full``).
    """

    def __init__(
        self,
        timer: Timer,
        budget: Budget,
        accuracy: AccuracyEstimator,
        input_size: int,
        num_classes: int,
        screen: LatencyScreen | None = None,
        timing: str = "full",
    ) -> None:
        self.timer = timer
        self.budget = budget
        self.accuracy = accuracy
        self.input_size = input_size
        self.num_classes = num_classes
        self.screen = screen
        self.timing = timing
        self.looks = SecondLooks()
        # Timed before the predictor's first fit (no bound to check them against yet): checked
        # against the first prediction instead. The first screens of a search are its
        # noisiest (replayed over 15 stored peer-bench rounds: its first 16 carried 2-19% of
        # the rank error against the common clock, 5% of the candidates).
        self._unchecked: list[tuple[TrialRecord, int]] = []

    def second_look(self) -> tuple[int, LatencyResult] | None:
        """Time again the oldest candidate due a second look (:mod:`.second_look`), if any:
        its trial number and the new timing, for the caller to store with its own trial."""
        return self.looks.take(self.timer, self.budget.max_ms)

    def analyse(self, values: dict[str, Any]) -> TrialRecord:
        """The analytic part: config, plan, cost and the size and memory constraints."""
        t0 = time.perf_counter()
        config = make_config(values, self.input_size, self.num_classes)
        _, precision = split_values(values)
        p = plan(config)
        cost = cost_of(p)
        if precision in DC_PRECISIONS:  # predicted container size; exact after compressing
            size = compressed_bytes(p, DC_PRECISIONS[precision]) / MIB
        else:
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

    def promise(self, values: dict[str, Any]) -> tuple[float, float] | None:
        """What a candidate is expected to add to the front before it is timed
        (:meth:`LatencyScreen.promise`: hypervolume, then entry ratio), when its accuracy
        comes from its plan (the ``params`` and ``macs`` proxies) and its latency can be
        predicted; None otherwise, or when it breaks a budget."""
        setting = self.accuracy.describe()
        if self.screen is None or setting.kind != "proxy" or setting.proxy not in PLAN_PROXIES:
            return None
        c = self.analyse(values)
        if not c.feasible:
            return None
        prediction = self.screen.predict(c)
        if prediction is None:
            return None
        # Read from the plan: no weights, no seed, and no heavy_work() lock to wait for.
        c.search_accuracy, _ = self.accuracy.score(c.config, 0)
        return self.screen.promise(c, prediction)

    def evaluate(self, values: dict[str, Any], seed: int = 0,
                 analysed: TrialRecord | None = None) -> TrialRecord:
        """Measure one candidate, cheapest checks first (``analysed``: its :meth:`analyse`,
        when the caller already has it): size and memory, then (for a cheap accuracy source)
        accuracy, then the predicted latency, and only then export and timing."""
        c = analysed if analysed is not None else self.analyse(values)
        over = [k for k, v in c.constraints.items() if v > 0]
        if over:
            c.skipped = "over budget before timing: " + ", ".join(over)
            return c
        if not self.accuracy.expensive:
            self._score(c, seed)
        prediction = self.screen.predict(c) if self.screen is not None else None
        if prediction is not None:
            assert self.screen is not None
            why = self.screen.skip_reason(c, prediction)
            if why is not None:
                c = predicted_record(c, prediction, self.timer.threads, self.budget)
                c.timing, c.untimed_reason = "predicted", why
                if c.search_accuracy is None:
                    c.skipped = f"{why}: not timed, accuracy not estimated"
                return c
        t1 = time.perf_counter()
        with heavy_work():  # never while another worker times a model on this machine
            data = export_model(c.config, c.precision, seed)
        t2 = time.perf_counter()
        c.seconds["export"] = t2 - t1
        c.latency = self.timer.time(data, self.budget.max_ms)
        # Far slower than predicted, or timed while the machine was busy: looked at again later.
        self._note(c, seed, prediction)
        if prediction is None and self.screen is not None and self.screen.enabled:
            if not c.latency.contended and len(self._unchecked) < MAX_PENDING:
                self._unchecked.append((c, seed))  # (a contended one was just noted)
        elif prediction is not None and self._unchecked:
            assert self.screen is not None
            for earlier, earlier_seed in self._unchecked:
                self._note(earlier, earlier_seed, self.screen.predict(earlier))
            self._unchecked = []
        c.timing = self.timing
        c.seconds["timing"] = time.perf_counter() - t2
        c.seconds["timing_runs"] = c.latency.run_seconds
        if prediction is not None:
            c.predicted_ms = prediction.latency_ms
        if self.budget.max_ms is not None:
            c.constraints["latency_ms"] = c.latency.latency_ms - self.budget.max_ms
        if c.search_accuracy is None:
            if c.constraints.get("latency_ms", 0.0) > 0:
                c.skipped = "over the latency budget: accuracy not estimated"
                return c
            self._score(c, seed)
        return c

    def _note(self, c: TrialRecord, seed: int, prediction: Prediction | None) -> None:
        """Queue ``c`` for a second look if its timing is suspect (:mod:`.second_look`)."""
        config, precision = c.config, c.precision
        self.looks.note(c, lambda: _export(config, precision, seed),
                        float("inf") if prediction is None else prediction.high_ms)

    def _score(self, c: TrialRecord, seed: int) -> None:
        t0 = time.perf_counter()
        with heavy_work():
            c.search_accuracy, c.accuracy_details = self.accuracy.score(c.config, seed)
        c.search_accuracy_kind = self.accuracy.kind
        c.seconds["accuracy"] = time.perf_counter() - t0
