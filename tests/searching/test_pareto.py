"""Pareto utilities: dominance, the front, exact hypervolume (against brute force) and the knee."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
from pathlib import Path

import pytest

from autosq.searching.pareto import (
    KNEE_RULE,
    Point,
    clearly_dominates,
    dominates,
    hypervolume,
    knee,
    near_front,
    normalized_hypervolume,
    pareto_front,
)

REPO = Path(__file__).resolve().parents[2]


def random_points(rng: random.Random, n: int, integer: bool) -> list[Point]:
    """n points; integer ones on a small grid (many ties and duplicates), else uniform floats."""
    if integer:
        return [(rng.randint(0, 5), rng.randint(0, 5), rng.randint(0, 5)) for _ in range(n)]
    return [(rng.random(), rng.uniform(1, 50), rng.uniform(0.5, 5)) for _ in range(n)]


def hv_inclusion_exclusion(points: list[Point], ref: Point) -> float:
    """Volume of the union of boxes by inclusion-exclusion over every non-empty subset."""
    boxes = [p for p in points if p[0] > ref[0] and p[1] < ref[1] and p[2] < ref[2]]
    total = 0.0
    for r in range(1, len(boxes) + 1):
        for subset in itertools.combinations(boxes, r):
            acc = min(p[0] for p in subset) - ref[0]
            lat = ref[1] - max(p[1] for p in subset)
            size = ref[2] - max(p[2] for p in subset)
            total += (-1) ** (r + 1) * acc * lat * size
    return total


def hv_grid(points: list[Point], ref: tuple[int, int, int]) -> int:
    """Volume of the union of boxes for integer points: count the covered unit cells."""
    ints = [(int(a), int(b), int(c)) for a, b, c in points]
    count = 0
    for a in range(ref[0], max([ref[0], *(p[0] for p in ints)])):
        for b in range(min([ref[1], *(p[1] for p in ints)]), ref[1]):
            for c in range(min([ref[2], *(p[2] for p in ints)]), ref[2]):
                # Cell [a, a+1] x [b, b+1] x [c, c+1] is covered when some box contains it.
                if any(p[0] >= a + 1 and p[1] <= b and p[2] <= c for p in ints):
                    count += 1
    return count


# --- dominance -----------------------------------------------------------------------------


def test_dominates_equal_points_neither_way() -> None:
    p = (0.9, 10.0, 2.0)
    assert not dominates(p, p)
    assert not dominates(p, (0.9, 10.0, 2.0))


@pytest.mark.parametrize(
    "better",
    [(0.95, 10.0, 2.0), (0.9, 9.0, 2.0), (0.9, 10.0, 1.5), (0.95, 9.0, 1.5)],
    ids=["accuracy-higher", "latency-lower", "size-lower", "all-better"],
)
def test_dominates_each_axis_direction(better: Point) -> None:
    base = (0.9, 10.0, 2.0)
    assert dominates(better, base)
    assert not dominates(base, better)


@pytest.mark.parametrize(
    "other",
    [(0.95, 11.0, 2.0), (0.95, 10.0, 2.5), (0.8, 9.0, 1.0), (0.9, 9.0, 3.0)],
)
def test_dominates_trade_offs_are_incomparable(other: Point) -> None:
    base = (0.9, 10.0, 2.0)
    assert not dominates(base, other)
    assert not dominates(other, base)


def test_dominates_wrong_direction_is_worse() -> None:
    # Lower accuracy, higher latency, higher size are each worse.
    base = (0.9, 10.0, 2.0)
    assert dominates(base, (0.8, 10.0, 2.0))
    assert dominates(base, (0.9, 11.0, 2.0))
    assert dominates(base, (0.9, 10.0, 3.0))


# --- pareto_front --------------------------------------------------------------------------


def test_pareto_front_hand_made() -> None:
    points = [
        (0.90, 10.0, 5.0),
        (0.80, 5.0, 5.0),
        (0.70, 12.0, 6.0),  # dominated by 0
        (0.90, 10.0, 5.0),  # duplicate of 0: kept
        (0.95, 20.0, 1.0),
        (0.80, 5.0, 5.5),  # dominated by 1 (size only)
        (0.80, 6.0, 5.0),  # dominated by 1 (latency only)
    ]
    assert pareto_front(points) == [0, 1, 3, 4]


def test_pareto_front_small_cases() -> None:
    assert pareto_front([]) == []
    assert pareto_front([(0.5, 1.0, 1.0)]) == [0]
    assert pareto_front([(0.5, 2.0, 1.0), (0.5, 1.0, 1.0)]) == [1]
    assert pareto_front([(0.5, 1.0, 1.0)] * 3) == [0, 1, 2]


@pytest.mark.parametrize("integer", [True, False], ids=["grid", "float"])
def test_pareto_front_random(integer: bool) -> None:
    rng = random.Random(1234 + integer)
    for _ in range(150):
        points = random_points(rng, rng.randint(0, 40), integer)
        front = pareto_front(points)
        assert front == sorted(set(front))
        chosen = set(front)
        for i in front:
            assert not any(dominates(q, points[i]) for q in points)
        for i in range(len(points)):
            if i not in chosen:
                assert any(dominates(points[j], points[i]) for j in front)


# --- hypervolume ---------------------------------------------------------------------------


def test_hypervolume_single_box() -> None:
    assert hypervolume([(8.0, 1.0, 2.0)], (2.0, 5.0, 6.0)) == 6 * 4 * 4
    assert hypervolume([(0.9, 10.0, 2.0)], (0.5, 30.0, 5.0)) == pytest.approx(0.4 * 20 * 3)


def test_hypervolume_two_overlapping_boxes() -> None:
    ref = (0.0, 10.0, 10.0)
    a = (4.0, 2.0, 6.0)  # 4 x 8 x 4 = 128
    b = (2.0, 6.0, 2.0)  # 2 x 4 x 8 = 64, overlap 2 x 4 x 4 = 32
    assert hypervolume([a, b], ref) == 160
    assert hypervolume([b, a], ref) == 160


def test_hypervolume_drops_points_outside_reference() -> None:
    ref = (0.0, 10.0, 10.0)
    a = (4.0, 2.0, 6.0)
    outside = [
        (0.0, 5.0, 5.0),  # accuracy equal to the reference
        (-1.0, 5.0, 5.0),  # accuracy worse
        (5.0, 10.0, 5.0),  # latency equal
        (5.0, 5.0, 11.0),  # size worse
    ]
    assert hypervolume([], ref) == 0.0
    assert hypervolume(outside, ref) == 0.0
    assert hypervolume([a, *outside], ref) == 128


def test_hypervolume_ignores_dominated_and_duplicates() -> None:
    ref = (0.0, 10.0, 10.0)
    a = (4.0, 2.0, 6.0)
    assert hypervolume([a, a, (3.0, 3.0, 7.0)], ref) == 128


@pytest.mark.parametrize("seed", range(4))
def test_hypervolume_matches_inclusion_exclusion(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(40):
        points = random_points(rng, rng.randint(0, 8), integer=False)
        ref = (rng.uniform(0.0, 0.3), rng.uniform(30, 55), rng.uniform(3, 6))
        expected = hv_inclusion_exclusion(points, ref)
        assert hypervolume(points, ref) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_hypervolume_matches_grid_count() -> None:
    rng = random.Random(99)
    for _ in range(60):
        n = rng.randint(0, 25)
        points: list[Point] = [
            (rng.randint(-1, 6), rng.randint(0, 7), rng.randint(0, 7)) for _ in range(n)
        ]
        ref = (0, 6, 6)
        assert hypervolume(points, ref) == hv_grid(points, ref)


def test_hypervolume_is_monotone() -> None:
    rng = random.Random(7)
    ref = (0.0, 60.0, 6.0)
    for _ in range(30):
        points: list[Point] = []
        previous = 0.0
        for _ in range(20):
            points.append(random_points(rng, 1, integer=rng.random() < 0.5)[0])
            current = hypervolume(points, ref)
            assert current >= previous - 1e-9
            previous = current


def test_hypervolume_large_input_is_fast() -> None:
    rng = random.Random(3)
    # Points on a trade-off surface so most are non-dominated: the worst case for the sweep.
    points: list[Point] = []
    for _ in range(500):
        lat, size = rng.uniform(1, 50), rng.uniform(0.5, 5)
        points.append((1.0 - lat / 100 - size / 10 + rng.uniform(0, 0.01), lat, size))
    assert hypervolume(points, (0.0, 60.0, 6.0)) > 0


# --- normalized_hypervolume ----------------------------------------------------------------


def test_normalized_hypervolume_single_point_at_ideal_is_one() -> None:
    ref = (0.1, 100.0, 10.0)
    ideal = (0.95, 3.0, 0.7)
    assert normalized_hypervolume([ideal], ref, ideal) == 1.0
    # Beyond the ideal is clipped to it.
    assert normalized_hypervolume([(0.99, 1.0, 0.1)], ref, ideal) == 1.0


def test_normalized_hypervolume_scales_by_the_box() -> None:
    ref = (0.0, 10.0, 10.0)
    ideal = (8.0, 0.0, 2.0)
    points = [(4.0, 2.0, 6.0), (2.0, 6.0, 2.0)]
    assert normalized_hypervolume(points, ref, ideal) == pytest.approx(160 / (8 * 10 * 8))
    assert normalized_hypervolume([], ref, ideal) == 0.0


def test_normalized_hypervolume_in_unit_interval() -> None:
    rng = random.Random(11)
    ref = (0.0, 60.0, 6.0)
    ideal = (0.8, 5.0, 1.0)
    for _ in range(100):
        points = random_points(rng, rng.randint(0, 30), integer=False)
        value = normalized_hypervolume(points, ref, ideal)
        assert 0.0 <= value <= 1.0


@pytest.mark.parametrize(
    "ideal",
    [(0.0, 1.0, 1.0), (1.0, 10.0, 1.0), (1.0, 1.0, 10.0), (-1.0, 1.0, 1.0), (1.0, 20.0, 1.0)],
)
def test_normalized_hypervolume_rejects_degenerate_ideal(ideal: Point) -> None:
    with pytest.raises(ValueError, match="ideal"):
        normalized_hypervolume([(0.5, 5.0, 5.0)], (0.0, 10.0, 10.0), ideal)


# --- knee ----------------------------------------------------------------------------------


def test_knee_picks_the_balanced_point() -> None:
    points = [
        (0.95, 100.0, 10.0),  # most accurate, slow and large
        (0.60, 10.0, 1.0),  # fastest and smallest, inaccurate
        (0.90, 20.0, 2.0),  # balanced
        (0.85, 30.0, 3.0),  # dominated by the balanced one
    ]
    assert knee(points) == 2


def test_knee_edge_cases() -> None:
    assert knee([]) is None
    assert knee([(0.5, 1.0, 1.0)]) == 0
    # All equal: every distance is 0, the lowest index wins.
    assert knee([(0.5, 1.0, 1.0)] * 3) == 0
    # Symmetric trade-off: a tie between 0 and 1, the lowest index wins.
    assert knee([(1.0, 2.0, 1.0), (0.0, 1.0, 1.0)]) == 0
    # A constant axis (size) scales to 0 and does not count.
    assert knee([(0.9, 10.0, 5.0), (0.5, 1.0, 5.0), (0.8, 2.0, 5.0)]) == 2


def test_knee_is_on_the_front() -> None:
    rng = random.Random(5)
    for _ in range(100):
        points = random_points(rng, rng.randint(1, 30), integer=rng.random() < 0.5)
        choice = knee(points)
        assert choice is not None
        assert choice in pareto_front(points)


def test_knee_rule_is_one_plain_sentence() -> None:
    assert KNEE_RULE.endswith(".")
    assert KNEE_RULE.count(". ") == 0
    assert "budget" in KNEE_RULE


def test_knee_in_the_box_of_a_loose_budget_prefers_the_accurate_member() -> None:
    """Issue 24's example: a 32 px study under 100 ms, members from 0.81 at 0.47 ms to 0.99 at
    3.75 ms. Scaled to the front's extremes the knee was the fast inaccurate one; scaled to
    the budget's box, latency differences of a few ms out of 100 hardly count."""
    members = [(0.81, 0.47, 0.0), (0.95, 1.1, 0.0), (0.97, 1.9, 0.0), (0.99, 3.75, 0.0)]
    assert knee(members) == 1  # the old rule: rescaled over the front itself
    assert knee(members, (0.0, 100.0, 1.0)) == 2  # 0.97 at 1.9 ms: 0.02 less for half the time
    # A tight budget brings latency back into it: under 4 ms, 3.75 ms is nearly the worst.
    assert knee(members, (0.0, 4.0, 1.0)) == 0
    # compare under 0.1 MiB (accuracy and latency objectives, no latency budget: the box ends
    # at 1.1x the device's slowest candidate, 10 ms): 0.81 fits, and is recommended.
    small = [(0.39, 0.2, 0.0), (0.81, 0.6, 0.0)]
    assert knee(small) == 0
    assert knee(small, (0.0, 10.0, 1.0)) == 1


