"""Deep Compression of one network's weights (Han et al., 2016): magnitude pruning, weight
sharing by k-means, sparse storage with relative indices, then Huffman coding (numpy only).

Per conv layer (its weight tensor, flattened in C order):

1. **prune**: keep the ``density`` share of weights with the largest magnitude (the rest
   become 0; weights already 0 stay 0);
2. **share**: the kept weights take one of ``2**bits - 1`` shared values, by k-means with
   centroids initialised linearly between the smallest and the largest weight (the paper's
   best initialisation); a layer with at most that many distinct values keeps them exactly;
   code 0 means zero;
3. **sparse**: each kept weight is stored as (gap, code): the number of zeros since the
   previous stored entry, in :data:`GAP_BITS` bits, and its shared value's code; a gap too
   long for its bits is bridged with filler entries (gap ``2**GAP_BITS - 1``, code 0);
4. **Huffman**: gaps and codes are coded separately per layer (:mod:`autosq.compress.huffman`).

Biases are kept as float32 (they are few, one per output channel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autosq.compress.schedule import BITS, GAP_BITS, MAX_GAP
from autosq.errors import UsageError
from autosq.memory import check_allocation

KMEANS_ITERATIONS = 30

@dataclass
class LayerCode:
    """One layer's compressed form (before Huffman coding of ``gaps`` and ``codes``)."""

    name: str
    shape: tuple[int, ...]
    bits: int
    codebook: np.ndarray  # float32, code 0 is 0.0
    gaps: np.ndarray
    codes: np.ndarray
    bias: np.ndarray  # float32

    @property
    def nonzeros(self) -> int:
        """Weights stored as non-zero."""
        return int(np.count_nonzero(self.codebook[self.codes]))

    def positions(self) -> np.ndarray:
        """Where each entry lands in the flattened weights; ValueError when they run past the
        tensor (a damaged stream), checked without allocating it."""
        n = int(np.prod(self.shape))
        positions = self.gaps.astype(np.int64)  # in place from here: one array of entries
        positions += 1
        np.cumsum(positions, out=positions)
        positions -= 1
        if len(positions) and (positions[-1] >= n or positions.min() < 0):
            raise ValueError(f"layer {self.name}: entries run past its {n} weights")
        return positions

    def weights(self) -> np.ndarray:
        """The layer's dense weights, decoded exactly."""
        positions = self.positions()
        n = int(np.prod(self.shape))
        check_allocation(4.0 * n, f"layer {self.name} ({n:,} weights)",
                         "this is not a SqueezeNet autosq can hold")
        dense = np.zeros(n, dtype=np.float32)
        dense[positions] = self.codebook[self.codes]
        return dense.reshape(self.shape)


def prune(weights: np.ndarray, density: float) -> np.ndarray:
    """``weights`` with all but the ``density`` share of largest magnitudes set to 0."""
    flat = np.asarray(weights, dtype=np.float32).ravel().copy()
    keep = round(density * flat.size)
    if keep >= np.count_nonzero(flat):
        return flat.reshape(weights.shape)
    order = np.argsort(-np.abs(flat), kind="stable")
    flat[order[keep:]] = 0.0
    return flat.reshape(weights.shape)


def share(values: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(centroids, code of each value, from 1) for the non-zero ``values``: exact when they
    have at most ``2**bits - 1`` distinct values, else k-means with linear initialisation."""
    k = (1 << bits) - 1
    values = np.asarray(values, dtype=np.float32)
    distinct = np.unique(values)
    if len(distinct) <= k:
        return distinct, np.searchsorted(distinct, values) + 1
    centroids = np.linspace(float(values.min()), float(values.max()), k).astype(np.float64)
    v = values.astype(np.float64)
    for _ in range(KMEANS_ITERATIONS):
        edges = (centroids[1:] + centroids[:-1]) / 2
        assign = np.searchsorted(edges, v)
        sums = np.bincount(assign, weights=v, minlength=k)
        counts = np.bincount(assign, minlength=k)
        moved = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        if np.allclose(moved, centroids, rtol=0, atol=1e-12):
            break
        centroids = np.sort(moved)
    final = centroids.astype(np.float32)
    edges = (final[1:].astype(np.float64) + final[:-1]) / 2
    return final, np.searchsorted(edges, v) + 1


def sparse(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gaps, codes) of the non-zero codes of a flat code array, fillers included."""
    positions = np.flatnonzero(codes)
    gaps = np.diff(positions, prepend=-1) - 1
    fillers = gaps // (MAX_GAP + 1)
    rest = gaps % (MAX_GAP + 1)
    n = len(positions)
    out_gaps = np.repeat(np.stack([np.full(n, MAX_GAP), rest], 1).ravel(),
                         np.stack([fillers, np.ones(n, np.int64)], 1).ravel())
    out_codes = np.repeat(np.stack([np.zeros(n, np.int64), codes[positions]], 1).ravel(),
                          np.stack([fillers, np.ones(n, np.int64)], 1).ravel())
    return out_gaps.astype(np.int64), out_codes.astype(np.int64)


def compress_layer(name: str, weights: np.ndarray, bias: np.ndarray, density: float,
                   bits: int) -> LayerCode:
    """Prune, share and sparsify one layer (see the module docstring)."""
    if bits not in BITS:
        raise UsageError(f"bits must be one of {', '.join(map(str, BITS))}; got {bits!r}")
    pruned = prune(weights, density).ravel()
    nz = np.flatnonzero(pruned)
    centroids, assigned = share(pruned[nz], bits)
    codes = np.zeros(pruned.size, dtype=np.int64)
    codes[nz] = assigned
    gaps, entry_codes = sparse(codes)
    codebook = np.concatenate([[0.0], centroids]).astype(np.float32)
    return LayerCode(name, tuple(int(d) for d in weights.shape), bits, codebook, gaps,
                     entry_codes, np.asarray(bias, dtype=np.float32).ravel())


__all__ = ["GAP_BITS", "MAX_GAP", "LayerCode", "compress_layer", "prune", "share", "sparse"]
