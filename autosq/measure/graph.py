"""The timing graph of a candidate written straight from its plan, without torch.

Building a torch model and tracing it costs 0.1 s and more per candidate; the search times
only the graph, whose latency does not depend on the weights' values. :func:`onnx_from_plan`
writes the same operators the torch exporter writes for :mod:`autosq.arch.model` (Conv, Relu,
Concat, Add, MaxPool with ceil mode, GlobalAveragePool, Flatten; opset 17) with seeded weights
drawn as torchvision initialises SqueezeNet, or with given weights (a state_dict's arrays), so
that outputs can be compared with the torch export (``tests/measure/test_graph.py``; latency:
``bench/export_bench.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from autosq.memory import check_allocation

if TYPE_CHECKING:
    from autosq.arch.plan import Layer, Plan

OPSET = 17
IR_VERSION = 8  # the IR version of opset 17, as torch writes it
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def _init_weights(layer: Layer, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # float32 straight from the generator: a large candidate's weights take a tenth of the time
    # float64 draws and a conversion would.
    shape = (layer.cout, layer.cin, layer.kernel, layer.kernel)
    if layer.name == "conv10":
        w = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.01)
    else:  # kaiming_uniform_ with torch's defaults: bound sqrt(6 / fan_in)
        bound = np.float32(np.sqrt(6.0 / (layer.cin * layer.kernel * layer.kernel)))
        w = (rng.random(shape, dtype=np.float32) * 2 - 1) * bound
    return w, np.zeros(layer.cout, np.float32)


def onnx_from_plan(p: Plan, seed: int = 0,
                   weights: Mapping[str, np.ndarray] | None = None) -> bytes:
    """The fp32 ONNX model of ``p`` (batch 1, its input size), serialized.

    ``weights`` maps state_dict names (``features.0.weight``, ...) to arrays; without it the
    weights are drawn from ``seed``.
    """
    from onnx import TensorProto, helper, numpy_helper

    check_allocation(12.0 * p.params, f"a network of {p.params:,} parameters",
                     "ask for fewer classes or a smaller architecture")
    rng = np.random.default_rng(seed)
    nodes = []
    inits = []
    # A conv's output is named after its layer before its ReLU, and the ReLU's output after the
    # layer, so later layers read the names the plan gives them.
    for layer in p.layers:
        out = layer.name
        if layer.kind == "conv":
            if weights is not None:
                w = np.asarray(weights[f"{layer.module}.weight"], np.float32)
                b = np.asarray(weights[f"{layer.module}.bias"], np.float32)
            else:
                w, b = _init_weights(layer, rng)
            inits += [numpy_helper.from_array(w, f"{layer.name}.weight"),
                      numpy_helper.from_array(b, f"{layer.name}.bias")]
            conv_out = f"{out}.conv" if layer.relu else out
            pad = layer.padding
            nodes.append(helper.make_node(
                "Conv", [layer.inputs[0], f"{layer.name}.weight", f"{layer.name}.bias"],
                [conv_out], kernel_shape=[layer.kernel] * 2, strides=[layer.stride] * 2,
                pads=[pad] * 4, dilations=[1, 1], group=1))
            if layer.relu:
                nodes.append(helper.make_node("Relu", [conv_out], [out]))
        elif layer.kind == "maxpool":
            nodes.append(helper.make_node("MaxPool", list(layer.inputs), [out], ceil_mode=1,
                                          kernel_shape=[3, 3], strides=[2, 2],
                                          pads=[0, 0, 0, 0]))
        elif layer.kind == "concat":
            nodes.append(helper.make_node("Concat", list(layer.inputs), [out], axis=1))
        elif layer.kind == "add":
            nodes.append(helper.make_node("Add", list(layer.inputs), [out]))
        elif layer.kind == "avgpool":
            nodes.append(helper.make_node("GlobalAveragePool", list(layer.inputs), [out]))
    nodes.append(helper.make_node("Flatten", [p.layers[-1].name], [OUTPUT_NAME], axis=1))
    size = p.config.input_size
    graph = helper.make_graph(
        nodes, "squeezenet",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT,
                                       [1, p.config.num_classes])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="autosq", ir_version=IR_VERSION)
    return bytes(model.SerializeToString())


__all__ = ["onnx_from_plan"]
