"""Rank correlations against hand-computed values and their defining properties."""

from __future__ import annotations

import math
import random

import pytest

from autosq.accuracy.correlation import kendall, ranks, spearman


def test_ranks_average_ties() -> None:
    assert ranks([10, 30, 20, 20]) == [1.0, 4.0, 2.5, 2.5]


def test_perfect_and_reversed() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert spearman(x, [2, 4, 6, 8, 100]) == pytest.approx(1.0)
    assert kendall(x, [2, 4, 6, 8, 100]) == pytest.approx(1.0)
    assert spearman(x, x[::-1]) == pytest.approx(-1.0)
    assert kendall(x, x[::-1]) == pytest.approx(-1.0)


def test_known_values() -> None:
    # x ranks 1..5, y ranks (1,3,2,5,4): d^2 = 0+1+1+1+1 = 4 -> rho = 1 - 6*4/(5*24) = 0.8
    assert spearman([1, 2, 3, 4, 5], [1, 3, 2, 5, 4]) == pytest.approx(0.8)
    # 10 pairs, 2 discordant -> tau = (8 - 2) / 10
    assert kendall([1, 2, 3, 4, 5], [1, 3, 2, 5, 4]) == pytest.approx(0.6)
    # tau-b with ties: x=(1,1,2), y=(1,2,3): C=2, D=0, ties_x=1 -> 2/sqrt(3*2)
    assert kendall([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))


def test_constant_is_nan_and_bad_lengths_raise() -> None:
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(kendall([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError):
        spearman([1], [1])
    with pytest.raises(ValueError):
        kendall([1, 2], [1])


def test_invariant_to_monotone_transforms() -> None:
    rng = random.Random(0)
    x = [rng.random() for _ in range(30)]
    y = [a + rng.gauss(0, 0.3) for a in x]
    assert spearman(x, y) == pytest.approx(spearman([math.exp(a) for a in x], y))
    assert kendall(x, y) == pytest.approx(kendall(x, [b**3 for b in y]))
