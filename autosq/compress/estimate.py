"""The size of a network's ``.dcz`` container predicted from its plan, before any weights exist
(pure Python), so a search can offer compressed precisions (``dc8``, ``dc6``, ``dc5``,
``dc4``: Deep Compression at that many bits, a third of the weights kept by the default
schedule) against its size budget.

The prediction: every code at ``bits`` (Huffman coding shrinks the codes wherever shared values
are unevenly used, which pruning makes common: the centroids between the pruned magnitudes
stay empty), gaps at the Huffman cost of the gaps of kept weights spread at random, fillers at
that spread's rate, full codebooks and code tables, float32 biases, the header and the
checksum. Against the containers of seeded weights of the presets and random candidates it
was 5-39% above the real size, never below (``tests/compress/test_estimate.py``): a budget it
admits is met. After ``autosq compress`` the size is exact.
"""

from __future__ import annotations

import math

from autosq.arch.plan import Plan
from autosq.compress.schedule import DEFAULT_DENSITY, GAP_BITS, plan_densities

DC_PRECISIONS = {"dc8": 8, "dc6": 6, "dc5": 5, "dc4": 4}
_HEADER_BYTES = 600  # magic, version, the config and the notes, in JSON
_LAYER_HEADER_BYTES = 190  # one layer's header entry and its density in the notes
_STREAM_BYTES = 2  # the mode byte of each of a layer's two streams


def _gap_code_bits(density: float) -> float:
    """Bits a Huffman code spends per gap when kept weights are spread at random: the entropy
    of the gap (a geometric law cut at the filler), plus the 0.05 bit a Huffman code of such a
    law loses to it, at most."""
    if density >= 1:
        return 1.0
    q = 1.0 - density
    probs = [density * q ** g for g in range(1 << GAP_BITS)]
    probs[-1] += q ** (1 << GAP_BITS)  # a filler shares the largest gap's symbol
    total = sum(probs)
    entropy = -sum(p / total * math.log2(p / total) for p in probs if p > 0)
    return max(1.0, entropy + 0.05)


def compressed_bytes(p: Plan, bits: int, density: float = DEFAULT_DENSITY) -> int:
    """Predicted bytes of the container of ``p`` compressed at ``bits`` and ``density``."""
    densities = plan_densities(p, density)
    total = _HEADER_BYTES + 32
    for layer in p.layers:
        if layer.kind != "conv":
            continue
        n, cout, d = layer.params - layer.cout, layer.cout, densities[layer.module]
        kept = round(d * n)
        q = 1.0 - d
        run = q ** (1 << GAP_BITS)
        fillers = kept * run / (1.0 - run) if d < 1 else 0.0
        entries = kept + fillers
        gap_bits = min(float(GAP_BITS), _gap_code_bits(d))
        total += (math.ceil(entries * (bits + gap_bits) / 8) + 2 * _STREAM_BYTES
                  + (1 << GAP_BITS)
                  + 4 * (1 << bits) + 4 * cout + _LAYER_HEADER_BYTES)
    return total


__all__ = ["DC_PRECISIONS", "compressed_bytes"]
