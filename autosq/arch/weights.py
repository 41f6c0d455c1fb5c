"""Weights files a candidate can start from: read, checked, and named with their hash.

A SOURCE is one of

- ``torchvision:squeezenet1_0`` or ``torchvision:squeezenet1_1``: torchvision's published
  ImageNet weights, read from torch's hub cache (``$TORCH_HOME/hub/checkpoints/``, torch's own
  folder), downloaded there when missing and the machine is online, the file's SHA-256 checked
  against the prefix in its published name, as torch.hub does;
- a state_dict file in torchvision's SqueezeNet layout (``.pth``/``.pt``; a bare state_dict, or
  one under ``state_dict`` or ``model``, ``module.`` prefixes removed), read with
  ``weights_only=True``: its tensors' shapes say its architecture;
- an autosq export: a ``.pt`` (config + state_dict) or an fp32 ``.onnx`` whose metadata holds
  the config and the input normalisation.

torchvision's weights (and any state_dict in its layout) expect RGB in [0, 1] normalised by the
ImageNet mean and std (:data:`IMAGENET`); an autosq export states its own. Files are bounded
(:data:`MAX_FILE_MB`) and every value is checked before it is used: a file that is not a
SqueezeNet, holds code, is truncated or lies about its shapes is one :class:`WeightsError`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autosq.arch.hub import MAX_FILE_MB, TORCHVISION, download, hub_dir
from autosq.arch.inherit import NetShape, shape_of_plan, shape_of_state
from autosq.errors import WeightsError

if TYPE_CHECKING:
    import torch

    from autosq.arch.config import SqueezeNetConfig

@dataclass(frozen=True)
class Normalisation:
    """How images are fed to a network: RGB in [0, 1], minus ``mean``, divided by ``std``."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The stored form (cards, metadata, studies)."""
        return {"mean": list(self.mean), "std": list(self.std), "name": self.name}

    @classmethod
    def from_dict(cls, data: Any, where: str = "normalisation") -> Normalisation:
        """Read the stored form, checked (three finite numbers each, std > 0)."""
        try:
            mean = tuple(float(v) for v in data["mean"])
            std = tuple(float(v) for v in data["std"])
            name = str(data.get("name", ""))[:100]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise WeightsError(f"{where} is not a normalisation; expected {{'mean': [3 "
                               "numbers], 'std': [3 numbers > 0]}") from None
        if len(mean) != 3 or len(std) != 3 or not all(-1e3 < v < 1e3 for v in mean) or \
                not all(1e-6 < v < 1e3 for v in std):
            raise WeightsError(f"{where} is not a normalisation; expected 3 means and 3 "
                               "stds > 0 for R, G, B")
        return cls(mean, std, name)


