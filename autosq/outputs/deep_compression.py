"""The paper's Deep Compression pipeline on a trained network (``autosq export --compress``):
prune, retrain with the pruned weights held at zero, cluster, retrain the shared centroids,
with the validation accuracy and the size after each stage.

Retraining runs on the deployed form (the plain network, no BatchNorm), since folding
BatchNorm would scale each channel and break the weights' sharing. Centroids are retrained as
the paper does: each shared value moves by the sum of the gradients of the weights that share
it. Every stage is seeded, so the same data, seed and thread count give the same table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from autosq.accuracy.train import evaluate, seeded
from autosq.arch.plan import plan
from autosq.compress.codec import prune, share
from autosq.compress.container import to_bytes
from autosq.compress.network import compress_network, conv_names
from autosq.compress.schedule import plan_densities

if TYPE_CHECKING:
    from autosq.accuracy.datasets import Dataset
    from autosq.arch.config import SqueezeNetConfig
    from autosq.arch.model import SqueezeNet

ALEXNET_BYTES = 240e6  # AlexNet's 240 MB, the paper's Table 2 baseline (61M params x 4 B)


@dataclass(frozen=True)
class Stage:
    """One row of the report: a stage's accuracy and what its weights take."""

    stage: str
    val_top1: float
    size_bytes: int
    density: float

    def row(self, fp32_bytes: int) -> dict[str, Any]:
        """The stage with its reductions against the fp32 network and AlexNet."""
        return {**asdict(self), "vs_fp32": fp32_bytes / self.size_bytes,
                "vs_alexnet": ALEXNET_BYTES / self.size_bytes}


def _params(model: SqueezeNet, names: list[str]) -> list[nn.Conv2d]:
    modules = dict(model.named_modules())
    out = []
    for n in names:
        conv = modules[n]
        assert isinstance(conv, nn.Conv2d)
        out.append(conv)
    return out


def _retrain(model: SqueezeNet, data: Dataset, steps: int, seed: int, lr: float,
             after_step: Any) -> None:
    """``steps`` seeded SGD steps on the training split; ``after_step()`` after each."""
    from autosq.accuracy.datasets.stream import train_batches

    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    for xb, yb in train_batches(data, 64, steps, seed):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        torch.autograd.backward(loss)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        after_step(opt)
    model.eval()


def deep_compress(model: SqueezeNet, config: SqueezeNetConfig, data: Dataset, bits: int = 6,
                  density: float = 1 / 3, steps: int = 200, seed: int = 0, lr: float = 2e-3,
                  threads: int = 1) -> tuple[bytes, list[Stage], SqueezeNet]:
    """Compress a trained ``model`` stage by stage; returns the container, the stages and the
    final model (its weights are exactly the container's)."""
    p = plan(config)
    names = [n for n, _ in conv_names(p)]
    convs = _params(model, names)
    fp32 = 4 * sum(p.numel() for p in model.parameters())
    total = sum(c.weight.numel() for c in convs)
    dens = plan_densities(p, density)
    stages = [Stage("trained", evaluate(model, data), fp32, 1.0)]
    with seeded(seed, threads), torch.no_grad():
        masks = []
        for n, c in zip(names, convs, strict=True):
            pruned = torch.from_numpy(prune(c.weight.numpy(), dens[n]))
            c.weight.copy_(pruned)
            masks.append(pruned != 0)
    kept = sum(int(m.sum()) for m in masks) / total

    def sizes() -> int:
        # Sparse fp32: each kept weight in 4 bytes and its 4-bit relative index; biases.
        nnz = sum(int(torch.count_nonzero(c.weight)) for c in convs)
        return int(nnz * 4.5) + 4 * sum(c.out_channels for c in convs)

    stages.append(Stage("pruned (sparse fp32)", evaluate(model, data),
                        sizes(), kept))

    def hold_zeros(opt: torch.optim.Optimizer) -> None:
        opt.step()
        with torch.no_grad():
            for c, m in zip(convs, masks, strict=True):
                c.weight.mul_(m)

    with seeded(seed, threads):
        _retrain(model, data, steps, seed, lr, hold_zeros)
    stages.append(Stage("pruned + retrained (sparse fp32)",
                        evaluate(model, data), sizes(), kept))

    # Cluster: each layer's kept weights share 2**bits - 1 values.
    books, codes = [], []
    with torch.no_grad():
        for c, m in zip(convs, masks, strict=True):
            flat = c.weight.flatten()
            nz = torch.nonzero(m.flatten()).flatten()
            centroids, assigned = share(flat[nz].numpy(), bits)
            book = torch.zeros(len(centroids) + 1)
            book[1:] = torch.from_numpy(centroids)
            code = torch.zeros(flat.numel(), dtype=torch.long)
            code[nz] = torch.from_numpy(assigned)
            c.weight.copy_(book[code].reshape(c.weight.shape))
            books.append(book)
            codes.append(code)

    def container() -> bytes:
        state = {k: v.numpy() for k, v in model.state_dict().items()}
        compressed = compress_network(config, state, 1.0, bits)
        compressed.info["retrained"] = True  # decompressing says so (autosq decompress)
        return to_bytes(compressed)

    stages.append(Stage(f"clustered ({bits} bits)",
                        evaluate(model, data), len(container()), kept))

    def move_centroids(opt: torch.optim.Optimizer) -> None:
        # The paper: a shared value's gradient is the sum of its weights' gradients. Convs'
        # weights follow their centroids; biases take the optimizer's step.
        with torch.no_grad():
            for c, book, code in zip(convs, books, codes, strict=True):
                assert c.weight.grad is not None
                grad = torch.zeros_like(book).index_add_(0, code, c.weight.grad.flatten())
                grad[0] = 0.0  # zero stays zero
                book -= lr * grad
                c.weight.grad = None
        opt.step()
        with torch.no_grad():
            for c, book, code in zip(convs, books, codes, strict=True):
                c.weight.copy_(book[code].reshape(c.weight.shape))

    with seeded(seed, threads):
        _retrain(model, data, steps, seed + 1, lr, move_centroids)
    data_bytes = container()
    stages.append(Stage("clustered + centroids retrained + Huffman",
                        evaluate(model, data), len(data_bytes), kept))
    return data_bytes, stages, model


def report_rows(stages: list[Stage]) -> list[dict[str, Any]]:
    """The Table-2-style rows (fp32 size of the first stage as the reference)."""
    return [s.row(stages[0].size_bytes) for s in stages]


__all__ = ["ALEXNET_BYTES", "Stage", "deep_compress", "report_rows"]