def test_knee_in_the_box_is_on_the_front() -> None:
    rng = random.Random(6)
    for _ in range(100):
        raw = random_points(rng, rng.randint(1, 30), False)
        points = [(p[0], p[1] + 1.0, p[2] + 1.0) for p in raw]
        ref = (min(p[0] for p in points) - rng.random(),
               max(p[1] for p in points) * (1 + 3 * rng.random()),
               max(p[2] for p in points) * (1 + rng.random()))
        choice = knee(points, ref)
        assert choice is not None and choice in pareto_front(points)


# --- imports -------------------------------------------------------------------------------


def test_front_imports_nothing_heavy() -> None:
    code = (
        "import sys, autosq.searching.pareto; "
        "sys.exit(any(m in sys.modules for m in "
        "('torch', 'onnxruntime', 'optuna', 'pandas', 'numpy')))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()


@pytest.mark.parametrize("seed", range(20))
def test_near_front_keeps_what_a_margin_could_put_on_the_front(seed: int) -> None:
    rng = random.Random(seed)
    pts = random_points(rng, 40, integer=seed % 2 == 0)
    assert near_front(pts, 0.0) == pareto_front(pts)
    margin = 0.15
    near = near_front(pts, margin)
    assert set(pareto_front(pts)) <= set(near)
    for i, p in enumerate(pts):
        clearly = any(clearly_dominates(q, p, margin) for q in pts)
        assert (i not in near) == clearly  # brute force against every point
        # Others up to the margin slower: a dropped point still cannot reach the front.
        if clearly:
            for factor in (1 / (1 + margin), 1.0, 1 + margin):
                moved = [(a, lat * (factor if j != i else 1.0), s)
                         for j, (a, lat, s) in enumerate(pts)]
                assert i not in pareto_front(moved)


def test_clearly_dominates_needs_more_than_the_margin() -> None:
    a = (0.5, 10.0, 1.0)
    assert clearly_dominates(a, (0.5, 11.6, 1.0), 0.15)
    assert not clearly_dominates(a, (0.5, 11.4, 1.0), 0.15)
    assert not clearly_dominates(a, (0.6, 20.0, 1.0), 0.15)  # the other is more accurate
    assert not clearly_dominates(a, (0.5, 20.0, 0.9), 0.15)  # the other is smaller
    assert clearly_dominates(a, (0.4, 10.5, 1.0), 0.0) == dominates(a, (0.4, 10.5, 1.0))
