"""Model files autosq reads back (``autosq compress``): an autosq export, ``.pt`` or ``.onnx``,
with its metadata and the JSON card beside it.

Such a file is untrusted: it is read in bounded memory (its size is capped, a ``.pt`` is loaded
with ``torch.load(weights_only=True)``, so it cannot run code), and everything it declares is
checked against the network its config describes before a tensor is used: every conv's weight
and bias present with that network's shape, float, finite, stored in the file itself (an ONNX
tensor's "external data" would read other files). Values from the file appear in messages only
cut short (:func:`autosq.errors.shown`).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autosq._io import not_a_file
from autosq.arch.config import SqueezeNetConfig
from autosq.compress.container import (
    MAX_DEPTH,
    expected_layers,
    json_depth,
    network_size_problem,
)
from autosq.errors import UsageError, shown
from autosq.memory import check_allocation

MODEL_SUFFIXES = (".pt", ".onnx")
# The largest network autosq compresses is 64 MiB of fp32 weights: twice that is room for any
# file of one, and refuses gigabytes before they are read.
MAX_MODEL_BYTES = 128 << 20
MAX_CARD_BYTES = 256 << 10  # a card is a few kilobytes
_SCALARS = (type(None), bool, int, float, str)


@dataclass
class ModelFile:
    """A checked model file: its config, conv weights and biases (float32, by state_dict name),
    its metadata (ONNX metadata properties, or a ``.pt``'s own entries, as strings) and the
    card beside it (None when there is none, or it cannot be read)."""

    path: Path
    config: SqueezeNetConfig
    state: dict[str, np.ndarray]
    metadata: dict[str, str] = field(default_factory=dict)
    card: dict[str, Any] | None = None


def read_bounded(path: Path, what: str, suffixes: tuple[str, ...],
                 limit: int = MAX_MODEL_BYTES) -> bytes:
    """The bytes of a file the user named, refused (one line) when it has the wrong suffix, is
    not a regular file, or is larger than ``limit``."""
    if path.suffix.lower() not in suffixes:
        raise UsageError(f"{what} {path} must end with {' or '.join(suffixes)}")
    if (problem := not_a_file(path)) is not None:
        raise UsageError(f"{what} {path} {problem}; expected a {' or '.join(suffixes)} file")
    size = path.stat().st_size
    if size > limit:
        raise UsageError(f"{what} {path} is {size:,} bytes, over the {limit >> 20} MiB autosq "
                         "reads; a SqueezeNet's file is megabytes")
    check_allocation(2.0 * size, f"reading {path}", "give a smaller file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def card_path(model: Path) -> Path:
    """Where a model's card lies: ``MODEL.json`` beside it (``m.onnx`` -> ``m.onnx.json``)."""
    return model.with_name(model.name + ".json")


def read_card(model: Path) -> dict[str, Any] | None:
    """The JSON card beside ``model``, or None (none, too large, nested too deep, not an
    object): a card only describes, so one that cannot be read is left out, not fatal."""
    path = card_path(model)
    try:
        if not path.is_file() or path.stat().st_size > MAX_CARD_BYTES:
            return None
        raw = path.read_bytes()
        if json_depth(raw) > MAX_DEPTH:
            return None
        card = json.loads(raw)
    except (OSError, ValueError, RecursionError):
        return None
    return card if isinstance(card, dict) else None


def _config(path: Path, data: Any, where: str) -> SqueezeNetConfig:
    """The config of a file, checked: a small object of plain values, a buildable network of
    at most the size autosq compresses."""
    if not isinstance(data, dict) or len(data) > 64 or not all(
            isinstance(k, str) and isinstance(v, _SCALARS) for k, v in data.items()):
        raise UsageError(f"model {path}: the config in {where} is {shown(data)}; expected an "
                         "object of the metaparameters, as `autosq export` writes")
    try:
        config = SqueezeNetConfig.from_dict(data)
    except UsageError as exc:
        raise UsageError(f"model {path}: the config in {where} cannot be built: {exc}") from None
    if (problem := network_size_problem(config)) is not None:
        raise UsageError(f"model {path}: {problem}")
    return config


def _check_tensor(path: Path, name: str, shape: tuple[int, ...], got: tuple[int, ...],
                  where: str) -> None:
    if got != shape:
        raise UsageError(f"model {path}: tensor {name} has shape {shown(list(got))} but the "
                         f"config in {where} describes {list(shape)}: the file's config does "
                         "not match its weights")


def _finite(path: Path, state: dict[str, np.ndarray]) -> None:
    for name, value in state.items():
        if not np.isfinite(value).all():
            raise UsageError(f"model {path}: {name} holds values that are not finite numbers "
                             "(NaN or infinity); expected a trained network's weights")


def _not_ours(path: Path) -> str:
    return (f"model {path} is not an autosq export (expected a file written by `autosq "
            "export` or `autosq decompress`)")


def _load_pt(path: Path, data: bytes) -> ModelFile:
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles, then fails
            warnings.simplefilter("ignore")
            saved = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types for files that are not its own
        raise UsageError(_not_ours(path)) from None
    if not isinstance(saved, dict) or not isinstance(saved.get("state_dict"), dict):
        raise UsageError(_not_ours(path))
    config = _config(path, saved.get("config"), "its 'config' entry")
    tensors = saved["state_dict"]
    state: dict[str, np.ndarray] = {}
    for layer, (shape, bias) in expected_layers(config).items():
        for key, want in ((f"{layer}.weight", shape), (f"{layer}.bias", (bias,))):
            value = tensors.get(key)
            if not isinstance(value, torch.Tensor) or not value.is_floating_point():
                raise UsageError(f"model {path} has no float tensor {key!r}; expected an autosq "
                                 "SqueezeNet's state_dict")
            _check_tensor(path, key, want, tuple(value.shape), "its 'config' entry")
            state[key] = value.detach().float().numpy()
    metadata: dict[str, str] = {}
    for entry in ("autosq", "metadata"):
        extra = saved.get(entry)
        if isinstance(extra, dict):
            metadata.update({k: v if isinstance(v, str) else json.dumps(v)
                             for k, v in list(extra.items())[:64]
                             if isinstance(k, str) and isinstance(v, _SCALARS)})
    return ModelFile(path, config, state, _kept(metadata))


def _load_onnx(path: Path, data: bytes) -> ModelFile:
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load_from_string(data)
    except Exception:  # onnx's parser raises DecodeError and others for foreign bytes
        raise UsageError(_not_ours(path)) from None
    props = {p.key: p.value for p in model.metadata_props}
    text = props.get("config")
    if text is None:
        raise UsageError(f"{_not_ours(path)}: it has no autosq config in its metadata")
    try:
        raw = (json.loads(text) if len(text) <= MAX_CARD_BYTES
               and json_depth(text.encode()) <= MAX_DEPTH else text)
    except (ValueError, RecursionError):
        raw = text
    config = _config(path, raw, "its metadata")
    tensors = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:  # torch's exporter shares equal tensors via Identity
        if node.op_type == "Identity" and node.input and node.input[0] in tensors:
            tensors[node.output[0]] = tensors[node.input[0]]
        elif node.op_type == "Constant" and node.attribute and node.attribute[0].HasField("t"):
            tensors[node.output[0]] = node.attribute[0].t
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    expected = expected_layers(config)
    if len(convs) != len(expected):
        raise UsageError(f"{_not_ours(path)}: it has {len(convs)} convolutions, its config "
                         f"{len(expected)}")
    # The i-th Conv node is the plan's i-th conv (both in execution order); an exporter may
    # share equal tensors (the zero biases of an untrained model), so go by the nodes' inputs.
    state: dict[str, np.ndarray] = {}
    for node, (layer, (shape, bias)) in zip(convs, expected.items(), strict=True):
        inputs = [*node.input, "", "", ""]
        for key, name, want in ((f"{layer}.weight", inputs[1], shape),
                                (f"{layer}.bias", inputs[2], (bias,))):
            t = tensors.get(name)
            if t is None:
                raise UsageError(f"{_not_ours(path)}: conv {shown(node.name or layer)} has no "
                                 "stored weights")
            if t.data_location == onnx.TensorProto.EXTERNAL or t.data_type not in (
                    onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE):
                raise UsageError(f"model {path}: tensor {key} is not float data stored in the "
                                 "file (autosq reads no external data)")
            _check_tensor(path, key, want, tuple(int(d) for d in t.dims), "its metadata")
            try:
                state[key] = numpy_helper.to_array(t).astype(np.float32)
            except Exception:  # data shorter or longer than its dims
                raise UsageError(f"model {path}: tensor {key}'s data does not match its "
                                 "shape") from None
    return ModelFile(path, config, state, _kept(props))


def _kept(metadata: dict[str, str]) -> dict[str, str]:
    """The metadata a container carries on: at most 64 entries of at most 64 KiB (an export's
    are a few hundred bytes; a file's own metadata must not outgrow the container's header)."""
    small = [(k, v) for k, v in metadata.items() if len(k) <= 200 and len(v) <= 1 << 16]
    return dict(small[:64])


def load_model(path: Path) -> ModelFile:
    """Read and check an autosq ``.pt`` or ``.onnx`` export, and the card beside it."""
    path = Path(path)
    data = read_bounded(path, "model", MODEL_SUFFIXES)
    loaded = _load_pt(path, data) if path.suffix.lower() == ".pt" else _load_onnx(path, data)
    _finite(path, loaded.state)
    loaded.card = read_card(path)
    return loaded


def fp32_bytes(state: dict[str, np.ndarray]) -> int:
    """What the tensors take at fp32."""
    return 4 * sum(math.prod(v.shape) for v in state.values())


__all__ = ["MAX_MODEL_BYTES", "MODEL_SUFFIXES", "ModelFile", "card_path", "fp32_bytes",
           "load_model", "read_bounded", "read_card"]
