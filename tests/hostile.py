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


# -- hostile Deep Compression containers and model files ---------------------------------------

def tiny_config(num_classes: int = 4) -> object:
    """A small valid SqueezeNet (a few thousand weights): containers of it are quick to make."""
    from autosq.arch.config import SqueezeNetConfig

    return SqueezeNetConfig(base_e=16, incr_e=0, freq=1, pct_3x3=0.5, sr=0.25, macro="v1.1",
                            num_classes=num_classes, input_size=32, conv1_filters=8)


def seal(header: bytes | dict, payload: bytes = b"", version: int = 1) -> bytes:
    """A .dcz with this header and payload and a valid checksum: anyone can reseal a container,
    so the checksum proves nothing about its contents."""
    import hashlib
    import json
    import struct

    from autosq.compress.container import MAGIC

    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    body = struct.pack("<8sHI", MAGIC, version, len(head)) + head + payload
    return body + hashlib.sha256(body).digest()


def split(data: bytes) -> tuple[dict, bytes]:
    """(header, payload) of a container."""
    import json
    import struct

    hlen = struct.unpack_from("<8sHI", data)[2]
    return json.loads(data[14:14 + hlen]), data[14 + hlen:-32]


def valid_container(config: object | None = None, seed: int = 0) -> bytes:
    """A real container of ``config`` (default :func:`tiny_config`), seeded weights."""
    from autosq.arch.model import build
    from autosq.compress.container import to_bytes
    from autosq.compress.network import compress_network

    config = config or tiny_config()
    state = {k: v.numpy() for k, v in build(config, seed=seed).state_dict().items()}
    return to_bytes(compress_network(config, state))  # type: ignore[arg-type]


def zero_bomb(config: object, declared: int | None = None) -> bytes:
    """A container whose every stream is all zero bits under 1-bit Huffman codes: the most
    symbols a byte can declare; its first layer declares ``declared`` entries (default: as
    many as it has weights, like every other layer)."""
    import math

    import numpy as np

    from autosq.compress.container import expected_layers
    from autosq.compress.huffman import HUFFMAN

    layers, payload = [], []
    for i, (name, (shape, bias)) in enumerate(expected_layers(config).items()):  # type: ignore[arg-type]
        n = declared if declared and i == 0 else math.prod(shape)
        codes = bytes([HUFFMAN, 1, 1] + [0] * 62) + bytes((n + 7) // 8)
        gaps = bytes([HUFFMAN, 1, 1] + [0] * 14) + bytes((n + 7) // 8)
        layers.append({"name": name, "shape": list(shape), "bits": 6, "entries": n,
                       "codebook_len": 2, "bias_len": bias, "codes_bytes": len(codes),
                       "gaps_bytes": len(gaps)})
        payload += [np.array([0, 0.5], "<f4").tobytes(), np.zeros(bias, "<f4").tobytes(),
                    codes, gaps]
    return seal({"format": "autosq deep compression", "gap_bits": 4,
                 "config": config.to_dict(), "layers": layers, "info": {}},  # type: ignore[attr-defined]
                b"".join(payload))


def laughs_pt(width: int = 10, depth: int = 40, where: str = "config") -> bytes:
    """A 2 KB .pt whose config (or config.base_e) is a "billion laughs": one list shared
    ``width`` times at each of ``depth`` levels (10**40 elements if expanded)."""
    import io

    import torch

    bomb: list = [1]
    for _ in range(depth):
        bomb = [bomb] * width
    config = {"base_e": bomb} if where == "base_e" else bomb
    buf = io.BytesIO()
    torch.save({"config": config, "state_dict": {}}, buf)
    return buf.getvalue()
