"""The front shown first: both ends, what is kept, then the members that together dominate
the most area of the accuracy-latency plane."""

from __future__ import annotations

import itertools
import random

from autosq.searching.pareto import hypervolume
from autosq.searching.thinning import thin


def _front(n: int, seed: int = 0) -> list[tuple[float, float, float]]:
    """A two-objective front: accuracy and latency growing together."""
    rng = random.Random(seed)
    lats = sorted(rng.uniform(1.0, 10.0) for _ in range(n))
    accs = sorted(rng.uniform(0.3, 0.9) for _ in range(n))
    return [(a, lat, 0.0) for a, lat in zip(accs, lats, strict=True)]


def test_a_short_front_is_shown_whole_and_ends_and_kept_ones_always() -> None:
    assert thin(_front(5), limit=15) == [0, 1, 2, 3, 4]
    shown = thin(_front(60), keep=[17, 31], limit=10)
    assert len(shown) == 10 and shown == sorted(shown)
    assert {0, 59, 17, 31} <= set(shown)
    assert thin(_front(60), keep=[17, 31], limit=10) == shown


def test_the_knee_is_chosen_before_its_neighbours() -> None:
    # ends, a knee (fast and accurate), and points hugging the ends
    points = [(0.10, 1.0, 0.0), (0.11, 1.1, 0.0), (0.80, 2.0, 0.0), (0.89, 9.0, 0.0),
              (0.90, 10.0, 0.0)]
    assert thin(points, limit=3) == [0, 2, 4]


def test_thinning_keeps_more_of_the_hypervolume_than_chance() -> None:
    for seed in range(5):
        points = _front(80, seed)
        full = hypervolume(points, (0.0, 11.0, 1.0))
        shown = hypervolume([points[i] for i in thin(points, limit=15)], (0.0, 11.0, 1.0))
        rng = random.Random(seed)
        other = [0, 79, *rng.sample(range(1, 79), 13)]
        chance = hypervolume([points[i] for i in other], (0.0, 11.0, 1.0))
        assert chance <= shown <= full
        assert shown >= 0.97 * full


def test_a_three_objective_front_still_fills_the_limit() -> None:
    # members dominated in the accuracy-latency plane (smaller, not faster) add nothing there
    points = [(0.5 + 0.01 * i, 1.0 + i, 0.0) for i in range(10)]
    points += [(0.5, 5.0 + i, -1.0 - i) for i in range(10)]
    shown = thin(points, limit=15)
    assert len(shown) == 15 and set(range(10)) <= set(shown)


def _plane_area(points: list[tuple[float, float, float]]) -> float:
    """Area dominated in the accuracy-latency plane up to (0 accuracy, 100 ms)."""
    total, top = 0.0, 0.0
    for acc, lat, _ in sorted(points, key=lambda p: (p[1], -p[0])):
        if acc > top:
            total += (100.0 - lat) * (acc - top)
            top = acc
    return total


def test_the_choice_is_the_best_any_subset_of_that_size_reaches() -> None:
    # against every subset, on small fronts with ties, off-plane members and kept ones
    for seed in range(120):
        rng = random.Random(seed)
        n = rng.randint(6, 12)
        limit = rng.randint(3, n - 1)
        points = [(round(rng.uniform(0.1, 1.0), 2), round(rng.uniform(1.0, 10.0), 1),
                   rng.choice([0.0, -1.0])) for _ in range(n)]
        keep = rng.sample(range(n), rng.randint(0, 2))
        shown = thin(points, keep, limit)
        fastest = min(range(n), key=lambda i: (points[i][1], -points[i][0], i))
        best = min(range(n), key=lambda i: (-points[i][0], points[i][1], i))
        must = {fastest, best, *keep}
        assert must <= set(shown)
        assert len(shown) == max(limit, len(must))
        if len(must) > limit:
            continue
        best_area = max(_plane_area([points[i] for i in c])
                        for c in itertools.combinations(range(n), limit) if must <= set(c))
        assert _plane_area([points[i] for i in shown]) >= best_area - 1e-9


def test_a_long_front_is_thinned_to_the_limit() -> None:
    # 5,000 members: one layer per member shown, each linear in the front
    points = _front(5000, seed=3)
    shown = thin(points, limit=15)
    assert len(shown) == 15 and {0, 4999} <= set(shown)
