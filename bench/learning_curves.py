"""Learning curves: validation top-1 against the training budget in optimizer steps, on
builtin:shapes and on the UCI handwritten digits (bench/digits.py), at 32 px.

Each budget is its own run (the schedule, warm-up then cosine, spans the whole budget), seeded;
the seed-to-seed spread is measured at one budget. The default floor of the training budget
(``autosq.accuracy.train.DEFAULT_MIN_STEPS``) was chosen from these curves.

Usage: python bench/learning_curves.py [--steps 50,100,200,300,500,800] [--seeds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from digits import write_digits

from autosq.accuracy.datasets import load_dataset
from autosq.accuracy.train import Recipe, default_threads, train
from autosq.arch.config import SqueezeNetConfig
from autosq.arch.presets import preset

SIZE = 32
# A mid-sized candidate of the `tiny` space, beside the paper's v1.1.
TINY_MID = {"macro": "v1.1", "conv1_filters": 16, "base_e": 16, "incr_e": 16, "freq": 2,
            "pct_3x3": 0.5, "sr": 0.25, "bypass": "none"}


def configs(classes: int) -> dict[str, SqueezeNetConfig]:
    return {
        "squeezenet1_1": preset("squeezenet1_1", input_size=SIZE, num_classes=classes),
        "tiny-mid": SqueezeNetConfig(**TINY_MID, input_size=SIZE, num_classes=classes),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", default="50,100,200,300,500,800")
    ap.add_argument("--seeds", type=int, default=3, help="seeds for the spread at 300 steps")
    args = ap.parse_args()
    budgets = [int(s) for s in args.steps.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        data = {"builtin:shapes": load_dataset("builtin:shapes", SIZE),
                "digits": load_dataset(str(write_digits(Path(tmp) / "digits")), SIZE)}
        print(f"{default_threads()} threads; input {SIZE}x{SIZE}; AdamW, warm-up + cosine; "
              f"batch 64; val top-1 per budget (seconds of training)")
        for dname, ds in data.items():
            print(f"\n{dname}: {len(ds.train)} train / {len(ds.val)} val images, "
                  f"{ds.num_classes} classes ({-(-len(ds.train) // 64)} steps per epoch)")
            for cname, cfg in configs(ds.num_classes).items():
                cells = []
                for steps in budgets:
                    r = train(cfg, ds, Recipe(min_steps=steps, default_epochs=0.0), seed=0)
                    cells.append(f"{steps}: {r.val_top1:.3f} ({r.seconds:.0f}s)")
                print(f"  {cname:14} " + "  ".join(cells))
                t0 = time.perf_counter()
                accs = [train(cfg, ds, Recipe(min_steps=300, default_epochs=0.0), seed=s).val_top1
                        for s in range(args.seeds)]
                print(f"  {'':14} 300 steps over seeds 0..{args.seeds - 1}: "
                      f"{', '.join(f'{a:.3f}' for a in accs)} (sd {statistics.pstdev(accs):.3f}; "
                      f"{time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
