"""What Deep Compression does to a trained network's accuracy, with and without retraining,
by code bits (issue 24 item 4: the one ``--bits`` default of `compress` and `export
--compress`).

Trains squeezenet1_1 (10 classes, the documented recipe) on the UCI digits (bench/digits.py)
at 32 px, then compresses it without retraining (what `autosq compress` does) at 8, 6, 5 and
4 bits, keeping all weights and keeping a third, and with the paper's retraining (what
`autosq export --compress` does) at 8 and 6 bits; prints validation top-1 after each, and the
container's size.

Usage: python bench/compress_bits_bench.py [--size 32] [--steps 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=200, help="retraining steps a stage")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from digits import write_digits

    from autosq.accuracy.datasets import load_dataset
    from autosq.accuracy.train import Recipe, evaluate_top1, fit
    from autosq.arch.model import build
    from autosq.arch.presets import preset
    from autosq.compress.container import to_bytes
    from autosq.compress.network import compress_network
    from autosq.outputs.deep_compression import deep_compress

    print(f"# {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: "
          f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
          f"threads available, {args.threads} used; torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as folder:
        data = load_dataset(str(write_digits(Path(folder) / "digits")), args.size)
    config = preset("squeezenet1_1", input_size=args.size, num_classes=data.num_classes)
    t0 = time.perf_counter()
    model, result = fit(config, data, Recipe(), seed=0, threads=args.threads)
    print(f"trained: val_top1 {result.val_top1:.3f} ({result.steps} steps, "
          f"{time.perf_counter() - t0:.0f} s; {len(data.train_x)} train / {len(data.val_x)} "
          "val images)")
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    print(f"{'how':34} {'bits':>4} {'density':>7} {'val_top1':>8} {'bytes':>9}")
    for density in (1.0, 1 / 3):
        for bits in (8, 6, 5, 4):
            compressed = compress_network(config, state, density, bits)
            net = build(config)
            net.load_state_dict({k: torch.from_numpy(v) for k, v in
                                 compressed.state_dict().items()})
            top1 = evaluate_top1(net, data.val_x, data.val_y)
            print(f"{'without retraining (compress)':34} {bits:4} {density:7.3f} {top1:8.3f} "
                  f"{len(to_bytes(compressed)):9,}")
    for bits in (8, 6):
        container, stages, _ = deep_compress(copy.deepcopy(model), config, data, bits, 1 / 3,
                                             args.steps, seed=0, threads=args.threads)
        print(f"{'retrained (export --compress)':34} {bits:4} {1 / 3:7.3f} "
              f"{stages[-1].val_top1:8.3f} {len(container):9,}")


if __name__ == "__main__":
    main()
