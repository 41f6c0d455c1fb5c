"""``autosq calibrate``: time a few dozen diverse candidates on a device and fit its latency
predictor (:mod:`autosq.measure.predictor`).

Candidates are spread over the space, not only drawn at random: a seeded pool of valid
candidates is sorted by MACs (log scale) and one is drawn from each of ``n`` equal strata, with
precisions taken in turn, so the predictor sees small and large networks of every precision.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from autosq.arch.config import SqueezeNetConfig
from autosq.arch.cost import cost
from autosq.arch.space import SearchSpace, make_config, split_values
from autosq.errors import ConfigError, MeasurementError, UsageError
from autosq.measure.features import latency_features
from autosq.measure.predictor import (
    MIN_SAMPLES,
    Calibration,
    Predictor,
    fit_predictor,
    load_predictor,
    stored_predictors,
)

if TYPE_CHECKING:
    from autosq.measure import Timer
    from autosq.measure.profiles import DeviceProfile

POOL = 3000


def random_values(space: SearchSpace, rng: random.Random) -> dict[str, object]:
    """A random point of the space (each dimension from its 64-point grid)."""
    values: dict[str, object] = dict(space.fixed)
    for d in space.dims:
        grid = d.grid(64)
        values[d.name] = rng.choice(grid)
    return values


def spread_candidates(space: SearchSpace, n: int, seed: int, input_size: int,
                      num_classes: int = 1000) -> list[tuple[SqueezeNetConfig, str]]:
    """``n`` distinct (config, precision) spread over the space by MACs (see module docstring)."""
    rng = random.Random(seed)
    precisions = next((list(map(str, d.choices)) for d in space.dims if d.name == "precision"),
                      [split_values(space.fixed)[1]])
    pool: dict[str, tuple[float, SqueezeNetConfig]] = {}
    for _ in range(POOL):
        try:
            config = make_config(random_values(space, rng), input_size, num_classes)
        except ConfigError:
            continue
        pool.setdefault(config.arch_id, (math.log(cost(config).macs + 1), config))
    ordered = [c for _, c in sorted(pool.values(), key=lambda mc: mc[0])]
    if len(ordered) < n:
        raise UsageError(f"space {space.name!r} has only {len(ordered)} distinct valid "
                         f"candidates at {input_size}px; ask for at most that many samples")
    edges = [round(i * len(ordered) / n) for i in range(n + 1)]
    picks = [ordered[rng.randrange(edges[i], edges[i + 1])] for i in range(n)]
    return [(c, precisions[i % len(precisions)]) for i, c in enumerate(picks)]


def calibration_for(profile: DeviceProfile, timer: Timer | None, machine: str,
                    onnxruntime: str) -> Calibration:
    """What a predictor fitted on ``timer``'s timings is valid for."""
    return Calibration(device=profile.name, latency_source=profile.latency_source,
                       threads=profile.threads, provider=profile.provider,
                       graph_optimization=profile.graph_optimization, machine=machine,
                       onnxruntime=onnxruntime)


def calibrate(profile: DeviceProfile, timer: Timer, calibration: Calibration,
              space: SearchSpace, samples: int, seed: int = 0, input_size: int | None = None,
              on_sample: Callable[[int, int, SqueezeNetConfig, str, float], None] | None = None,
              ) -> tuple[Predictor, float]:
    """Time ``samples`` spread candidates with ``timer`` (together, interleaved) and fit the
    predictor; returns it and the seconds spent."""
    from autosq.searching.evaluate import export_model

    if samples < MIN_SAMPLES:
        raise UsageError(f"samples must be at least {MIN_SAMPLES} (a predictor is fitted and "
                         f"cross-validated on them); got {samples}")
    t0 = time.perf_counter()
    size = input_size or profile.input_size
    chosen = spread_candidates(space, samples, seed, size)
    models = [export_model(config, precision, seed=i) for i, (config, precision) in
              enumerate(chosen)]
    # Together, interleaved block by block: a slow spell of the machine (or the device) then
    # slows every sample alike instead of a few, and the fit sees their true proportions.
    results = timer.time_many(models)
    rows, ms = [], []
    for i, ((config, precision), result) in enumerate(zip(chosen, results, strict=True)):
        rows.append(latency_features(config, precision))
        ms.append(result.latency_ms)
        if on_sample is not None:
            on_sample(i + 1, len(chosen), config, precision, result.latency_ms)
    return fit_predictor(calibration, rows, ms, seed=seed), time.perf_counter() - t0


def device_calibration(profile: DeviceProfile, timer: Timer) -> Calibration:
    """The calibration record of ``profile`` as it is now: this machine (measured) or the
    agent's device (asked over the network). An estimated device has nothing to calibrate."""
    if profile.latency_source == "estimated":
        raise UsageError(
            f"device {profile.name}'s latency is estimated (there is no {profile.name} here to "
            "time on); calibrate a device whose profile times it: source = \"measured\" (this "
            "machine) or \"agent\" (the device, through its agent)")
    if profile.latency_source == "agent":
        from autosq.measure.agent_client import AgentTimer
        from autosq.measure.host import fingerprint

        assert isinstance(timer, AgentTimer)
        facts = timer.info()
        return calibration_for(profile, timer, fingerprint(facts), str(facts.get("onnxruntime")))
    import onnxruntime as ort

    from autosq.measure.host import machine_key

    return calibration_for(profile, timer, machine_key(), ort.__version__)


def device_predictor(profile: DeviceProfile, timer: Timer) -> Predictor:
    """The predictor behind ``profile``'s predicted latencies: the one calibrated for it as it
    is now (:func:`device_calibration`; stale ones refused). An ``estimated`` device has
    nothing to time here, so a predictor calibrated on the device itself, through its agent
    (a profile of the same name with source ``agent``), replaces the one-ratio scaling when
    there is one with the same runtime settings."""
    if profile.latency_source != "estimated":
        return load_predictor(device_calibration(profile, timer))
    found = [p for p in stored_predictors(profile.name)
             if p.calibration.latency_source == "agent"
             and (p.calibration.threads, p.calibration.provider,
                  p.calibration.graph_optimization)
             == (profile.threads, profile.provider, profile.graph_optimization)]
    if not found:
        raise MeasurementError(
            f"device {profile.name}'s latency is estimated from one published figure and no "
            f"predictor was calibrated on the device; with a profile named {profile.name} "
            "whose [latency] source is \"agent\", run `autosq calibrate --device "
            f"{profile.name}` while its agent runs")
    return found[-1]
