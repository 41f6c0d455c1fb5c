"""The supernet's speed goals, measured in one run on one machine:

1. training the supernet plus scoring 100 candidates costs no more than training 10 of them
   stand-alone at the default budget;
2. scoring one candidate from the trained supernet takes under a second at 32 px.

Candidates are drawn (seeded) from the `tiny` space; data builtin:shapes at 32x32.

Usage: python bench/supernet_bench.py [--space tiny] [--candidates 100] [--standalone 10]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from autosq.accuracy.datasets import load_dataset
from autosq.accuracy.oneshot import SupernetAccuracy, sample_values
from autosq.accuracy.train import Recipe, default_threads, train
from autosq.arch.config import SqueezeNetConfig
from autosq.arch.space import load_space, make_config
from autosq.errors import ConfigError


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--space", default="tiny")
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--standalone", type=int, default=10)
    args = ap.parse_args()
    data = load_dataset("builtin:shapes", 32)
    space = load_space(args.space)
    rng = random.Random(0)
    configs: dict[str, SqueezeNetConfig] = {}
    while len(configs) < args.candidates:
        try:
            c = make_config(sample_values(space, rng), 32, data.num_classes)
        except ConfigError:
            continue
        configs.setdefault(c.arch_id, c)
    cands = list(configs.values())
    est = SupernetAccuracy(data, space, seed=0)
    t0 = time.perf_counter()
    for macro in sorted({c.macro for c in cands}):
        est.supernet(macro)  # trained now (the cache is the one of AUTOSQ_CACHE_DIR)
    train_s = time.perf_counter() - t0
    scores = []
    for c in cands:
        t1 = time.perf_counter()
        est.score(c, 0)
        scores.append(time.perf_counter() - t1)
    score_s = sum(scores)
    t2 = time.perf_counter()
    for c in cands[:args.standalone]:
        train(c, data, Recipe(), seed=0)
    alone_s = time.perf_counter() - t2
    print(f"{default_threads()} threads, space {args.space}, builtin:shapes 32x32")
    print(f"supernet training {train_s:.1f} s + scoring {len(cands)} candidates {score_s:.1f} s"
          f" = {train_s + score_s:.1f} s")
    print(f"stand-alone training of {args.standalone} candidates at the default budget "
          f"({Recipe().describe()}): {alone_s:.1f} s")
    print(f"goal 1 (supernet + {len(cands)} scores <= {args.standalone} stand-alone): ratio "
          f"{(train_s + score_s) / alone_s:.2f}")
    print(f"goal 2 (one score < 1 s): median {statistics.median(scores):.3f} s, "
          f"max {max(scores):.3f} s")


if __name__ == "__main__":
    main()
