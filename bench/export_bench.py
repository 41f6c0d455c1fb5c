"""Benchmark of the timing graph written from the plan (autosq/measure/graph.py) against the
torch export it replaced in the search: seconds to produce each, and the latency of both graphs
timed together, interleaved (the default protocol, this machine, 1 thread), for the four presets
and a few random candidates of the default space, fp32 and int8 (int8: ONNX Runtime's static
QDQ quantization; with ``quant_pre_process`` for the torch graph as before, without it for the
plan graph, as the search now does).

Usage: python bench/export_bench.py [--random 4]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np

from autosq.arch.config import SqueezeNetConfig
from autosq.arch.model import build
from autosq.arch.plan import plan
from autosq.arch.presets import load_presets, preset
from autosq.arch.space import load_space, make_config
from autosq.errors import ConfigError
from autosq.measure.graph import onnx_from_plan
from autosq.measure.local import LocalTimer
from autosq.measure.onnx import export_bytes
from autosq.measure.quantize import quantize_bytes
from autosq.outputs.calibrate import random_values


def candidates(n: int) -> list[tuple[str, SqueezeNetConfig]]:
    out = [(name, preset(name)) for name in load_presets()]
    space, rng = load_space("default"), random.Random(0)
    while len(out) < len(load_presets()) + n:
        try:
            out.append((f"random {len(out)}", make_config(random_values(space, rng), 224, 1000)))
        except ConfigError:
            continue
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--random", type=int, default=4)
    args = parser.parse_args()
    timer = LocalTimer(threads=1)
    print(f"{'model':16} {'prec':5} {'torch s':>8} {'plan s':>7} {'torch ms':>9} {'plan ms':>8} "
          f"{'ratio':>6}")
    ratios = []
    for name, config in candidates(args.random):
        size = config.input_size
        image = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
        for precision in ("fp32", "int8"):
            t0 = time.perf_counter()
            torch_graph = export_bytes(build(config, seed=0), size)
            if precision == "int8":
                torch_graph = quantize_bytes(torch_graph, size)
            t1 = time.perf_counter()
            plan_graph = onnx_from_plan(plan(config), seed=0)
            if precision == "int8":
                plan_graph = quantize_bytes(plan_graph, size, image, preprocess=False)
            t2 = time.perf_counter()
            a, b = timer.time_many([torch_graph, plan_graph])
            ratio = b.latency_ms / a.latency_ms
            ratios.append(ratio)
            print(f"{name:16} {precision:5} {t1 - t0:8.3f} {t2 - t1:7.3f} {a.latency_ms:9.2f} "
                  f"{b.latency_ms:8.2f} {ratio:6.3f}", flush=True)
    print(f"latency plan graph / torch graph: median {statistics.median(ratios):.3f}, "
          f"range {min(ratios):.3f}-{max(ratios):.3f} over {len(ratios)} pairs")


if __name__ == "__main__":
    main()
