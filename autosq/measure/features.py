"""What a latency predictor sees of a candidate: per-layer-kind work and memory traffic, from the
plan (pure Python; no torch, numpy or onnxruntime).

The terms follow what an inference runtime on a CPU spends time on: multiply-accumulates per
conv kind (1x1, 3x3 and the first conv run different kernels, at different efficiency), the
bytes every conv reads and writes, the elements that pools, concats and adds touch, and a fixed
cost per operator. Each term is counted separately per precision (int8 graphs run other
kernels), so one linear model with non-negative weights covers a device's costs.
"""

from __future__ import annotations

from autosq.arch.config import SqueezeNetConfig
from autosq.arch.plan import plan

M = 1e6
_BASE = ("macs_1x1", "macs_3x3", "macs_conv1", "conv_mbytes", "pool_melems", "concat_melems",
         "add_melems", "ops")
PRECISIONS = ("fp32", "int8")  # fp16 candidates run in fp32 graphs (see autosq.arch.cost)
FEATURES = (*(f"{p}_{b}" for p in PRECISIONS for b in _BASE), "const")


def graph_precision(precision: str) -> str:
    """The precision a candidate's timed graph computes in."""
    return "int8" if precision == "int8" else "fp32"


def latency_features(config: SqueezeNetConfig, precision: str = "fp32") -> tuple[float, ...]:
    """The candidate's terms, in :data:`FEATURES` order (MACs and bytes in millions)."""
    terms = dict.fromkeys(_BASE, 0.0)
    width = 1 if precision == "int8" else 4
    for layer in plan(config).layers:
        terms["ops"] += 1
        in_elems = layer.cin * layer.in_hw * layer.in_hw
        if layer.kind == "conv":
            key = ("macs_conv1" if layer.name == "conv1" else
                   "macs_1x1" if layer.kernel == 1 else "macs_3x3")
            terms[key] += layer.macs / M
            terms["conv_mbytes"] += width * (in_elems + layer.out_elems + layer.params) / M
        elif layer.kind in ("maxpool", "avgpool"):
            terms["pool_melems"] += (in_elems + layer.out_elems) / M
        elif layer.kind == "concat":
            terms["concat_melems"] += layer.out_elems / M
        elif layer.kind == "add":
            terms["add_melems"] += layer.out_elems / M
    graph = graph_precision(precision)
    return (*(terms[b] if p == graph else 0.0 for p in PRECISIONS for b in _BASE), 1.0)


def feature_precisions(rows: list[tuple[float, ...]]) -> set[str]:
    """The graph precisions present in a set of feature rows."""
    n = len(_BASE)
    return {p for i, p in enumerate(PRECISIONS) if any(r[i * n + n - 1] for r in rows)}
