"""Sizes are what ships: the int8 size counted from the plan equals the bytes of weights in the
exported int8 file (both export paths: the torch export with ONNX Runtime's pre-processing, as
`autosq export` writes it, and the plan's graph, as the search times it)."""

from __future__ import annotations

import random

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from autosq.arch.config import SqueezeNetConfig
from autosq.arch.cost import cost_of
from autosq.arch.model import build
from autosq.arch.plan import plan
from autosq.arch.presets import load_presets, preset
from autosq.arch.space import list_spaces, load_space, make_config
from autosq.errors import ConfigError
from autosq.measure.graph import onnx_from_plan
from autosq.measure.onnx import export_bytes
from autosq.measure.quantize import quantize_bytes
from autosq.outputs.calibrate import random_values


def weight_bytes(model: bytes) -> int:
    return sum(numpy_helper.to_array(t).nbytes
               for t in onnx.load_from_string(model).graph.initializer)


def configs() -> list[SqueezeNetConfig]:
    out = [preset(n, input_size=48, num_classes=10) for n in load_presets()]
    for name in list_spaces():
        space, rng, found = load_space(name), random.Random(name), 0
        while found < 2:
            try:
                out.append(make_config(random_values(space, rng), 48, 10))
                found += 1
            except ConfigError:
                continue
    return out


@pytest.mark.parametrize("config", configs(), ids=lambda c: c.arch_id[:10])
def test_int8_size_is_the_exported_files_weights(config: SqueezeNetConfig) -> None:
    counted = cost_of(plan(config)).size_bytes("int8")
    torch_file = quantize_bytes(export_bytes(build(config, seed=0), 48), 48)
    plan_file = quantize_bytes(onnx_from_plan(plan(config)), 48,
                               np.zeros((1, 3, 48, 48), np.float32), preprocess=False)
    assert counted == weight_bytes(torch_file) == weight_bytes(plan_file)
    fp32 = onnx_from_plan(plan(config))
    assert cost_of(plan(config)).size_bytes("fp32") == weight_bytes(fp32)


def test_int8_costs_more_than_a_byte_a_parameter() -> None:
    c = cost_of(plan(preset("squeezenet1_1")))
    assert c.size_bytes("int8") > c.params
    assert c.size_bytes("fp32") == 4 * c.params and c.size_bytes("fp16") == 2 * c.params
    with pytest.raises(ConfigError, match="precision must be one of"):
        c.size_bytes("int4")
