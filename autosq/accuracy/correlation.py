"""Rank correlations (Spearman's rho, Kendall's tau-b) and their bootstrap intervals, in pure
Python, for ``proxy-check``."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def _pearson(x: Sequence[float], y: Sequence[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson's on tie-averaged ranks); nan if one is constant."""
    if len(x) != len(y) or len(x) < 2:
        raise ValueError("spearman needs two sequences of the same length >= 2")
    return _pearson(ranks(x), ranks(y))


def kendall(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (accounts for ties); nan if one sequence is constant."""
    if len(x) != len(y) or len(x) < 2:
        raise ValueError("kendall needs two sequences of the same length >= 2")
    concordant = discordant = ties_x = ties_y = 0
    n = len(x)
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denom if denom > 0 else math.nan


def bootstrap_interval(x: Sequence[float], y: Sequence[float],
                       statistic: Callable[[Sequence[float], Sequence[float]], float],
                       reps: int = 1000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(x, y)``, resampling the pairs (seeded).

    Resamples on which the statistic is undefined (a constant side) are dropped; (nan, nan)
    when too few remain.
    """
    if len(x) != len(y) or len(x) < 3:
        raise ValueError("bootstrap_interval needs two sequences of the same length >= 3")
    rng = random.Random(seed)
    n = len(x)
    values = []
    for _ in range(reps):
        idx = [rng.randrange(n) for _ in range(n)]
        v = statistic([x[i] for i in idx], [y[i] for i in idx])
        if not math.isnan(v):
            values.append(v)
    if len(values) < reps // 2:
        return math.nan, math.nan
    values.sort()
    lo = values[int((1 - level) / 2 * (len(values) - 1))]
    hi = values[int((1 + level) / 2 * (len(values) - 1))]
    return lo, hi
