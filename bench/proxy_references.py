"""Reference accuracies for the search's default without data (issue 25): where do networks
without 3x3 filters rank when trained?

Trains default-space architectures stand-alone on the UCI digits at 32 px for a long budget
(1000 steps, 1 thread, seeded): pairs that differ only in the share of 3x3 filters (0 against
0.5) or only in the squeeze ratio (1.0 against 0.125), and random candidates within 5 MiB.
Writes every architecture with its reference top-1, parameters and MACs to a JSON file (the
tests read it: tests/accuracy/data/default_space_references.json), then ranks them with every
zero-cost proxy (Kendall tau against the reference) and says where the best-scored ones of
each proxy fall in the reference's ranking.

Usage: python bench/proxy_references.py OUT.json [--random 8] [--steps 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

PAIRED = (  # (varied key, its two values, the rest)
    ("pct_3x3", (0.0, 0.5), {"base_e": 64, "incr_e": 64, "freq": 2, "sr": 1.0, "macro": "v1.1",
                              "bypass": "none"}),
    ("pct_3x3", (0.0, 0.5), {"base_e": 32, "incr_e": 32, "freq": 1, "sr": 1.0, "macro": "v1.0",
                              "bypass": "simple"}),
    ("pct_3x3", (0.0, 0.5), {"base_e": 128, "incr_e": 0, "freq": 2, "sr": 0.25, "macro": "v1.1",
                              "bypass": "none"}),
    ("pct_3x3", (0.0, 0.5), {"base_e": 96, "incr_e": 32, "freq": 3, "sr": 0.5, "macro": "v1.0",
                              "bypass": "complex"}),
    ("sr", (1.0, 0.125), {"base_e": 64, "incr_e": 64, "freq": 2, "pct_3x3": 0.0, "macro": "v1.1",
                          "bypass": "none"}),
    ("sr", (1.0, 0.125), {"base_e": 48, "incr_e": 16, "freq": 1, "pct_3x3": 0.5,
                          "macro": "v1.0", "bypass": "none"}),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--random", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from digits import write_digits

    from autosq.accuracy.correlation import kendall
    from autosq.accuracy.datasets import load_dataset
    from autosq.accuracy.oneshot import sample_values
    from autosq.accuracy.proxies import PROXIES, proxy_score
    from autosq.accuracy.train import Recipe, train
    from autosq.arch.cost import cost_of
    from autosq.arch.plan import plan
    from autosq.arch.space import load_space, make_config

    archs: list[dict[str, object]] = []
    for key, values, rest in PAIRED:
        archs += [{**rest, key: v} for v in values]
    rng = random.Random(args.seed)
    space = load_space("default")
    while len(archs) < len(PAIRED) * 2 + args.random:
        v = sample_values(space, rng)
        v.pop("precision", None)
        if cost_of(plan(make_config(v, 32, 10))).size_mb("fp32") <= 5.0:
            archs.append(v)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, digits at 32 px, "
          f"{args.steps} steps from random weights, 1 thread, {len(archs)} architectures",
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = load_dataset(str(write_digits(Path(tmp) / "digits")), 32)
        images = data.sample("train", 64)[0]
        for i, v in enumerate(archs):
            config = make_config(v, 32, data.num_classes)
            r = train(config, data, Recipe(min_steps=args.steps, default_epochs=0.0), seed=i,
                      threads=1)
            p = plan(config)
            row = {"values": v, "reference_top1": r.val_top1, "params": p.params,
                   "macs": p.macs, "steps": args.steps, "seed": i,
                   "proxies": {n: proxy_score(n, config, images=images, seed=0)
                               for n in PROXIES}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps({
        "data": "UCI digits (bench/digits.py) at 32 px", "steps": args.steps,
        "space": "default", "measured": time.strftime("%Y-%m-%d"), "archs": rows},
        indent=1) + "\n")
    truth = [r["reference_top1"] for r in rows]
    quarter = sorted(truth)[len(truth) // 4]
    print("\n| proxy | Kendall tau vs reference | reference rank of its top 3 (1 = best) |")
    print("|---|---|---|")
    order = sorted(range(len(rows)), key=lambda i: -truth[i])
    for name in PROXIES:
        scores = [r["proxies"][name] for r in rows]  # type: ignore[index]
        top = sorted(range(len(rows)), key=lambda i: -scores[i])[:3]
        ranks = [order.index(i) + 1 for i in top]
        low = sum(truth[i] < quarter for i in top)
        print(f"| {name} | {kendall(scores, truth):+.3f} | {ranks} ({low} in the bottom "
              "quarter) |")


if __name__ == "__main__":
    main()
