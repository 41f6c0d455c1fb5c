"""Canonical Huffman coding of small-alphabet symbol streams (numpy; no torch).

A stream is coded with Huffman codes when that is smaller than fixed-length codes, else with
fixed-length ones (a tiny layer's code table can outweigh what Huffman saves), so a coded
stream is never larger than its fixed-length form plus the one byte that says which. Code
lengths are capped at :data:`MAX_LENGTH` bits (a stream whose Huffman code would be longer is
stored fixed-length), which keeps the table decoder's lookup table small.

Stored form of one stream: ``mode`` (u8: 0 fixed, 1 Huffman), then for Huffman the code length
of every symbol of the alphabet (u8 each), then the bits, most significant first, padded with
zeros to a whole byte. The symbol count and the alphabet size are stored by the caller.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

MAX_LENGTH = 16
FIXED, HUFFMAN = 0, 1


class CodingError(ValueError):
    """A stream that cannot be decoded (truncated or corrupt)."""


def code_lengths(counts: np.ndarray) -> np.ndarray:
    """Huffman code lengths (bits) for symbol ``counts``; 0 for symbols that never occur. A
    single used symbol gets a 1-bit code."""
    used = [int(i) for i in np.flatnonzero(counts)]
    lengths = np.zeros(len(counts), dtype=np.int64)
    if len(used) == 1:
        lengths[used[0]] = 1
        return lengths
    # (weight, tie-break, symbols under this node)
    heap: list[tuple[int, int, list[int]]] = [(int(counts[i]), i, [i]) for i in used]
    heapq.heapify(heap)
    tie = len(counts)
    while len(heap) > 1:
        w1, _, s1 = heapq.heappop(heap)
        w2, _, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            lengths[s] += 1
        heapq.heappush(heap, (w1 + w2, tie, s1 + s2))
        tie += 1
    return lengths


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """The canonical code of each symbol (by length, then symbol), from its length."""
    codes = np.zeros(len(lengths), dtype=np.int64)
    code = 0
    prev = 0
    for s in sorted((int(i) for i in np.flatnonzero(lengths)), key=lambda i: (lengths[i], i)):
        code <<= int(lengths[s]) - prev
        codes[s] = code
        prev = int(lengths[s])
        code += 1
    return codes


def _pack(codes: np.ndarray, lengths: np.ndarray) -> bytes:
    """Concatenate variable-length codes (MSB first) into bytes."""
    if len(codes) == 0:
        return b""
    total = int(lengths.sum())
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    within = np.arange(total) - starts
    shift = np.repeat(lengths, lengths) - 1 - within
    bits = (np.repeat(codes, lengths) >> shift) & 1
    return bytes(np.packbits(bits.astype(np.uint8)))


def fixed_bits(alphabet: int) -> int:
    """Bits of a fixed-length code for an alphabet of this size."""
    return max(1, (alphabet - 1).bit_length())


@dataclass(frozen=True)
class Coded:
    """A coded stream: its stored bytes (mode, table, bits)."""

    data: bytes

    def __len__(self) -> int:
        return len(self.data)


def encode(symbols: np.ndarray, alphabet: int) -> Coded:
    """Code ``symbols`` (integers in ``0..alphabet-1``), the smaller of Huffman and fixed."""
    symbols = np.asarray(symbols, dtype=np.int64)
    width = fixed_bits(alphabet)

    def fixed() -> Coded:
        return Coded(bytes([FIXED]) + _pack(symbols, np.full(len(symbols), width)))

    if len(symbols) == 0 or alphabet > 256:
        return fixed()
    lengths = code_lengths(np.bincount(symbols, minlength=alphabet))
    # Sizes known before packing: pack only the form that is kept.
    huff_bytes = 1 + alphabet + (int(lengths[symbols].sum()) + 7) // 8
    if lengths.max() > MAX_LENGTH or huff_bytes >= 1 + (len(symbols) * width + 7) // 8:
        return fixed()
    codes = canonical_codes(lengths)
    return Coded(bytes([HUFFMAN]) + bytes(lengths.astype(np.uint8))
                 + _pack(codes[symbols], lengths[symbols]))


# Symbols of a fixed-length stream, or bit positions of a Huffman stream, handled at a time:
# memory stays a few MB whatever a stream declares.
CHUNK = 1 << 18
MULTI_FROM = 1 << 14


def _symbol_dtype(alphabet: int) -> type[np.integer]:
    return np.uint8 if alphabet <= 256 else np.int64


def _decode_fixed(body: bytes, count: int, alphabet: int) -> np.ndarray:
    width = fixed_bits(alphabet)
    if len(body) != (count * width + 7) // 8:
        raise CodingError("stream length does not match its symbol count")
    out = np.empty(count, dtype=_symbol_dtype(alphabet))
    weights = (1 << np.arange(width - 1, -1, -1)).astype(np.int64)
    raw = np.frombuffer(body, dtype=np.uint8)
    for start in range(0, count, CHUNK):  # CHUNK * width bits: whole bytes
        n = min(CHUNK, count - start)
        first = start * width // 8
        bits = np.unpackbits(raw[first:first + (n * width + 7) // 8])[:n * width]
        values = bits.reshape(n, width).astype(np.int64) @ weights
        if values.max() >= alphabet:
            raise CodingError("symbol outside the alphabet")
        out[start:start + n] = values
    return out


def _multi_table(table_sym: np.ndarray, table_len: np.ndarray) -> tuple[list[bytes], list[int]]:
    """For every MAX_LENGTH-bit window: the symbols whose whole codes lie in it, in order, and
    the bits they take (symbols < 256). Decoding then takes several short codes a step."""
    size = 1 << MAX_LENGTH
    w = np.arange(size, dtype=np.int64)
    used = np.zeros(size, dtype=np.int64)
    count = np.zeros(size, dtype=np.int64)
    syms = np.zeros((size, MAX_LENGTH), dtype=np.uint8)
    active = np.ones(size, dtype=bool)
    for k in range(MAX_LENGTH):
        idx = (w << used) & (size - 1)  # the bits after those used, zero-filled
        n = table_len[idx]
        ok = active & (n > 0) & (used + n <= MAX_LENGTH)
        syms[ok, k] = table_sym[idx[ok]]
        used[ok] += n[ok]
        count[ok] += 1
        active = ok
    flat = syms.tobytes()
    return ([flat[i:i + c] for i, c in zip(range(0, len(flat), MAX_LENGTH), count.tolist(),
                                            strict=True)], used.tolist())


def decode(data: bytes, count: int, alphabet: int) -> np.ndarray:
    """The ``count`` symbols of a stream :func:`encode` wrote (uint8 for alphabets of at most
    256 symbols); :class:`CodingError` when the bytes cannot be one. The count is checked
    against the stream's length before anything is allocated, and the work is bounded by the
    stream's bits."""
    if not data:
        raise CodingError("empty stream")
    if count < 0:
        raise CodingError("negative symbol count")
    mode, body = data[0], data[1:]
    if mode == FIXED:
        return _decode_fixed(body, count, alphabet)
    if mode != HUFFMAN or alphabet > 256 or len(body) < alphabet:
        raise CodingError("unknown stream mode or missing code table")
    lengths = np.frombuffer(body[:alphabet], dtype=np.uint8).astype(np.int64)
    if lengths.max(initial=0) > MAX_LENGTH or not lengths.any():
        raise CodingError("bad code table")
    kraft = sum(2.0 ** -int(n) for n in lengths if n)
    if kraft > 1.0 + 1e-12:
        raise CodingError("bad code table")
    stream = body[alphabet:]
    nbits = len(stream) * 8
    shortest, longest = int(lengths[lengths > 0].min()), int(lengths.max())
    # The encoder pads to a whole byte only: the bits must fit the count both ways.
    if count * shortest > nbits or nbits >= count * longest + 8:
        raise CodingError("stream length does not match its symbol count")
    codes = canonical_codes(lengths)
    # A table indexed by the next MAX_LENGTH bits: (symbol, length) for every prefix.
    table_sym = np.zeros(1 << MAX_LENGTH, dtype=np.int64)
    table_len = np.zeros(1 << MAX_LENGTH, dtype=np.int64)
    for s in np.flatnonzero(lengths):
        n = int(lengths[s])
        lo = int(codes[s]) << (MAX_LENGTH - n)
        table_sym[lo:lo + (1 << (MAX_LENGTH - n))] = s
        table_len[lo:lo + (1 << (MAX_LENGTH - n))] = n
    # Several codes a step pays for its table only on long streams.
    multi, multi_bits = (_multi_table(table_sym, table_len) if count > MULTI_FROM
                         else ([b""] * (1 << MAX_LENGTH), [0] * (1 << MAX_LENGTH)))
    single, single_bits = table_sym.tolist(), table_len.tolist()
    raw = np.frombuffer(stream + bytes(4), dtype=np.uint8).astype(np.int64)
    out = bytearray()
    pos, left = 0, count
    start = end = 0
    win: list[int] = []
    while left:
        if pos >= end:  # the windows of the next CHUNK bit positions
            if pos >= nbits:
                raise CodingError("stream ends before its last symbol")
            start, end = pos, min(pos + CHUNK, nbits)
            p = np.arange(start, end, dtype=np.int64)
            b = p >> 3
            three = (raw[b] << 16) | (raw[b + 1] << 8) | raw[b + 2]
            win = ((three >> (8 - (p & 7))) & ((1 << MAX_LENGTH) - 1)).tolist()
        w = win[pos - start]
        got = multi[w]
        if 0 < len(got) <= left:
            out += got
            pos += multi_bits[w]
            left -= len(got)
            continue
        n = single_bits[w]  # the last symbols, one at a time
        if n == 0:
            raise CodingError("stream holds a code not in its table")
        out.append(single[w])
        pos += n
        left -= 1
    if pos > nbits or (pos + 7) // 8 != len(stream):
        raise CodingError("stream ends inside a code, or has bytes left after its symbols")
    return np.frombuffer(out, dtype=np.uint8).copy()


__all__ = ["MAX_LENGTH", "Coded", "CodingError", "code_lengths", "decode", "encode",
           "fixed_bits"]
