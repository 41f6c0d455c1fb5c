"""Benchmark of the timing protocol (issue: device profiles and real latency).

Prints, on this machine:
1. the spread (max/min) of the reported median for squeezenet1_0 and squeezenet1_1 across
   fresh processes (goal: <= 1.10);
2. the agreement of that median with a plain ONNX Runtime loop (10 warm-ups, 200 runs,
   median) in a fresh process with the same settings (goal: within 10%);
3. what the protocol costs per candidate against the runs it needed.

Processes run one after another, alternating autosq and the plain loop, so drift over the run
hits both alike. Usage: python bench/latency_bench.py [--processes 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PLAIN_LOOP = r"""
import sys, time, numpy as np, onnxruntime as ort
from autosq.arch.model import build
from autosq.arch.presets import preset
from autosq.measure.onnx import export_bytes
name = sys.argv[1]
data = export_bytes(build(preset(name), seed=0), 224)
so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
s = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
img = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
x = {s.get_inputs()[0].name: img}
for _ in range(10):
    s.run(None, x)
ts = []
for _ in range(200):
    t = time.perf_counter(); s.run(None, x); ts.append((time.perf_counter() - t) * 1e3)
print(float(np.median(ts)))
"""


def autosq_measure(name: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "autosq", "measure", "--preset", name, "--device", "host", "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def plain(name: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PLAIN_LOOP, name], check=True, capture_output=True, text=True
    ).stdout
    return float(out.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{'model':15} {'autosq medians (ms), one per fresh process':48} {'max/min':>8} "
        f"{'plain loop median':>18} {'autosq/plain':>13} {'vs quietest plain':>18}"
    )
    costs = []
    for name in ("squeezenet1_0", "squeezenet1_1"):
        ours, theirs = [], []
        for _ in range(args.processes):
            r = autosq_measure(name)
            ours.append(r["latency_ms"])
            costs.append((name, r))
            theirs.append(plain(name))
        spread = max(ours) / min(ours)
        agree = statistics.median(ours) / statistics.median(theirs)
        quiet = statistics.median(ours) / min(theirs)
        print(
            f"{name:15} {' '.join(f'{m:6.2f}' for m in ours):48} {spread:8.3f} "
            f"{statistics.median(theirs):15.2f} ms {agree:13.3f} {quiet:18.3f}"
        )
        print(
            f"{'':15} plain-loop medians: {' '.join(f'{m:6.2f}' for m in theirs)}  "
            f"(max/min {max(theirs) / min(theirs):.3f})"
        )
    print()
    print("cost per candidate (timing only; export and session creation excluded from runs):")
    print(
        f"{'model':15} {'runs':>5} {'blocks':>6} {'stop':>10} {'wall s':>7} {'in runs s':>9} "
        f"{'runs share':>10}"
    )
    for name, r in costs:
        print(
            f"{name:15} {r['runs']:5d} {r['blocks']:6d} {r['stop']:>10} {r['seconds']:7.2f} "
            f"{r['run_seconds']:9.2f} {r['run_seconds'] / r['seconds']:10.0%}"
        )


if __name__ == "__main__":
    main()
