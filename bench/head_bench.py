"""Trained networks are scored as trained: the training form and the deployed form (issue 24).

Trains default-space candidates on the UCI digits at 32 px with the default budget (500 steps,
1 thread, seeded) and evaluates each twice: its training form in eval mode, before folding, and
its deployed form (the plain SqueezeNet that is exported, timed and scored). Two heads:

- ``before``: the previous training form (BatchNorm after every conv but the classifier's, a
  LeakyReLU(0.1) head), folded and given back its ReLU head for deployment;
- ``after``: the current one (BatchNorm after every conv, the classifier's too, the ReLU head in
  both forms), :func:`autosq.accuracy.train.fit` itself.

The first two candidates are the issue's (stored at chance by the previous version). Prints a
Markdown table and the number of candidates whose deployed form is at chance (< 0.2) while the
training form learnt (> 0.5).

Usage: python bench/head_bench.py [--n 30] [--seed 0] [--heads before,after]
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
from torch import nn

ISSUE_CONFIGS = (
    {"macro": "v1.1", "base_e": 208, "incr_e": 0, "freq": 3, "pct_3x3": 0.1, "sr": 0.0625,
     "bypass": "simple"},
    {"macro": "v1.0", "base_e": 160, "incr_e": 240, "freq": 1, "pct_3x3": 0.05, "sr": 0.0625,
     "bypass": "simple"},
)


def _before(config, data, seed):  # type: ignore[no-untyped-def]
    """The previous training form and deployment (LeakyReLU head, ReLU restored)."""
    from autosq.accuracy.device import TrainDevice
    from autosq.accuracy.train import Recipe, _train_loop, evaluate, seeded
    from autosq.arch.model import _ConvBN, build, deployed_form

    with seeded(seed, 1):
        model = build(config, seed=seed)
        final = model.classifier[1]
        for module in list(model.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, nn.Conv2d) and child is not final:
                    setattr(module, name, _ConvBN(child))
        model.classifier[2] = nn.LeakyReLU(0.1)
        _train_loop(model, data, Recipe(), seed, None, None, TrainDevice("cpu"), 0)
        model.eval()
        trained = evaluate(model, data)
        model = deployed_form(model)
        model.classifier[2] = nn.ReLU(inplace=True)
        return trained, evaluate(model, data)


def _after(config, data, seed):  # type: ignore[no-untyped-def]
    """The current training form: fit() and the training form's own eval accuracy."""
    from autosq.accuracy import train as T

    seen: dict[str, float] = {}
    real = T.deployed_form

    def spy(model):  # type: ignore[no-untyped-def]
        model.eval()
        seen["trained"] = T.evaluate(model, data)
        return real(model)

    T.deployed_form = spy
    try:
        _, result = T.fit(config, data, T.Recipe(), seed=seed, threads=1)
    finally:
        T.deployed_form = real
    return seen["trained"], result.val_top1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heads", default="before,after")
    parser.add_argument("--jsonl", type=Path, help="also append each row to this file")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from digits import write_digits

    from autosq.accuracy.datasets import load_dataset
    from autosq.accuracy.oneshot import sample_values
    from autosq.arch.cost import cost_of
    from autosq.arch.plan import plan
    from autosq.arch.space import load_space, make_config

    heads = args.heads.split(",")
    space = load_space("default")
    rng = random.Random(args.seed)
    values = [dict(v) for v in ISSUE_CONFIGS]
    while len(values) < args.n:  # as a search would train them: those within 5 MiB (rpi4's)
        v = sample_values(space, rng)
        precision = v.pop("precision", "fp32")
        size = cost_of(plan(make_config(v, 32, 10))).size_mb(
            precision if precision in ("fp32", "int8") else "fp32")
        if size <= 5.0:
            values.append(v)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, digits at 32 px, "
          f"default budget (500 steps), 1 thread, candidates of the default space within 5 MiB "
          f"(seed {args.seed}; the first two are the issue's)")
    cols = " | ".join(f"{h}: trained form | {h}: deployed" for h in heads)
    print(f"| # | config | {cols} |")
    print("|---|---|" + "---|---|" * len(heads))
    dead = {h: 0 for h in heads}
    with tempfile.TemporaryDirectory() as tmp:
        data = load_dataset(str(write_digits(Path(tmp) / "digits")), 32)
        for i, v in enumerate(values):
            config = make_config(v, 32, data.num_classes)
            row = {"i": i, "values": v}
            cells = []
            for h in heads:
                trained, deployed = (_before if h == "before" else _after)(config, data, i)
                row[h] = {"trained": trained, "deployed": deployed}
                dead[h] += trained > 0.5 and deployed < 0.2
                cells.append(f"{trained:.3f} | {deployed:.3f}")
            desc = (f"{v['macro']} e{v['base_e']}+{v['incr_e']}/{v['freq']} "
                    f"3x3 {v['pct_3x3']:g} sr {v['sr']:g} {v['bypass']}")
            print(f"| {i} | {desc} | {' | '.join(cells)} |", flush=True)
            if args.jsonl:
                with args.jsonl.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    for h in heads:
        print(f"{h}: {dead[h]} of {len(values)} trained candidates deployed at chance")


if __name__ == "__main__":
    main()
