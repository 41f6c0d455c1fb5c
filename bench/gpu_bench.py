"""Training on a GPU: reproducibility, and candidates at 224 px from ImageNet weights.

Two parts, in one run, on the first GPU torch sees (``--device cpu`` runs the same on the CPU,
to check the script):

1. **Reproducibility**: squeezenet1_1 trained twice from the same seed (builtin:shapes at 64
   px, 2 epochs) as ``fit`` trains (cuDNN's deterministic algorithms), then twice with cuDNN's
   defaults: whether the two networks are bit for bit equal, the largest weight difference,
   val_top1 and seconds of each.
2. **The main job's training at 224 px**: the UCI digits (real scanned digits, 1,797 images,
   10 classes) at 224 px; squeezenet1_1, squeezenet1_0 and two narrower default-space shapes,
   each fine-tuned from the squeezenet1_1 ImageNet weights (``--weights``, built by
   bench/pretrained_weights.py) with the search's fine-tuning recipe and trained from random
   weights with the search's recipe: val_top1, the start's val_top1, steps, seconds, images/s.

Usage: python bench/gpu_bench.py --weights squeezenet1_1-imagenet.pth [--device cuda] [--parts 1,2]
       [--size 224]
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch


def reproducibility(device) -> None:  # type: ignore[no-untyped-def]
    """Part 1: two trainings from one seed, with and without deterministic algorithms."""
    from unittest import mock

    import autosq.accuracy.train as train
    from autosq.accuracy.datasets import load_dataset
    from autosq.accuracy.recipe import Recipe
    from autosq.arch.presets import preset

    data = load_dataset("builtin:shapes:100", 64)
    config = preset("squeezenet1_1", input_size=64, num_classes=10)
    print("| algorithms | equal | max weight difference | val_top1 | seconds |")
    print("|---|---|---|---|---|")
    defaults = mock.patch.object(train, "deterministic", lambda _d: contextlib.nullcontext())
    for label, algorithms in (("deterministic (autosq)", contextlib.nullcontext()),
                              ("cuDNN defaults", defaults)):
        with algorithms:
            (a, ra), (b, rb) = (train.fit(config, data, Recipe(epochs=2.0), seed=3,
                                          device=device) for _ in range(2))
        diff = max(float((x.float() - y.float()).abs().max()) for x, y in
                   zip(a.state_dict().values(), b.state_dict().values(), strict=True))
        print(f"| {label} | {diff == 0.0} | {diff:.3g} | {ra.val_top1:.4f} / {rb.val_top1:.4f} "
              f"| {ra.seconds:.1f} / {rb.seconds:.1f} |", flush=True)


def candidates(device, weights: str, digits: Path,  # type: ignore[no-untyped-def]
               size: int) -> None:
    """Part 2: four shapes at ``size`` px (224: the devices'), fine-tuned from ImageNet
    weights and trained from random weights."""
    from autosq.accuracy.datasets import load_dataset
    from autosq.accuracy.recipe import Recipe, finetune_recipe
    from autosq.accuracy.train import fit
    from autosq.arch.presets import preset
    from autosq.arch.pretrained import load_pretrained

    init = load_pretrained(weights)
    t0 = time.perf_counter()
    plain = load_dataset(str(digits), size)
    tuned = plain.renormalised(init.normalisation)
    print(f"\ndigits at {size} px: {len(plain.train)} training, {len(plain.val)} validation "
          f"images, loaded in {time.perf_counter() - t0:.1f} s")
    shapes = {
        "squeezenet1_1": preset("squeezenet1_1", input_size=size, num_classes=10),
        "squeezenet1_0": preset("squeezenet1_0", input_size=size, num_classes=10),
        "v1.1 base_e 64, sr 0.25": preset("squeezenet1_1", input_size=size, num_classes=10,
                                          base_e=64, incr_e=64, sr=0.25),
        "v1.1 base_e 96, pct_3x3 0.25": preset("squeezenet1_1", input_size=size,
                                               num_classes=10, base_e=96, incr_e=96,
                                               pct_3x3=0.25),
    }
    print("| shape | start | val_top1 | start val_top1 | steps | seconds | images/s |")
    print("|---|---|---|---|---|---|---|")
    for name, config in shapes.items():
        for start in ("ImageNet", "random"):
            kwargs = {"init": init, "evaluate_start": True} if start == "ImageNet" else {}
            _, r = fit(config, tuned if start == "ImageNet" else plain,
                           finetune_recipe() if start == "ImageNet" else Recipe(), seed=0,
                           device=device, **kwargs)
            begin = "-" if r.start_top1 is None else f"{r.start_top1:.3f}"
            print(f"| {name} | {start} | {r.val_top1:.3f} | {begin} | {r.steps} | "
                  f"{r.seconds:.1f} | {r.images_per_s:,.0f} |", flush=True)


def main() -> None:
    """Parse the arguments, print the machine line, run the parts asked for."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", required=True, help="squeezenet1_1 ImageNet .pth")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--parts", default="1,2")
    parser.add_argument("--size", type=int, default=224, help="part 2's input side")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from digits import write_digits

    from autosq.accuracy.device import resolve_device

    device = resolve_device(args.device)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {torch.get_num_threads()} "
          f"CPU threads, torch {torch.__version__}, training on {device.describe()}")
    parts = set(args.parts.split(","))
    if "1" in parts:
        reproducibility(device)
    if "2" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            candidates(device, args.weights, write_digits(Path(tmp) / "digits"), args.size)


if __name__ == "__main__":
    main()
