"""The timing graph written from the plan equals the torch export: same operators (the torch
exporter adds Identity nodes that ONNX Runtime removes), same outputs for the same weights."""

from __future__ import annotations

import collections
import random

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from autosq.arch.config import SqueezeNetConfig
from autosq.arch.model import build
from autosq.arch.plan import plan
from autosq.arch.presets import preset
from autosq.arch.space import list_spaces, load_space, make_config
from autosq.errors import ConfigError
from autosq.measure.graph import onnx_from_plan
from autosq.measure.onnx import export_bytes
from autosq.measure.quantize import quantize_bytes
from autosq.outputs.calibrate import random_values


def ops(model: bytes) -> collections.Counter[str]:
    return collections.Counter(n.op_type for n in onnx.load_from_string(model).graph.node
                               if n.op_type != "Identity")


def run(model: bytes, x: np.ndarray) -> np.ndarray:
    return np.asarray(ort.InferenceSession(model).run(None, {"input": x})[0])


def space_configs(per_space: int = 3) -> list[SqueezeNetConfig]:
    """A few random valid configs of every shipped space."""
    out = []
    for name in list_spaces():
        space, rng = load_space(name), random.Random(name)
        found: list[SqueezeNetConfig] = []
        while len(found) < per_space:
            try:
                found.append(make_config(random_values(space, rng), 48, 10))
            except ConfigError:
                continue
        out += found
    return out


CONFIGS = [preset(n, input_size=64, num_classes=10, bypass=b)
           for n in ("squeezenet1_0", "squeezenet1_1")
           for b in ("none", "simple", "complex")] + space_configs()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.arch_id[:10])
def test_plan_graph_equals_the_torch_export(config: SqueezeNetConfig) -> None:
    model = build(config, seed=1)
    torch_onnx = export_bytes(model, config.input_size)
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    ours = onnx_from_plan(plan(config), weights=weights)
    onnx.checker.check_model(onnx.load_from_string(ours), full_check=True)
    assert ops(ours) == ops(torch_onnx)
    x = np.random.default_rng(0).standard_normal(
        (1, 3, config.input_size, config.input_size)).astype(np.float32)
    np.testing.assert_allclose(run(ours, x), run(torch_onnx, x), rtol=1e-5, atol=1e-6)


def test_seeded_weights_are_reproducible_and_quantize() -> None:
    config = preset("squeezenet1_1", input_size=64, num_classes=10)
    a, b = onnx_from_plan(plan(config), seed=3), onnx_from_plan(plan(config), seed=3)
    assert a == b != onnx_from_plan(plan(config), seed=4)
    q = quantize_bytes(a, 64, np.zeros((1, 3, 64, 64), np.float32), preprocess=False)
    assert ops(q)["QuantizeLinear"] > 0
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    assert run(q, x).shape == run(a, x).shape == (1, 10)
