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


def decode(data: bytes, count: int, alphabet: int) -> np.ndarray:
    """The ``count`` symbols of a stream :func:`encode` wrote; :class:`CodingError` when the
    bytes cannot be one."""
    if not data:
        raise CodingError("empty stream")
    mode, body = data[0], data[1:]
    if mode == FIXED:
        width = fixed_bits(alphabet)
        if len(body) * 8 < count * width:
            raise CodingError("stream shorter than its symbols")
        bits = np.unpackbits(np.frombuffer(body, dtype=np.uint8))[:count * width]
        weights = 1 << np.arange(width - 1, -1, -1)
        out = bits.reshape(count, width).astype(np.int64) @ weights if count else \
            np.zeros(0, np.int64)
        if count and out.max() >= alphabet:
            raise CodingError("symbol outside the alphabet")
        return np.asarray(out, dtype=np.int64)
    if mode != HUFFMAN or len(body) < alphabet:
        raise CodingError("unknown stream mode or missing code table")
    lengths = np.frombuffer(body[:alphabet], dtype=np.uint8).astype(np.int64)
    if lengths.max(initial=0) > MAX_LENGTH or not lengths.any():
        raise CodingError("bad code table")
    kraft = sum(2.0 ** -int(n) for n in lengths if n)
    if kraft > 1.0 + 1e-12:
        raise CodingError("bad code table")
    codes = canonical_codes(lengths)
    # A table indexed by the next MAX_LENGTH bits: (symbol, length) for every prefix.
    table_sym = np.full(1 << MAX_LENGTH, -1, dtype=np.int64)
    table_len = np.zeros(1 << MAX_LENGTH, dtype=np.int64)
    for s in np.flatnonzero(lengths):
        n = int(lengths[s])
        lo = int(codes[s]) << (MAX_LENGTH - n)
        table_sym[lo:lo + (1 << (MAX_LENGTH - n))] = s
        table_len[lo:lo + (1 << (MAX_LENGTH - n))] = n
    stream = np.frombuffer(body[alphabet:], dtype=np.uint8)
    nbits = len(stream) * 8
    bits = np.concatenate([np.unpackbits(stream), np.zeros(MAX_LENGTH, np.uint8)]).astype(
        np.int32)
    # The MAX_LENGTH bits from every position, as one integer each.
    windows = np.zeros(nbits, dtype=np.int32)
    for j in range(MAX_LENGTH):
        windows |= bits[j:j + nbits] << (MAX_LENGTH - 1 - j)
    win, syms, lens = windows.tolist(), table_sym.tolist(), table_len.tolist()
    out = np.empty(count, dtype=np.int64)
    pos = 0
    for i in range(count):
        if pos >= nbits:
            raise CodingError("stream ends before its last symbol")
        w = win[pos]
        n = lens[w]
        if n == 0 or pos + n > nbits:
            raise CodingError("stream ends inside a code, or holds a code not in its table")
        out[i] = syms[w]
        pos += n
    return out


__all__ = ["MAX_LENGTH", "Coded", "CodingError", "code_lengths", "decode", "encode",
           "fixed_bits"]
