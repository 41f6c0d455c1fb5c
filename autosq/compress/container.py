"""The ``.dcz`` container: one compressed network, documented, versioned and checksummed.

Layout (all integers little-endian)::

    magic     8 bytes   b"AUTOSQDC"
    version   u16       FORMAT_VERSION
    hlen      u32       length of the header
    header    hlen      UTF-8 JSON: {"config": the SqueezeNetConfig, "layers": [...], ...}
    payload             per layer, in header order: codebook (float32 x codebook_len),
                        bias (float32 x bias_len), code stream, gap stream
    sha256    32 bytes  of everything before it

Each header layer entry holds ``name``, ``shape``, ``bits``, ``entries`` (the stream's
symbol count), ``codebook_len``, ``bias_len``, ``codes_bytes`` and ``gaps_bytes``. A stream
is :mod:`autosq.compress.huffman`'s stored form (its mode byte, its code table, its bits).
A container that is truncated, altered, of another version, or not one at all is refused with
:class:`ContainerError` before anything is decoded.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autosq.compress.codec import GAP_BITS, LayerCode
from autosq.compress.huffman import CodingError, decode, encode
from autosq.errors import UsageError

MAGIC = b"AUTOSQDC"
FORMAT_VERSION = 1
_HEAD = struct.Struct("<8sHI")


class ContainerError(UsageError):
    """A file that is not a readable ``.dcz`` container."""


@dataclass
class Compressed:
    """A compressed network: its config (a SqueezeNetConfig's dict), layers and notes."""

    config: dict[str, Any]
    layers: list[LayerCode]
    info: dict[str, Any] = field(default_factory=dict)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every weight and bias, decoded (state_dict names: ``features.0.weight``, ...)."""
        out: dict[str, np.ndarray] = {}
        for layer in self.layers:
            out[f"{layer.name}.weight"] = layer.weights()
            out[f"{layer.name}.bias"] = layer.bias.copy()
        return out


def to_bytes(c: Compressed) -> bytes:
    """The container of ``c``."""
    entries, payload = [], []
    for layer in c.layers:
        codes = encode(layer.codes, 1 << layer.bits).data
        gaps = encode(layer.gaps, 1 << GAP_BITS).data
        entries.append({"name": layer.name, "shape": list(layer.shape), "bits": layer.bits,
                        "entries": len(layer.codes), "codebook_len": len(layer.codebook),
                        "bias_len": len(layer.bias), "codes_bytes": len(codes),
                        "gaps_bytes": len(gaps)})
        payload += [layer.codebook.astype("<f4").tobytes(), layer.bias.astype("<f4").tobytes(),
                    codes, gaps]
    header = json.dumps({"format": "autosq deep compression", "gap_bits": GAP_BITS,
                         "config": c.config, "layers": entries, "info": c.info},
                        separators=(",", ":")).encode()
    body = _HEAD.pack(MAGIC, FORMAT_VERSION, len(header)) + header + b"".join(payload)
    return body + hashlib.sha256(body).digest()


def from_bytes(data: bytes, where: str = "the container") -> Compressed:
    """Read a container; :class:`ContainerError` (one line naming ``where``) when it is not a
    whole, unaltered one of this version."""
    def fail(why: str) -> ContainerError:
        return ContainerError(f"{where} is not a readable .dcz container: {why}")

    if len(data) < _HEAD.size + 32 or not data.startswith(MAGIC):
        raise fail("it does not start with the .dcz magic bytes (or is empty)")
    _, version, hlen = _HEAD.unpack_from(data)
    if version != FORMAT_VERSION:
        raise fail(f"format version {version}; this autosq reads version {FORMAT_VERSION}")
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise fail("its checksum does not match (truncated or altered)")
    try:
        header = json.loads(body[_HEAD.size:_HEAD.size + hlen])
        if header.get("gap_bits") != GAP_BITS:
            raise fail(f"gap bits {header.get('gap_bits')}; expected {GAP_BITS}")
        pos = _HEAD.size + hlen
        layers = []
        for e in header["layers"]:
            bits, n = int(e["bits"]), int(e["entries"])
            sizes = (4 * int(e["codebook_len"]), 4 * int(e["bias_len"]), int(e["codes_bytes"]),
                     int(e["gaps_bytes"]))
            parts = []
            for size in sizes:
                if size < 0 or pos + size > len(body):
                    raise fail(f"layer {e['name']} runs past the end")
                parts.append(body[pos:pos + size])
                pos += size
            codebook = np.frombuffer(parts[0], dtype="<f4").astype(np.float32)
            bias = np.frombuffer(parts[1], dtype="<f4").astype(np.float32)
            codes = decode(parts[2], n, 1 << bits)
            gaps = decode(parts[3], n, 1 << GAP_BITS)
            if n and codes.max() >= len(codebook):
                raise fail(f"layer {e['name']} has a code outside its codebook")
            layer = LayerCode(str(e["name"]), tuple(int(d) for d in e["shape"]), bits,
                              codebook, gaps, codes, bias)
            layer.positions()  # within the tensor
            layers.append(layer)
        if pos != len(body):
            raise fail("bytes left after the last layer")
        return Compressed(dict(header["config"]), layers, dict(header.get("info", {})))
    except ContainerError:
        raise
    except (CodingError, ValueError, KeyError, TypeError) as exc:
        raise fail(str(exc)) from None


__all__ = ["FORMAT_VERSION", "MAGIC", "Compressed", "ContainerError", "from_bytes", "to_bytes"]