IMAGENET = Normalisation((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "imagenet")


@dataclass
class WeightsFile:
    """A read and checked weights file: its state_dict (torchvision's names), what it is, and
    how its inputs are normalised."""

    spec: str
    path: Path
    sha256: str
    state: dict[str, torch.Tensor]
    shape: NetShape
    normalisation: Normalisation
    config: SqueezeNetConfig | None = None  # an autosq export's own

    def describe(self) -> dict[str, Any]:
        """The lineage a study or card records."""
        return {"source": self.spec, "file": str(self.path), "sha256": self.sha256,
                "macro": self.shape.macro, "num_classes": self.shape.num_classes,
                "normalisation": self.normalisation.to_dict()}


def resolve(spec: str) -> tuple[Path, str]:
    """The file of a SOURCE (downloading torchvision's when missing) and the name it goes by."""
    if spec.startswith("torchvision:"):
        name = spec.split(":", 1)[1]
        if name not in TORCHVISION:
            raise WeightsError(f"unknown torchvision weights {name!r}; known: "
                               f"{', '.join('torchvision:' + n for n in TORCHVISION)}")
        path = hub_dir() / TORCHVISION[name]
        if not path.is_file():
            download(TORCHVISION[name], path)
        return path, spec
    from autosq._io import not_a_file, shown_path

    path = Path(spec).expanduser()
    if (problem := not_a_file(path)) is not None:  # a folder, a link loop, a name too long...
        raise WeightsError(f"weights file {shown_path(spec)} is not a regular file: it "
                           f"{problem}; expected a .pth/.pt "
                           "state_dict in torchvision's SqueezeNet layout, an autosq export "
                           "(.pt or .onnx), or torchvision:squeezenet1_0 / "
                           "torchvision:squeezenet1_1")
    return path, str(path)


def read_weights(spec: str) -> WeightsFile:
    """Read and check the weights of a SOURCE (see the module docstring)."""
    path, name = resolve(spec)
    size = path.stat().st_size
    if size > MAX_FILE_MB << 20:
        raise WeightsError(f"weights file {name} has {size / 2**20:,.0f} MB; a SqueezeNet's "
                           f"weights are a few MB (at most {MAX_FILE_MB} MB read)")
    blob = path.read_bytes()
    sha = hashlib.sha256(blob).hexdigest()
    if path.suffix.lower() == ".onnx":
        return _from_onnx(blob, path, name, sha)
    return _from_torch(path, name, sha)


def _from_torch(path: Path, name: str, sha: str) -> WeightsFile:
    import pickle
    import warnings

    import torch

    _check_unpacked_size(path, name)
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not for users
            warnings.simplefilter("ignore")
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" in str(exc).lower():  # a class or function to call: maybe code
            raise WeightsError(f"{name} holds objects torch will not load safely (code or "
                               "classes, refused with weights_only=True); expected a plain "
                               "state_dict of tensors") from None
        raise WeightsError(f"{name} is not a torch file: torch will not load safely what it "
                           "holds (another format, or a bare pickle; refused with "
                           "weights_only=True); expected a .pth/.pt state_dict saved by "
                           "torch.save") from None
    except Exception as exc:  # zip errors, EOF, "invalid load key": not a whole torch file
        raise WeightsError(f"{name} cannot be read as a torch file (truncated or another "
                           f"format: {type(exc).__name__}); expected a .pth/.pt state_dict") \
            from None
    config, norm = None, IMAGENET
    if isinstance(loaded, dict) and "config" in loaded and "state_dict" in loaded:
        config = _config(loaded["config"], name)  # an autosq .pt export
        stated = loaded.get("autosq")
        stated = stated.get("input_normalisation") if isinstance(stated, dict) else None
        norm = (Normalisation.from_dict(stated, f"{name}'s input_normalisation")
                if stated is not None else _card_normalisation(path))
    state = _state_dict(loaded, name)
    shape = shape_of_state({k: tuple(v.shape) for k, v in state.items()}, name)
    if config is not None:
        shape = _matching(config, shape, name)
    return WeightsFile(name, path, sha, state, shape, norm, config)


def _check_unpacked_size(path: Path, name: str) -> None:
    """Refuse a torch zip file whose records would unpack to more than :data:`MAX_FILE_MB`
    (torch allocates each record's declared size; a compressed record of zeros is a bomb)."""
    import zipfile

    try:
        if not zipfile.is_zipfile(path):
            return  # torch's legacy format: read as it is, bounded by the file's size
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise WeightsError(f"{name} cannot be read as a torch file (a damaged zip archive); "
                           "expected a .pth/.pt state_dict") from None
    if unpacked > MAX_FILE_MB << 20:
        raise WeightsError(f"{name} unpacks to {unpacked / 2**20:,.0f} MB; a SqueezeNet's "
                           f"weights are a few MB (at most {MAX_FILE_MB} MB read): refused")


def _state_dict(loaded: object, name: str) -> dict[str, torch.Tensor]:
    """The tensors of a loaded file: a state_dict, or one under ``state_dict`` or ``model``."""
    import torch

    for key in ("state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    if not isinstance(loaded, dict) or not loaded:
        raise WeightsError(f"{name} is not a state_dict (a mapping of names to tensors); got "
                           f"{type(loaded).__name__}")
    state: dict[str, torch.Tensor] = {}
    for key, value in loaded.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            continue  # optimizer state, counters: not weights
        if not value.is_floating_point():
            raise WeightsError(f"{name}: {key[:100]} holds {value.dtype} values; expected float "
                               "weights (a quantized model cannot be a starting point)")
        if not bool(torch.isfinite(value).all()):
            raise WeightsError(f"{name}: {key[:100]} holds NaN or infinite values")
        state[key.removeprefix("module.")] = value.float()
    return state


def _config(raw: object, name: str) -> SqueezeNetConfig:
    """An autosq export's config, read without trusting it (no repr of what is not plain)."""
    from autosq.arch.config import SqueezeNetConfig
    from autosq.errors import ConfigError

    plain = (int, float, str, bool, type(None))
    if not isinstance(raw, dict) or len(raw) > 64 or not all(
            isinstance(k, str) and isinstance(v, plain) for k, v in raw.items()):
        raise WeightsError(f"{name} has a 'config' that is not a SqueezeNet configuration (a "
                           "flat mapping of names to numbers and strings)")
    try:
        return SqueezeNetConfig.from_dict(raw)
    except ConfigError as exc:
        raise WeightsError(f"{name} has an invalid config: {exc}") from None


def _matching(config: SqueezeNetConfig, shape: NetShape, name: str) -> NetShape:
    """The config's shapes, when the tensors have them (an export that lies is refused)."""
    from autosq.arch.plan import plan

    planned = shape_of_plan(plan(config))
    if planned.convs() != shape.convs():
        raise WeightsError(f"{name}: its tensors do not have the shapes its config says (the "
                           "config or the weights were edited); expected an unmodified autosq "
                           "export")
    return planned


def _card_normalisation(path: Path) -> Normalisation:
    """The normalisation an older autosq export's card states (beside it), else ImageNet's."""
    card = path.with_name(path.name + ".json")
    if not card.is_file() or card.stat().st_size > 1 << 20:
        return IMAGENET
    try:
        data = json.loads(card.read_text())
        norm = data.get("input_normalisation") if isinstance(data, dict) else None
    except (OSError, ValueError, RecursionError):
        return IMAGENET
    return IMAGENET if norm is None else Normalisation.from_dict(norm, f"{card}")


def onnx_metadata(blob: bytes, name: str) -> tuple[Any, dict[str, str], Normalisation | None]:
    """(the ONNX model, its metadata, the input normalisation it states or None) of a file;
    :class:`WeightsError` for what is not an ONNX model."""
    import onnx

    try:
        model = onnx.load_from_string(blob)
    except Exception:
        raise WeightsError(f"{name} is not an ONNX model (truncated or another format)") \
            from None
    if not model.graph.node:  # protobuf reads an empty file (and some others) as no model
        raise WeightsError(f"{name} is not an ONNX model (it holds no graph: empty, or another "
                           "format)")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        # Read from bytes, its external files would be looked up in the working folder.
        raise WeightsError(f"{name} keeps weights in external data files; expected a "
                           "self-contained ONNX file (as 'autosq export' writes)")
    meta = {p.key: p.value for p in model.metadata_props}
    norm = None
    if "input_normalisation" in meta:
        try:
            stated = json.loads(meta["input_normalisation"])
        except (ValueError, RecursionError):
            raise WeightsError(f"{name}: its input_normalisation is not JSON") from None
        # Outside the try: a WeightsError is a ValueError too, and says more than "not JSON".
        norm = Normalisation.from_dict(stated, f"{name}'s input_normalisation")
    return model, meta, norm


def _from_onnx(blob: bytes, path: Path, name: str, sha: str) -> WeightsFile:
    import torch
    from onnx import numpy_helper

    from autosq.arch.plan import plan

    model, meta, stated = onnx_metadata(blob, name)
    if "config" not in meta:
        raise WeightsError(f"{name} carries no autosq config in its metadata; expected an ONNX "
                           "file written by 'autosq export' (or a torchvision-layout .pth)")
    try:
        raw = json.loads(meta["config"])
    except (ValueError, RecursionError):
        raise WeightsError(f"{name} has a config in its metadata that is not JSON") from None
    config = _config(raw, name)
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear", "QLinearConv")
           for n in model.graph.node):
        raise WeightsError(f"{name} is a quantized model: it cannot be a starting point; "
                           "export the trial in fp32")
    tensors = {t.name: t for t in model.graph.initializer}
    alias = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Identity"}
    convs = [layer for layer in plan(config).layers if layer.kind == "conv"]
    nodes = [n for n in model.graph.node if n.op_type == "Conv"]
    if len(nodes) != len(convs):
        raise WeightsError(f"{name} has {len(nodes)} convolutions where its config says "
                           f"{len(convs)}: expected an unmodified autosq export")
    state: dict[str, torch.Tensor] = {}
    for layer, node in zip(convs, nodes, strict=True):
        for role, i in (("weight", 1), ("bias", 2)):
            key = node.input[i] if len(node.input) > i else ""
            key = alias.get(key, key)
            if key not in tensors:
                raise WeightsError(f"{name}: a convolution reads {key[:100]!r}, which is not a "
                                   "weight of the file")
            try:
                array = numpy_helper.to_array(tensors[key]).copy()
            except Exception:  # onnx's errors have no common base: dims, type, data disagree
                raise WeightsError(f"{name}: its weight {key[:100]!r} is damaged (its shape or "
                                   "type does not match its data); expected an unmodified "
                                   "autosq export") from None
            state[f"{layer.module}.{role}"] = torch.from_numpy(array)
    state = _state_dict(state, name)
    shape = _matching(config, shape_of_state({k: tuple(v.shape) for k, v in state.items()},
                                             name), name)
    return WeightsFile(name, path, sha, state, shape, stated or IMAGENET, config)
