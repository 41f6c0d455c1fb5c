"""Fine-tuning from inherited ImageNet weights against training from random weights (issue 25).

For architectures sampled from the default space (within 5 MiB, as a search would train them),
trains each from random weights (the default recipe, budgets in steps) and fine-tunes it from
the weights it inherits from the published ImageNet SqueezeNets (``--weights``: a folder with
``squeezenet1_0-imagenet.pth`` and ``squeezenet1_1-imagenet.pth`` as bench/pretrained_weights.py
builds them; each candidate takes its own macro's), at several budgets, 1 thread, seeded. Prints
each architecture's curve, then per budget the median accuracy of both and the paired
difference (fine-tuned - scratch) with a bootstrap 95% interval of its mean, and how many steps
fine-tuning needs to reach what scratch training reaches with the default budget (500 steps).

With ``--reference STEPS`` each architecture is also trained from random weights for that long
(the stand-alone reference), and every budget's ranking of the architectures is compared with
the reference's: Kendall tau with a bootstrap 95% interval, and the training cost per candidate.

Usage: python bench/pretrained_curves.py --data digits|shapes [--size 32] [--archs 10]
       [--scratch 100,250,500] [--finetune 100,250,500] [--reference 1000] [--lr LR]
       [--jsonl FILE]
       python bench/pretrained_curves.py --summarise FILE.jsonl [FILE.jsonl ...] [--reference N]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch


def _bootstrap_mean(diffs: list[float], seed: int = 0, rounds: int = 2000) -> tuple[float, float]:
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(diffs, k=len(diffs))) for _ in range(rounds))
    return means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=("digits", "shapes"), required=True)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--archs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scratch", default="100,250,500")
    parser.add_argument("--finetune", default="100,250,500")
    parser.add_argument("--reference", type=int, default=0)
    parser.add_argument("--train-images", type=int, default=0,
                        help="builtin:shapes:N for shapes (default: 300 a class)")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--weights", type=Path, default=Path("/work/weights"))
    parser.add_argument("--jsonl", type=Path)
    parser.add_argument("--summarise", type=Path, nargs="+", metavar="JSONL",
                        help="only print the summary of rows stored by earlier runs (--jsonl)")
    args = parser.parse_args()
    if args.summarise:
        stored = [json.loads(line) for f in args.summarise for line in f.read_text().splitlines()
                  if line.strip()]
        for r in stored:  # JSON keys are strings
            r["scratch"] = {int(k): v for k, v in r["scratch"].items()}
            r["finetune"] = {int(k): v for k, v in r["finetune"].items()}
        print(f"{len(stored)} architectures from {', '.join(str(f) for f in args.summarise)}")
        summarise(stored, sorted(stored[0]["scratch"]), sorted(stored[0]["finetune"]),
                  args.reference)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from autosq.accuracy.datasets import load_dataset
    from autosq.accuracy.oneshot import sample_values
    from autosq.accuracy.train import Recipe, finetune_recipe, train
    from autosq.arch.cost import cost_of
    from autosq.arch.plan import plan
    from autosq.arch.pretrained import Pretrained
    from autosq.arch.space import load_space, make_config
    from autosq.arch.weights import read_weights

    size = args.size or (32 if args.data == "digits" else 64)
    scratch = [int(s) for s in args.scratch.split(",")]
    tuned = [int(s) for s in args.finetune.split(",")]
    lr = args.lr or finetune_recipe().lr
    files = {m: read_weights(str(args.weights / f"squeezenet1_{i}-imagenet.pth"))
             for m, i in (("v1.0", 0), ("v1.1", 1))}
    init = Pretrained("published ImageNet SqueezeNets", files)
    with tempfile.TemporaryDirectory() as tmp:
        if args.data == "digits":
            from digits import write_digits

            spec = str(write_digits(Path(tmp) / "digits"))
        else:
            spec = f"builtin:shapes:{args.train_images}" if args.train_images else \
                "builtin:shapes"
        data = load_dataset(spec, size)
        tuned_data = data.renormalised(init.normalisation)
        space = load_space("default")
        rng = random.Random(args.seed)
        archs: list[dict[str, object]] = []
        while len(archs) < args.archs:
            v = sample_values(space, rng)
            v.pop("precision", None)
            if cost_of(plan(make_config(v, size, data.num_classes))).size_mb("fp32") <= 5.0:
                archs.append(v)
        print(f"{time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, {args.data} at "
              f"{size}px ({len(data.train_y)} train / {len(data.val_y)} val), 1 thread, "
              f"{len(archs)} default-space archs within 5 MiB (seed {args.seed}); scratch: "
              f"default recipe; fine-tune: lr {lr:g} from {init.spec}", flush=True)
        rows = []
        for i, v in enumerate(archs):
            config = make_config(v, size, data.num_classes)
            row: dict[str, object] = {"arch": i, "values": v, "scratch": {}, "finetune": {},
                                      "seconds": {}}
            for s in sorted({*scratch, *([args.reference] if args.reference else [])}):
                r = train(config, data, Recipe(min_steps=s, default_epochs=0.0), seed=i,
                          threads=1)
                row["scratch"][s] = r.val_top1  # type: ignore[index]
                row["seconds"][f"scratch {s}"] = r.seconds  # type: ignore[index]
            for s in tuned:
                r = train(config, tuned_data, replace(finetune_recipe(), min_steps=s, lr=lr),
                          seed=i, threads=1, init=init)
                row["finetune"][s] = r.val_top1  # type: ignore[index]
                row["seconds"][f"finetune {s}"] = r.seconds  # type: ignore[index]
                row["share_inherited"] = (r.init or {}).get("share_inherited")
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.jsonl:
                with args.jsonl.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    summarise(rows, scratch, tuned, args.reference)


def summarise(rows: list[dict[str, Any]], scratch: list[int], tuned: list[int],
              reference: int = 0) -> None:
    """Print the budgets' medians, the paired differences with their intervals, the steps
    fine-tuning needs, and (with a reference budget) the rankings against it."""
    print("\n| budget (steps) | scratch, median | fine-tuned, median | fine-tuned - scratch, mean "
          "[95% CI] |")
    print("|---|---|---|---|")
    for s in sorted(set(scratch) | set(tuned)):
        a = [r["scratch"].get(s) for r in rows]  # type: ignore[attr-defined]
        b = [r["finetune"].get(s) for r in rows]  # type: ignore[attr-defined]
        sa = f"{statistics.median(a):.3f}" if None not in a else "-"
        sb = f"{statistics.median(b):.3f}" if None not in b else "-"
        if None in a or None in b:
            print(f"| {s} | {sa} | {sb} | - |")
            continue
        d = [y - x for x, y in zip(a, b, strict=True)]
        lo, hi = _bootstrap_mean(d)
        print(f"| {s} | {sa} | {sb} | {statistics.fmean(d):+.3f} [{lo:+.3f}, {hi:+.3f}] |")
    ref = max(scratch)
    ratios = []
    for r in rows:
        target = r["scratch"][ref]  # type: ignore[index]
        reach = [s for s in sorted(tuned) if r["finetune"][s] >= target]  # type: ignore[index]
        ratios.append(reach[0] / ref if reach else float("inf"))
    print(f"\nsteps fine-tuning needs to reach scratch's {ref}-step accuracy, as a share of "
          f"{ref}: median {statistics.median(ratios):.2f} (per arch: "
          f"{', '.join('never' if x == float('inf') else f'{x:.2f}' for x in ratios)})")
    if reference:
        from autosq.accuracy.correlation import bootstrap_interval, kendall

        truth = [r["scratch"][reference] for r in rows]  # type: ignore[index]
        print(f"\nranking against the {reference}-step stand-alone reference "
              f"({len(rows)} architectures):")
        print("| estimator | Kendall tau [95% CI] | seconds per candidate (median) |")
        print("|---|---|---|")
        for kind in ("scratch", "finetune"):
            for s in (scratch if kind == "scratch" else tuned):
                if kind == "scratch" and s == reference:
                    continue  # the reference itself
                got = [r[kind][s] for r in rows]  # type: ignore[index]
                lo, hi = bootstrap_interval(got, truth, kendall, seed=0)
                sec = statistics.median(r["seconds"][f"{kind} {s}"] for r in rows)  # type: ignore[index]
                name = "train" if kind == "scratch" else "pretrained"
                print(f"| {name} {s} steps | {kendall(got, truth):+.3f} [{lo:+.2f}, {hi:+.2f}] "
                      f"| {sec:.1f} |")


if __name__ == "__main__":
    main()
