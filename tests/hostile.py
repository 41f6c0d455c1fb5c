"""Hostile ONNX models, generated: tiny files that would allocate or run without bound."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

OPSET = [helper.make_opsetid("", 17)]


def _model(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=OPSET)
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def huge_input(side: int = 30000) -> bytes:
    """A model declaring a side x side float input (3.4 GiB at 30000)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [side, side])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [side, side])
    return _model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "huge", [x], [y]))


def endless_loop(trips: int = 10**15) -> bytes:
    """A model whose Loop runs ``trips`` iterations: it never finishes."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["v_in", "v_in"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1])])
    nodes = [
        helper.make_node("Constant", [], ["n"], value=helper.make_tensor("t", TensorProto.INT64,
                                                                        [], [trips])),
        helper.make_node("Constant", [], ["c"], value=helper.make_tensor("b", TensorProto.BOOL,
                                                                        [], [True])),
        helper.make_node("Loop", ["n", "c", "x"], ["y"], body=body),
    ]
    return _model(helper.make_graph(nodes, "endless", [x], [y]))


def no_input() -> bytes:
    """A model with no input at all."""
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    node = helper.make_node("Constant", [], ["y"],
                            value=helper.make_tensor("t", TensorProto.FLOAT, [1], [1.0]))
    return _model(helper.make_graph([node], "none", [], [y]))


def integer_input() -> bytes:
    """A model whose input is an int64 tensor."""
    x = helper.make_tensor_value_info("x", TensorProto.INT64, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, [1, 4])
    return _model(helper.make_graph([helper.make_node("Neg", ["x"], ["y"])], "int", [x], [y]))


def dynamic_channels() -> bytes:
    """A 4-D model input whose channel dimension is dynamic."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "c", "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c", "h", "w"])
    return _model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "dyn", [x], [y]))


def huge_intermediate(side: int = 20000) -> bytes:
    """A model with a 1-element input that it expands to side x side floats (1.6 GB at 20000)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [side, side])
    shape = helper.make_node("Constant", [], ["s"], value=helper.make_tensor(
        "s", TensorProto.INT64, [2], [side, side]))
    return _model(helper.make_graph([shape, helper.make_node("Expand", ["x", "s"], ["y"])],
                                    "expand", [x], [y]))


def external_data(location: str = "secret.txt", offset: int = 0) -> bytes:
    """A model whose int64 initializer is read from a file next to the process ("external
    data"), used as Gather indices: out of range, the bytes would come back in the error."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])
    s = helper.make_tensor("s", TensorProto.INT64, [1], [0])
    s.ClearField("int64_data")
    s.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", "8")):
        entry = s.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("Gather", ["x", "s"], ["y"], axis=1)], "leak",
                              [x], [y], initializer=[s])
    model = helper.make_model(graph, opset_imports=OPSET)
    model.ir_version = 8
    return model.SerializeToString()
