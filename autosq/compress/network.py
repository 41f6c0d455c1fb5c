"""A whole network's Deep Compression: which tensors are coded, with which density and bits.

Every conv's weight is pruned (by a per-layer density from
:func:`~autosq.compress.schedule.plan_densities`, or given per layer), shared and coded; its
bias is kept as float32. The state_dict names are torchvision's
(``features.3.expand3x3.weight``), so the container decodes into an autosq ``.pt`` state_dict
or, through the plan, into an ONNX model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from autosq.arch.config import SqueezeNetConfig
from autosq.arch.plan import Plan, plan
from autosq.compress.codec import compress_layer
from autosq.compress.container import Compressed, network_size_problem
from autosq.compress.schedule import DEFAULT_BITS, DEFAULT_DENSITY, plan_densities
from autosq.errors import UsageError


def conv_names(p: Plan | SqueezeNetConfig) -> list[tuple[str, int]]:
    """(state_dict prefix, kernel) of every conv, in plan order."""
    layers = (p if isinstance(p, Plan) else plan(p)).layers
    return [(layer.module, layer.kernel) for layer in layers if layer.kind == "conv"]


def compress_network(config: SqueezeNetConfig, state: Mapping[str, Any],
                     density: float = DEFAULT_DENSITY, bits: int = DEFAULT_BITS,
                     densities: Mapping[str, float] | None = None) -> Compressed:
    """Compress ``state`` (state_dict name -> array) of a ``config`` network.

    ``density`` is the share of weights kept overall, spread by the default schedule (1x1
    convs denser, 3x3 convs and the classifier sparser); ``densities`` sets layers by name
    (``features.3.expand3x3``) instead; ``density=1`` prunes nothing more.
    """
    if (problem := network_size_problem(config)) is not None:
        raise UsageError(f"cannot compress this network: {problem}")
    p = plan(config)
    names = conv_names(p)
    arrays: dict[str, np.ndarray] = {}
    for name, _ in names:
        for part in ("weight", "bias"):
            key = f"{name}.{part}"
            if key not in state:
                raise UsageError(f"the model has no tensor {key!r}; expected an autosq "
                                 "SqueezeNet's state_dict")
            arrays[key] = np.asarray(state[key], dtype=np.float32)
    per_layer = plan_densities(p, density)
    for name, d in (densities or {}).items():
        if name not in per_layer:
            raise UsageError(f"no conv layer {name!r}; the layers are "
                             f"{', '.join(per_layer)}")
        if not 0 < d <= 1:
            raise UsageError(f"density of {name} must be in (0, 1]; got {d!r}")
        per_layer[name] = d
    layers = [compress_layer(name, arrays[f"{name}.weight"], arrays[f"{name}.bias"],
                             per_layer[name], bits) for name, _ in names]
    kept = sum(layer.nonzeros for layer in layers)
    total = sum(int(arrays[f"{name}.weight"].size) for name, _ in names)
    return Compressed(config.to_dict(), layers,
                      {"bits": bits, "density": kept / total, "weights": total,
                       "nonzeros": kept, "densities": per_layer})


__all__ = ["DEFAULT_DENSITY", "compress_network", "conv_names"]
