"""What containment costs: timing in the child process (the default) against timing in this
process, same models, same protocol, in one run, interleaved.

Usage: python bench/contained_bench.py [--models 20] [--input-size 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

from autosq.arch.model import build
from autosq.arch.presets import preset
from autosq.measure.local import LocalTimer
from autosq.measure.onnx import export_bytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--input-size", type=int, default=64)
    args = ap.parse_args()
    models = [export_bytes(build(preset(name, input_size=args.input_size, num_classes=10 + i),
                                 seed=0), args.input_size)
              for i in range(args.models // 2) for name in ("squeezenet1_0", "squeezenet1_1")]
    t0 = time.perf_counter()
    contained = LocalTimer(input_size=args.input_size)
    contained.time(models[0])
    start_s = time.perf_counter() - t0
    here = LocalTimer(input_size=args.input_size, contained=False)
    walls: dict[str, list[float]] = {"contained": [], "in-process": []}
    floors: dict[str, list[float]] = {"contained": [], "in-process": []}
    medians: dict[str, list[float]] = {"contained": [], "in-process": []}
    for m in models:
        for name, timer in (("contained", contained), ("in-process", here)):
            t1 = time.perf_counter()
            r = timer.time(m)
            walls[name].append(time.perf_counter() - t1)
            floors[name].append(r.run_seconds)
            medians[name].append(r.latency_ms)
    contained.close()
    print(f"{len(models)} models at {args.input_size}px, default protocol, 1 thread; starting "
          f"the timing process (first timing included): {start_s:.2f} s")
    for name in walls:
        w, f = sum(walls[name]), sum(floors[name])
        print(f"{name:>10}: {w / len(models):.3f} s a model, {f / w:.0%} of it in timed runs")
    extra = [a - b for a, b in zip(walls["contained"], walls["in-process"], strict=True)]
    print(f"containment: {statistics.median(extra) * 1e3:+.1f} ms a model (median), wall ratio "
          f"{sum(walls['contained']) / sum(walls['in-process']):.3f}")
    ratio = [a / b for a, b in zip(medians["contained"], medians["in-process"], strict=True)]
    print(f"latency contained / in-process: median {statistics.median(ratio):.3f}, "
          f"range {min(ratio):.3f}-{max(ratio):.3f}")


if __name__ == "__main__":
    main()
