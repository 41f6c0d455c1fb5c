"""``autosq compress`` and ``autosq decompress``: an exported model file in, a ``.dcz``
container out, and back (:mod:`autosq.compress` does the coding).

A model is an autosq export: a ``.pt`` file (``{"config", "state_dict", ...}``, read with
``torch.load(weights_only=True)``, so it cannot run code) or an ``.onnx`` file whose metadata
holds its config and whose tensors carry the state_dict's names. Decompressing writes a checked
ONNX model (the plan's graph with the decoded weights) or a ``.pt`` state_dict.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autosq._io import not_a_file, write_files
from autosq.arch.config import SqueezeNetConfig
from autosq.compress.container import Compressed, from_bytes, to_bytes
from autosq.compress.network import DEFAULT_DENSITY, compress_network
from autosq.errors import UsageError
from autosq.memory import check_allocation

MODEL_SUFFIXES = (".pt", ".onnx")
MAX_MODEL_BYTES = 2 << 30  # a SqueezeNet file is megabytes; refuse to read gigabytes


@dataclass(frozen=True)
class CompressReport:
    """What compressing wrote: sizes before and after, the density and bits."""

    out: Path
    size_bytes: int
    fp32_bytes: int
    info: dict[str, Any]

    @property
    def ratio(self) -> float:
        """fp32 weights over the container."""
        return self.fp32_bytes / self.size_bytes


def _read(path: Path, what: str, suffixes: tuple[str, ...]) -> bytes:
    if path.suffix.lower() not in suffixes:
        raise UsageError(f"{what} {path} must end with {' or '.join(suffixes)}")
    if (problem := not_a_file(path)) is not None:
        raise UsageError(f"{what} {path} {problem}; expected a {' or '.join(suffixes)} file")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise UsageError(f"{what} {path} is {size:,} bytes; a SqueezeNet file is megabytes")
    check_allocation(2.0 * size, f"reading {path}", "give a smaller file")
    return path.read_bytes()


def load_model_file(path: Path) -> tuple[SqueezeNetConfig, dict[str, np.ndarray]]:
    """(config, state_dict as float32 arrays) of an autosq ``.pt`` or ``.onnx`` export."""
    data = _read(path, "model", MODEL_SUFFIXES)
    not_ours = (f"model {path} is not an autosq export (expected a file written by `autosq "
                "export`, or a .dcz decompressed to .pt/.onnx)")
    if path.suffix.lower() == ".pt":
        import io
        import warnings

        import torch

        try:
            with warnings.catch_warnings():  # torch warns about foreign pickles, then fails
                warnings.simplefilter("ignore")
                saved = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            config = SqueezeNetConfig.from_dict(saved["config"])
            state = {k: v.detach().float().numpy() for k, v in saved["state_dict"].items()}
        except UsageError:
            raise
        except Exception:  # torch raises many types for files that are not its own
            raise UsageError(not_ours) from None
        return config, state
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load_from_string(data)
        props = {p.key: p.value for p in model.metadata_props}
        config = SqueezeNetConfig.from_dict(json.loads(props["config"]))
        tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        for node in model.graph.node:  # torch's exporter shares equal tensors via Identity
            if node.op_type == "Identity" and node.input[0] in tensors:
                tensors[node.output[0]] = tensors[node.input[0]]
            elif node.op_type == "Constant" and node.attribute:
                tensors[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        convs = [n for n in model.graph.node if n.op_type == "Conv"]
    except UsageError:
        raise
    except Exception:  # onnx's parser raises DecodeError and others for foreign bytes
        raise UsageError(not_ours) from None
    # The i-th Conv node is the plan's i-th conv (both in execution order); an exporter may
    # share equal tensors (the zero biases of an untrained model), so go by the nodes' inputs.
    from autosq.compress.network import conv_names

    names = conv_names(config)
    if len(convs) != len(names):
        raise UsageError(f"{not_ours}: it has {len(convs)} convolutions, its config "
                         f"{len(names)}")
    weights: dict[str, np.ndarray] = {}
    for node, (name, _) in zip(convs, names, strict=True):
        inputs = list(node.input) + [""] * 3
        if inputs[1] not in tensors or inputs[2] not in tensors:
            raise UsageError(f"{not_ours}: conv {node.name or name} has no stored weights")
        weights[f"{name}.weight"] = tensors[inputs[1]].astype(np.float32)
        weights[f"{name}.bias"] = tensors[inputs[2]].astype(np.float32)
    return config, weights


def compress_file(model: Path, out: Path, density: float = DEFAULT_DENSITY, bits: int = 8,
                  densities: Mapping[str, float] | None = None) -> CompressReport:
    """Compress an exported model into ``out`` (``.dcz``)."""
    if out.suffix.lower() != ".dcz":
        raise UsageError(f"out must end with .dcz; got {out}")
    config, state = load_model_file(model)
    compressed = compress_network(config, state, density, bits, densities)
    data = to_bytes(compressed)
    write_files([(out, data)])
    fp32 = 4 * int(compressed.info["weights"]) + 4 * sum(len(x.bias) for x in compressed.layers)
    return CompressReport(out, len(data), fp32, compressed.info)


def read_container(path: Path) -> Compressed:
    """A ``.dcz`` file, checked whole before anything is decoded."""
    return from_bytes(_read(path, "container", (".dcz",)), str(path))


def decompress_file(container: Path, out: Path) -> Path:
    """Decode ``container`` exactly into ``out``: a checked ``.onnx`` model or a ``.pt`` file."""
    suffix = out.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise UsageError(f"out must end with .onnx or .pt; got {out}")
    compressed = read_container(container)
    try:
        config = SqueezeNetConfig.from_dict(compressed.config)
    except UsageError as exc:
        raise UsageError(f"{container} holds a configuration autosq cannot build: {exc}") from None
    state = compressed.state_dict()
    if suffix == ".onnx":
        import onnx

        from autosq.arch.plan import plan
        from autosq.measure.graph import onnx_from_plan

        try:
            payload = onnx_from_plan(plan(config), weights=state)
        except KeyError as exc:
            raise UsageError(f"{container} lacks the tensor {exc} of its network") from None
        try:
            onnx.checker.check_model(onnx.load_from_string(payload), full_check=True)
        except Exception as exc:  # onnx's checker and shape inference raise their own types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"{container} decodes to tensors that do not fit its network: "
                             f"{first}") from None
    else:
        import io

        import torch

        buf = io.BytesIO()
        torch.save({"config": config.to_dict(),
                    "state_dict": {k: torch.from_numpy(v) for k, v in state.items()}}, buf)
        payload = buf.getvalue()
    write_files([(out, payload)])
    return out


__all__ = ["CompressReport", "compress_file", "decompress_file", "load_model_file",
           "read_container"]
