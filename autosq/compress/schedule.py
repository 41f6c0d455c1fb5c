"""Deep Compression's settings and pruning schedule, in pure Python (the search predicts
compressed sizes from the plan with them; :mod:`autosq.compress.network` and
:mod:`autosq.outputs.deep_compression` prune by them)."""

from __future__ import annotations

from collections.abc import Mapping

from autosq.arch.plan import Plan
from autosq.errors import UsageError

GAP_BITS = 4
MAX_GAP = (1 << GAP_BITS) - 1
BITS = (8, 6, 5, 4)
# The default pruning schedule, in the spirit of the published one: how much denser than the
# target each kind of layer stays. 1x1 convs (few weights each, every one a channel mix) stay
# nearly dense, the 3x3 expands and the classifier (most of the weights) are pruned hardest.
SCHEDULE = {"conv1": 1.5, "1x1": 3.0, "3x3": 1.0, "classifier": 1.0}


DEFAULT_DENSITY = 1 / 3  # the SqueezeNet paper's Deep Compression kept 33% of the weights
# One default for `compress` and `export --compress`: the SqueezeNet paper's smallest lossless
# row (6-bit codes, 510x smaller than AlexNet; with retraining). Without retraining the change
# it makes is measured and shown (autosq.outputs.compression_check).
DEFAULT_BITS = 6


def layer_kind(name: str, kernel: int) -> str:
    """The schedule's kind of a conv, from its state_dict name and kernel size."""
    if name.startswith("features.0."):
        return "conv1"
    if name.startswith("classifier."):
        return "classifier"
    return "3x3" if kernel == 3 else "1x1"


def schedule(sizes: Mapping[str, tuple[int, str]], density: float) -> dict[str, float]:
    """Per-layer densities whose weighted mean is ``density``: each kind of layer
    :data:`SCHEDULE` times denser than the rest, capped at 1 (``sizes``: name -> (weights,
    kind))."""
    if not 0 < density <= 1:
        raise UsageError(f"density must be in (0, 1]; got {density!r}")
    if density == 1:
        return dict.fromkeys(sizes, 1.0)
    total = sum(n for n, _ in sizes.values())

    def kept(scale: float) -> float:
        return sum(n * min(1.0, density * SCHEDULE[k] * scale) for n, k in sizes.values())

    lo, hi = 0.0, 1.0 / density
    for _ in range(60):  # bisection on the common scale
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if kept(mid) < density * total else (lo, mid)
    return {name: min(1.0, density * SCHEDULE[k] * hi) for name, (_, k) in sizes.items()}


def plan_densities(p: Plan, density: float) -> dict[str, float]:
    """Each conv's density (by state_dict prefix, ``features.3.expand3x3``) for ``density``
    kept overall, by :func:`schedule` over the plan's layers."""
    return schedule({layer.module: (layer.params - layer.cout, layer_kind(layer.module,
                                                                          layer.kernel))
                     for layer in p.layers if layer.kind == "conv"}, density)


__all__ = ["BITS", "DEFAULT_BITS", "DEFAULT_DENSITY", "GAP_BITS", "MAX_GAP", "SCHEDULE",
           "layer_kind", "plan_densities", "schedule"]
