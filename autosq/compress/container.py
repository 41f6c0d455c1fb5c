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
import math
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autosq.arch.config import SqueezeNetConfig
from autosq.arch.plan import plan
from autosq.compress.codec import GAP_BITS, LayerCode
from autosq.compress.huffman import CodingError, decode, encode
from autosq.compress.schedule import BITS
from autosq.errors import UsageError, shown
from autosq.memory import check_allocation

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


# Bounds on what a container may declare, checked before anything is decoded. A header is a
# few kilobytes; no JSON autosq writes nests deeper than 4.
MAX_HEADER_BYTES = 1 << 20
MAX_DEPTH = 16
# The largest network autosq compresses and decodes: 2**24 weights (64 MiB at fp32, 13 times
# SqueezeNet 1.0). Decoding one to a checked ONNX file takes under 1 GiB and about 10 s here,
# whatever a container declares (a hostile one cannot declare a larger network).
MAX_WEIGHTS = 1 << 24
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def json_depth(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (strings skipped), without parsing
    it: a header of 200,000 ``[`` is refused before Python's parser would recurse into it."""
    bare = np.frombuffer(_STRING.sub(b'""', raw), dtype=np.uint8)
    step = (np.isin(bare, (ord("["), ord("{"))).astype(np.int64)
            - np.isin(bare, (ord("]"), ord("}"))))
    return int(np.cumsum(step).max(initial=0))


def expected_layers(config: SqueezeNetConfig) -> dict[str, tuple[tuple[int, ...], int]]:
    """name -> (weight shape, bias length) of every conv of ``config``'s network, in order."""
    return {layer.module: ((layer.cout, layer.cin, layer.kernel, layer.kernel), layer.cout)
            for layer in plan(config).layers if layer.kind == "conv"}


def network_size_problem(config: SqueezeNetConfig) -> str | None:
    """Why autosq will not compress or decode ``config``'s network (too many weights for the
    memory it has), or None."""
    weights = sum(math.prod(shape) for shape, _ in expected_layers(config).values())
    if weights > MAX_WEIGHTS:
        return (f"its network has {weights:,} weights; autosq's Deep Compression handles up to "
                f"{MAX_WEIGHTS:,} (64 MiB at fp32)")
    return None


def _count(entry: dict[str, Any], key: str, limit: int) -> int:
    value = entry.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise ValueError(f"its {key} is {shown(value)}; expected a whole number in 0..{limit:,}")
    return value


def _layer_entry(e: Any, expected: dict[str, tuple[tuple[int, ...], int]],
                 seen: set[str]) -> tuple[str, int, tuple[int, ...], list[int]]:
    """(name, bits, shape, byte sizes of its four parts) of one header layer, checked against
    the network its config declares (ValueError saying what is wrong)."""
    if not isinstance(e, dict):
        raise ValueError(f"a layer entry is {shown(e)}; expected a JSON object")
    name = e.get("name")
    if not isinstance(name, str) or name not in expected:
        raise ValueError(f"layer {shown(name)} is not a conv of its network (those are "
                         f"{', '.join(list(expected)[:3])}, ...)")
    if name in seen:
        raise ValueError(f"layer {name} appears twice")
    seen.add(name)
    shape, bias_len = expected[name]
    if e.get("shape") != list(shape):
        raise ValueError(f"layer {name} has shape {shown(e.get('shape'))}; its network's is "
                         f"{list(shape)}")
    bits = e.get("bits")
    if bits not in BITS or isinstance(bits, bool):
        raise ValueError(f"layer {name} has {shown(bits)} bits; expected one of "
                         f"{', '.join(map(str, BITS))}")
    n = math.prod(shape)
    _count(e, "entries", n)  # each entry lands on a distinct weight
    if _count(e, "bias_len", bias_len) != bias_len:
        raise ValueError(f"layer {name} has {e['bias_len']} biases; its network has {bias_len}")
    sizes = [4 * _count(e, "codebook_len", 1 << int(bits)), 4 * bias_len,
             _count(e, "codes_bytes", 1 + n), _count(e, "gaps_bytes", 1 + n)]
    return name, int(bits), shape, sizes


def from_bytes(data: bytes, where: str = "the container") -> Compressed:
    """Read a container; :class:`ContainerError` (one line naming ``where``) when it is not a
    whole, unaltered one of this version, or declares anything its network does not have.
    Everything the header declares is checked against the network its config describes before
    a stream is decoded, so a file cannot make decoding take more than that network."""
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
    if hlen > MAX_HEADER_BYTES or _HEAD.size + hlen > len(body):
        raise fail(f"its header declares {hlen:,} bytes (at most {MAX_HEADER_BYTES:,}, within "
                   "the file)")
    raw = body[_HEAD.size:_HEAD.size + hlen]
    if json_depth(raw) > MAX_DEPTH:
        raise fail(f"its header nests deeper than {MAX_DEPTH} levels")
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):
        raise fail("its header is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("layers"), list) \
            or not isinstance(header.get("config"), dict) \
            or not isinstance(header.get("info", {}), dict):
        raise fail("its header is not an object with a config, layers and info")
    if header.get("gap_bits") != GAP_BITS:
        raise fail(f"gap bits {shown(header.get('gap_bits'))}; expected {GAP_BITS}")
    try:
        config = SqueezeNetConfig.from_dict(header["config"])
        expected = expected_layers(config)
    except UsageError as exc:
        raise fail(f"its configuration cannot be built: {exc}") from None
    if (problem := network_size_problem(config)) is not None:
        raise fail(problem)
    try:
        seen: set[str] = set()
        entries = [_layer_entry(e, expected, seen) for e in header["layers"]]
        if len(seen) != len(expected):
            missing = [n for n in expected if n not in seen]
            raise ValueError(f"it lacks layer {missing[0]} of its network")
        if _HEAD.size + hlen + sum(sum(sizes) for *_, sizes in entries) != len(body):
            raise ValueError("its layers' declared sizes do not add up to the file's")
        check_allocation(10.0 * sum(math.prod(shape) for _, _, shape, _ in entries),
                         f"decoding {where}", "decode it on a machine with more memory")
        pos = _HEAD.size + hlen
        layers = []
        for e, (name, bits, shape, sizes) in zip(header["layers"], entries, strict=True):
            parts = []
            for size in sizes:
                parts.append(body[pos:pos + size])
                pos += size
            codebook = np.frombuffer(parts[0], dtype="<f4").astype(np.float32)
            bias = np.frombuffer(parts[1], dtype="<f4").astype(np.float32)
            if not (np.isfinite(codebook).all() and np.isfinite(bias).all()):
                raise ValueError(f"layer {name} holds values that are not finite numbers")
            n = int(e["entries"])
            codes = decode(parts[2], n, 1 << bits)
            gaps = decode(parts[3], n, 1 << GAP_BITS)
            if n and int(codes.max()) >= len(codebook):
                raise ValueError(f"layer {name} has a code outside its codebook")
            layer = LayerCode(name, shape, bits, codebook, gaps, codes, bias)
            layer.positions()  # within the tensor
            layers.append(layer)
    except (CodingError, ValueError) as exc:
        raise fail(str(exc)) from None
    info = header.get("info", {})
    return Compressed(config.to_dict(), layers, info)


__all__ = ["FORMAT_VERSION", "MAGIC", "MAX_WEIGHTS", "Compressed", "ContainerError",
           "expected_layers", "from_bytes", "json_depth", "network_size_problem", "to_bytes"]
