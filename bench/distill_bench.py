"""What a teacher adds at the default budget (issue 25): distillation against none, paired.

Trains a teacher once (squeezenet1_0 from random weights for ``--teacher-steps``, written as an
autosq .pt export with its normalisation), then trains default-space candidates within 5 MiB at
the default budget (500 steps, 1 thread) from several seeds, each with and without the teacher
(same seed, same batches). Prints each pair, then the mean gain (with - without) with a bootstrap
95% interval over all pairs, and the cost per candidate with and without.

Usage: python bench/distill_bench.py --data digits|shapes [--archs 4] [--seeds 3]
       [--teacher-steps 2000]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=("digits", "shapes"), required=True)
    parser.add_argument("--archs", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--teacher-steps", type=int, default=2000)
    parser.add_argument("--train-images", type=int, default=100)
    parser.add_argument("--jsonl", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from digits import write_digits

    from autosq.accuracy.datasets import load_dataset
    from autosq.accuracy.distill import load_teacher
    from autosq.accuracy.oneshot import sample_values
    from autosq.accuracy.train import Recipe, fit, train
    from autosq.arch.cost import cost_of
    from autosq.arch.plan import plan
    from autosq.arch.presets import preset
    from autosq.arch.space import load_space, make_config

    size = 32 if args.data == "digits" else 64
    with tempfile.TemporaryDirectory() as tmp:
        spec = (str(write_digits(Path(tmp) / "digits")) if args.data == "digits"
                else f"builtin:shapes:{args.train_images}")
        data = load_dataset(spec, size)
        tconfig = preset("squeezenet1_0", input_size=size, num_classes=data.num_classes)
        t0 = time.perf_counter()
        tmodel, tres = fit(tconfig, data, Recipe(min_steps=args.teacher_steps,
                                                 default_epochs=0.0), seed=1000, threads=1)
        teacher_path = Path(tmp) / "teacher.pt"
        torch.save({"config": tconfig.to_dict(), "state_dict": tmodel.state_dict(),
                    "autosq": {"input_normalisation": data.normalisation.to_dict()}},
                   teacher_path)
        teacher = load_teacher(str(teacher_path), data.num_classes, size)
        print(f"{time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, {args.data} at "
              f"{size}px ({len(data.train)} train / {len(data.val)} val), 1 thread; teacher "
              f"squeezenet1_0, {args.teacher_steps} steps: val_top1 {tres.val_top1:.3f} "
              f"({time.perf_counter() - t0:.0f} s); T={teacher.temperature:g}, "
              f"weight={teacher.weight:g}", flush=True)
        rng = random.Random(0)
        space = load_space("default")
        archs: list[dict[str, object]] = []
        while len(archs) < args.archs:
            v = sample_values(space, rng)
            v.pop("precision", None)
            if cost_of(plan(make_config(v, size, data.num_classes))).size_mb("fp32") <= 5.0:
                archs.append(v)
        gains, cost = [], {"with": [], "without": []}
        print("| arch | seed | without | with teacher | gain |")
        print("|---|---|---|---|---|")
        for i, v in enumerate(archs):
            config = make_config(v, size, data.num_classes)
            for seed in range(args.seeds):
                plain = train(config, data, Recipe(), seed=seed, threads=1)
                taught = train(config, data, Recipe(), seed=seed, threads=1, teacher=teacher)
                gains.append(taught.val_top1 - plain.val_top1)
                cost["without"].append(plain.seconds)
                cost["with"].append(taught.seconds)
                print(f"| {i} | {seed} | {plain.val_top1:.3f} | {taught.val_top1:.3f} | "
                      f"{gains[-1]:+.3f} |", flush=True)
                if args.jsonl:
                    with args.jsonl.open("a") as f:
                        f.write(json.dumps({"arch": i, "values": v, "seed": seed,
                                            "without": plain.val_top1,
                                            "with": taught.val_top1}) + "\n")
    r = random.Random(0)
    means = sorted(statistics.fmean(r.choices(gains, k=len(gains))) for _ in range(2000))
    print(f"\nmean gain {statistics.fmean(gains):+.4f} [95% CI {means[50]:+.4f}, "
          f"{means[1949]:+.4f}] over {len(gains)} pairs ({args.archs} archs x {args.seeds} "
          f"seeds); seconds per candidate, median: without {statistics.median(cost['without']):.1f}"
          f", with {statistics.median(cost['with']):.1f}")


if __name__ == "__main__":
    main()
