"""Training throughput against a bare torch loop, and the data pipeline alone (issue 26).

For each input size, in one run, alternating: (a) the loader alone (autosq's streamed,
augmented training batches from the decoded cache, no model), (b) autosq's training loop
(``autosq.accuracy.train._train_loop``: the streamed batches, the training form, AdamW, the
schedule, clipping; on a GPU with cuDNN's deterministic algorithms; the loader's start
included), (c) a bare torch loop: the same model, batch, threads, optimizer and
loss on batches already in memory. Images/s of each, and (b)/(c). The data: the UCI digits at
32 px, and generated JPEG photos (256 px, like tests/accuracy/test_stream.py) at 224 px.

Usage: python bench/data_bench.py [--sizes 32,224] [--steps 30,6] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


def _bare(config, batch: int, steps: int, device: str) -> float:  # type: ignore[no-untyped-def]
    """Images/s of the bare loop: the training form on in-memory batches."""
    from autosq.arch.model import build, training_form

    model = training_form(build(config, seed=0)).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.randn(batch, 3, config.input_size, config.input_size, device=device)
    y = torch.randint(0, config.num_classes, (batch,), device=device)
    for _ in range(2):  # warm-up
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        float(loss.detach())
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def _autosq(config, data, batch: int, steps: int, device_spec: str) -> float:  # type: ignore[no-untyped-def]
    """Images/s of autosq's loop (after two warm-up steps of its own)."""
    from autosq.accuracy.datasets.stream import choose_workers
    from autosq.accuracy.device import resolve_device
    from autosq.accuracy.train import Recipe, _train_loop
    from autosq.arch.model import build, training_form

    device = resolve_device(device_spec)
    workers = choose_workers(data, torch.get_num_threads(), device.kind)
    model = training_form(build(config, seed=0))
    warm = Recipe(min_steps=2, default_epochs=0.0, batch_size=batch)
    _train_loop(model, data, warm, 0, None, None, device, workers)  # as the bare loop's warm-up
    recipe = Recipe(min_steps=steps, default_epochs=0.0, batch_size=batch)
    t0 = time.perf_counter()
    _train_loop(model, data, recipe, 1, None, None, device, workers)
    return batch * steps / (time.perf_counter() - t0)


def _loader(data, batch: int, steps: int) -> float:  # type: ignore[no-untyped-def]
    from autosq.accuracy.datasets.stream import choose_workers, train_batches

    workers = choose_workers(data, torch.get_num_threads())
    t0 = time.perf_counter()
    n = sum(len(y) for _, y in train_batches(data, batch, steps, 0, workers))
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="32,224")
    parser.add_argument("--steps", default="30,6")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--photos", type=int, default=2000)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "accuracy"))
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))  # test_stream's util
    from digits import write_digits
    from test_stream import _photos

    from autosq.accuracy.datasets import load_dataset
    from autosq.arch.presets import preset

    torch.set_num_threads(args.threads)
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else "-"
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} training thread(s), device {args.device} ({gpu}), squeezenet1_1, "
          "batch 64")
    print("| input | loader alone (img/s) | autosq training (img/s) | bare loop (img/s) | "
          "autosq / bare |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for size, steps in zip((int(s) for s in args.sizes.split(",")),
                               (int(s) for s in args.steps.split(",")), strict=True):
            if size <= 64:
                folder = write_digits(Path(tmp) / "digits")
            else:
                folder = _photos(Path(tmp) / "photos", args.photos)
            data = load_dataset(str(folder), size)
            config = preset("squeezenet1_1", input_size=size, num_classes=data.num_classes)
            loader = _loader(data, 64, steps * 3)
            ours, bare = [], []
            for _ in range(2):  # alternating, twice: the machine's drift hits both
                ours.append(_autosq(config, data, 64, steps, args.device))
                bare.append(_bare(config, 64, steps, args.device))
            o, b = max(ours), max(bare)
            print(f"| {size} px | {loader:,.0f} | {o:,.1f} | {b:,.1f} | {o / b:.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
