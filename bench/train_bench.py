"""Training throughput on this machine (issue: accuracy), images per second.

Trains squeezenet1_0 and squeezenet1_1 (10 classes, the documented recipe: training form with
BatchNorm, AdamW, batch 64, augmentation) on builtin:shapes for a fixed number of steps at the
input sizes the search uses for training, with all cores, and prints images/s. Data loading is
excluded (the dataset is decoded once and cached). Usage: python bench/train_bench.py
"""

from __future__ import annotations

import torch

from autosq.accuracy.datasets import load_dataset
from autosq.accuracy.train import Recipe, fit
from autosq.arch.presets import preset


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':15} {'input':>6} {'images/s':>9} {'val_top1 after 1 epoch':>24}")
    for size in (32, 64):
        data = load_dataset("builtin:shapes", size)
        for name in ("squeezenet1_1", "squeezenet1_0"):
            config = preset(name, input_size=size, num_classes=data.num_classes)
            _, r = fit(config, data, Recipe(epochs=1.0), seed=0)
            print(f"{name:15} {size:>4}px {r.images_per_s:9.0f} {r.val_top1:24.3f}")


if __name__ == "__main__":
    main()
