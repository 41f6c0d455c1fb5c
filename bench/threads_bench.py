"""Training throughput with 1 and 2 threads, alone and beside a second training (issue 24).

Each case trains squeezenet1_1 (10 classes, the documented recipe, batch 64) on the UCI digits
(scikit-learn's, written as an ImageFolder) for a fixed number of steps in a fresh process, and
reports its images/s; "beside" cases start two such processes at once and report both. Data
decoding is excluded (the dataset is decoded and cached before the clock starts).

Usage: python bench/threads_bench.py [--size 32] [--steps 120]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = (  # (label, thread counts of the trainings run at once)
    ("alone, 1 thread", (1,)),
    ("alone, 2 threads", (2,)),
    ("beside another, 1 thread each", (1, 1)),
    ("beside another, 2 threads each", (2, 2)),
    ("2 threads beside a 1-thread one", (2, 1)),
)


def _child(folder: str, size: int, steps: int, threads: int) -> None:
    from autosq.accuracy.datasets import load_dataset
    from autosq.accuracy.train import Recipe, fit
    from autosq.arch.presets import preset

    data = load_dataset(folder, size)
    n = len(data.train_x)
    recipe = Recipe(epochs=steps * 64 / n)
    _, r = fit(preset("squeezenet1_1", input_size=size, num_classes=data.num_classes), data,
               recipe, seed=0, threads=threads)
    print(json.dumps({"threads": threads, "images_per_s": r.images_per_s, "steps": r.steps}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--child", nargs=4)
    args = parser.parse_args()
    if args.child:
        folder, size, steps, threads = args.child
        _child(folder, int(size), int(steps), int(threads))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    import torch
    from digits import write_digits

    from autosq.accuracy.datasets import load_dataset

    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, squeezenet1_1 at {args.size}px, batch 64, "
          f"{args.steps} steps a run")
    with tempfile.TemporaryDirectory() as tmp:
        folder = str(write_digits(Path(tmp) / "digits"))
        load_dataset(folder, args.size)  # decode once: the runs read the cache
        print(f"{'case':34} {'images/s of each training':>28} {'together':>9}")
        for label, threads in CASES:
            procs = [subprocess.Popen(
                [sys.executable, __file__, "--child", folder, str(args.size), str(args.steps),
                 str(t)], stdout=subprocess.PIPE, text=True) for t in threads]
            rates = [json.loads(p.communicate()[0].strip().splitlines()[-1])["images_per_s"]
                     for p in procs]
            each = ", ".join(f"{r:.0f} ({t}t)" for r, t in zip(rates, threads, strict=True))
            print(f"{label:34} {each:>28} {sum(rates):9.0f}", flush=True)


if __name__ == "__main__":
    main()
