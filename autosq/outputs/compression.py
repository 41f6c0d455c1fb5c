"""``autosq compress`` and ``autosq decompress``: an exported model file in, a ``.dcz``
container out, and back (:mod:`autosq.compress` does the coding).

A model is an autosq export (:mod:`autosq.outputs.model_files` reads and checks it). Compressing
without retraining can ruin a network, so it is never silent: the change of the model's answers
is measured (:mod:`autosq.outputs.compression_check`) and stored with the container. The
container also keeps the source's metadata and card, so decompressing writes a checked ONNX
model (the plan's graph with the decoded weights) or a ``.pt`` state_dict with that metadata,
and a card beside it that says what was done to the weights.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autosq._io import write_files
from autosq.arch.config import SqueezeNetConfig
from autosq.compress.container import Compressed, from_bytes, to_bytes
from autosq.compress.network import DEFAULT_DENSITY, compress_network
from autosq.compress.schedule import DEFAULT_BITS
from autosq.errors import UsageError
from autosq.outputs.compression_check import OutputChange, measure_change
from autosq.outputs.model_files import (
    MODEL_SUFFIXES,
    card_path,
    fp32_bytes,
    load_model,
    read_bounded,
)

# A container is smaller than the fp32 weights it codes (64 MiB at most).
MAX_CONTAINER_BYTES = 80 << 20
# Card entries that describe the exported file itself, not the network: a decompressed file
# gets its own.
_FILE_KEYS = ("size_bytes", "weights_bytes", "checks", "metadata_keys", "format",
              "exported_at", "compress_with", "deep_compression", "load_with")


@dataclass(frozen=True)
class CompressReport:
    """What compressing wrote: sizes before and after, the density and bits, and how much the
    model's answers changed."""

    out: Path
    size_bytes: int
    fp32_bytes: int
    info: dict[str, Any]
    change: OutputChange
    card: dict[str, Any] | None = None

    @property
    def ratio(self) -> float:
        """fp32 weights over the container."""
        return self.fp32_bytes / self.size_bytes


def compress_file(model: Path, out: Path, density: float = DEFAULT_DENSITY,
                  bits: int = DEFAULT_BITS, densities: Mapping[str, float] | None = None,
                  data: str | None = None) -> CompressReport:
    """Compress an exported model into ``out`` (``.dcz``), measuring how much its answers
    change on ``data`` (else the card's data, else generated inputs; see
    :func:`~autosq.outputs.compression_check.measure_change`). The container keeps the model's
    metadata, card and that measurement."""
    if Path(out).suffix.lower() != ".dcz":
        raise UsageError(f"out must end with .dcz; got {out}")
    source = load_model(Path(model))
    compressed = compress_network(source.config, source.state, density, bits, densities)
    change = measure_change(source.config, source.state, compressed.state_dict(), data,
                            source.card)
    compressed.info["source"] = {"file": Path(model).name, "metadata": source.metadata,
                                 "card": source.card}
    compressed.info["check"] = change.to_dict()
    payload = to_bytes(compressed)
    write_files([(Path(out), payload)])
    return CompressReport(Path(out), len(payload), fp32_bytes(source.state), compressed.info,
                          change, source.card)


def read_container(path: Path) -> Compressed:
    """A ``.dcz`` file, checked whole before anything is decoded."""
    return from_bytes(read_bounded(Path(path), "container", (".dcz",), MAX_CONTAINER_BYTES),
                      str(path))


def _table(value: Any) -> dict[str, Any]:
    """A stored mapping, or an empty one for anything else (a container's info is the
    file's)."""
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> dict[str, str]:
    """The string entries of a stored mapping (a container's metadata is the file's)."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _described(compressed: Compressed, container: Path, out: Path,
               config: SqueezeNetConfig) -> tuple[dict[str, str], dict[str, Any]]:
    """The metadata and card of a decoded model: the source's, with what was done to it."""
    info = compressed.info
    source = _table(info.get("source"))
    check = _table(info.get("check")) or None
    done = {"container": container.name, "bits": info.get("bits"),
            "density": info.get("density"), "retrained": info.get("retrained") is True,
            "check": check}
    metadata = {**_strings(source.get("metadata")), "config": json.dumps(config.to_dict()),
                "deep_compression": json.dumps(done)}
    after = check.get("top1_after") if check and check.get("kind") == "val_top1" else None
    if "accuracy" in metadata:  # the source's accuracy is no longer this network's
        metadata["accuracy"] = json.dumps(after)
        metadata["accuracy_kind"] = json.dumps("val_top1" if after is not None else None)
    card = dict(_table(source.get("card")))
    for key in _FILE_KEYS:
        card.pop(key, None)
    if "accuracy" in card:
        card["accuracy_before_compression"] = card["accuracy"]
    how = "with retraining" if done["retrained"] else "without retraining"
    card["accuracy"] = {
        "value": after, "kind": "val_top1" if after is not None else None,
        "note": (f"measured after Deep Compression {how}" if after is not None
                 else f"Deep Compression {how}; see deep_compression")}
    card.update({"config": config.to_dict(), "format": out.suffix.lower()[1:],
                 "decompressed_from": str(container), "deep_compression": done,
                 "metadata_keys": sorted(metadata)})
    return metadata, card


def decompress_file(container: Path, out: Path) -> Path:
    """Decode ``container`` exactly into ``out``: a checked ``.onnx`` model or a ``.pt`` file,
    with the source model's metadata, and its card beside it (``OUT.json``)."""
    container, out = Path(container), Path(out)
    suffix = out.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise UsageError(f"out must end with .onnx or .pt; got {out}")
    compressed = read_container(container)
    config = SqueezeNetConfig.from_dict(compressed.config)  # checked by from_bytes
    state = compressed.state_dict()
    metadata, card = _described(compressed, container, out, config)
    if suffix == ".onnx":
        import onnx

        from autosq.arch.plan import plan
        from autosq.measure.graph import onnx_from_plan

        proto = onnx.load_from_string(onnx_from_plan(plan(config), weights=state))
        onnx.helper.set_model_props(proto, metadata)
        payload = bytes(proto.SerializeToString())
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
        torch.save({"config": config.to_dict(), "metadata": metadata,
                    "state_dict": {k: torch.from_numpy(v) for k, v in state.items()}}, buf)
        payload = buf.getvalue()
    card["size_bytes"] = len(payload)
    write_files([(out, payload), (card_path(out), json.dumps(card, indent=2).encode())])
    return out


__all__ = ["CompressReport", "compress_file", "decompress_file", "read_container"]
