"""Pareto utilities for the search: accuracy up, latency down, and a third objective down.

Pure Python (standard library only): no torch, onnxruntime, optuna, pandas or numpy, so the
report and CLI can rank trials without loading any of them.

A point is ``(accuracy, latency_ms, third)``: the third is the study's third objective (size
or peak memory in MiB), or 0 for every point when it has two (:mod:`autosq.searching.objectives`),
so the same code ranks two- and three-objective studies. Point ``a`` dominates ``b`` when it is
no worse on every objective and strictly better on at least one. The hypervolume of a set is
the volume of the union of the boxes ``[acc_ref, acc] x [lat, lat_ref] x [third, third_ref]``
between each point and a reference point of worst acceptable values; it grows whenever the front
improves, so it is the number to compare between runs (normalised to ``[0, 1]`` with a shared
reference and ideal by :func:`normalized_hypervolume`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

Point = tuple[float, float, float]
"""``(accuracy, latency_ms, third)``: accuracy is maximised, latency and the third minimised."""

KNEE_RULE = (
    "Recommended (*): the member nearest the best corner of the box the budgets allow, with "
    "accuracy scaled from the best member's down to the reference (0, or the lowest proxy "
    "score) and latency (and size or memory when it is an objective) from 0 up to its budget "
    "(without one, 1.1x the slowest candidate)."
)

__all__ = [
    "KNEE_RULE",
    "Point",
    "dominates",
    "entry_gate",
    "hypervolume",
    "knee",
    "knee_order",
    "near_front",
    "normalized_hypervolume",
    "pareto_front",
]


def dominates(a: Point, b: Point) -> bool:
    """True when ``a`` dominates ``b``: accuracy higher or equal, latency and third lower or equal,
    and strictly better on at least one of the three. Equal points do not dominate each other."""
    a_acc, a_lat, a_third = a
    b_acc, b_lat, b_third = b
    if a_acc < b_acc or a_lat > b_lat or a_third > b_third:
        return False
    return a_acc > b_acc or a_lat < b_lat or a_third < b_third


def pareto_front(points: Sequence[Point]) -> list[int]:
    """Indices (into ``points``, ascending) of the non-dominated points.

    Exact duplicates are all kept, since neither copy dominates the other. Points are visited
    best-first (accuracy down, then latency up, then third up), so a point can only be dominated
    by one visited before it, and by transitivity it suffices to test it against the front so far.
    """
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], points[i][1], points[i][2]))
    front: list[int] = []
    for i in order:
        p = points[i]
        if not any(dominates(points[j], p) for j in front):
            front.append(i)
    return sorted(front)


def entry_gate(front: Sequence[Point], point: Point) -> float:
    """The latency ``point`` must beat to stop being dominated by ``front``: that of the
    fastest member at least as accurate and no worse on the third objective (infinite when
    none is)."""
    return min((p[1] for p in front if p[0] >= point[0] and p[2] <= point[2]),
               default=float("inf"))


def clearly_dominates(a: Point, b: Point, margin: float) -> bool:
    """True when ``a`` dominates ``b`` even if ``a``'s latency were ``margin`` (a fraction)
    higher: accuracy higher or equal, third lower or equal, latency lower by more than the
    margin. With a margin of 0 this is :func:`dominates`."""
    if margin <= 0:
        return dominates(a, b)
    return a[0] >= b[0] and a[2] <= b[2] and a[1] * (1 + margin) < b[1]


def near_front(points: Sequence[Point], margin: float) -> list[int]:
    """Indices (ascending) of the points no other point :func:`clearly_dominates`: the ones
    that could be on the Pareto front once latencies known only within ``margin`` are measured
    again. A superset of :func:`pareto_front`; equal to it with a margin of 0."""
    if margin <= 0:
        return pareto_front(points)
    front = [points[i] for i in pareto_front(points)]
    # A point clearly dominated by anything is clearly dominated by a front member (the
    # dominator's own dominator is no worse), so testing against the front suffices.
    return [i for i, p in enumerate(points)
            if not any(clearly_dominates(f, p, margin) for f in front)]


def _area_2d(xy_sorted: list[tuple[float, float]], ref_x: float, ref_y: float) -> float:
    """Area of the union of boxes ``[x, ref_x] x [y, ref_y]`` (minimisation), for points sorted by
    x then y and all strictly below the reference: a staircase sweep over increasing x."""
    area = 0.0
    prev_y = ref_y
    for x, y in xy_sorted:
        if y < prev_y:
            area += (ref_x - x) * (prev_y - y)
            prev_y = y
    return area


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """Exact volume of the union of ``[acc_ref, acc] x [lat, lat_ref] x [third, third_ref]`` boxes.

    ``reference`` holds the worst acceptable ``(accuracy, latency_ms, third)``. Points that do
    not strictly improve on it in every objective contribute nothing and are dropped.

    Algorithm: in minimisation form ``(acc_ref - acc, lat, third)``, sort the points by third and
    sweep upwards; between consecutive distinct thirds (the last slab ends at ``third_ref``) the
    cross-section is the union of the 2-D boxes of the points seen so far, whose exact area a
    staircase sweep gives. Points are kept sorted by insertion, so the cost is O(n^2).
    """
    ref_acc, ref_lat, ref_third = reference
    # Minimisation coordinates, with the accuracy axis measured from the reference:
    # x = acc_ref - acc lies in (-inf, 0) for a useful point and the box spans [x, 0].
    boxes = sorted(
        (third, ref_acc - acc, lat)
        for acc, lat, third in points
        if acc > ref_acc and lat < ref_lat and third < ref_third
    )
    volume = 0.0
    active: list[tuple[float, float]] = []
    n = len(boxes)
    k = 0
    while k < n:
        z = boxes[k][0]
        while k < n and boxes[k][0] == z:
            bisect.insort(active, (boxes[k][1], boxes[k][2]))
            k += 1
        z_next = boxes[k][0] if k < n else ref_third
        volume += _area_2d(active, 0.0, ref_lat) * (z_next - z)
    return volume


def normalized_hypervolume(points: Sequence[Point], reference: Point, ideal: Point) -> float:
    """Hypervolume with every axis rescaled so ``reference`` maps to 0 and ``ideal`` to 1.

    ``ideal`` holds the best ``(accuracy, latency_ms, third)``; it must be strictly better than
    ``reference`` on every axis, else ``ValueError``. Points beyond the ideal are clipped to it,
    so the result lies in ``[0, 1]`` and fronts from different runs compare directly when they
    share the reference and ideal.
    """
    names = ("accuracy", "latency_ms", "third")
    for axis, (name, ref, best) in enumerate(zip(names, reference, ideal, strict=True)):
        if best == ref:
            raise ValueError(
                f"normalized_hypervolume: ideal and reference are equal on {name} ({best}); "
                "the axis cannot be scaled"
            )
        better = best > ref if axis == 0 else best < ref
        if not better:
            direction = "higher" if axis == 0 else "lower"
            raise ValueError(
                f"normalized_hypervolume: ideal {name} ({best}) must be {direction} than the "
                f"reference ({ref})"
            )
    ideal_acc, ideal_lat, ideal_third = ideal
    clipped = [
        (min(acc, ideal_acc), max(lat, ideal_lat), max(third, ideal_third))
        for acc, lat, third in points
    ]
    span = (ideal_acc - reference[0]) * (reference[1] - ideal_lat) * (reference[2] - ideal_third)
    return min(1.0, max(0.0, hypervolume(clipped, reference) / span))


def knee_order(points: Sequence[Point], reference: Point | None = None) -> list[int]:
    """Indices of ``points`` from nearest to farthest from the ideal corner; ties keep index
    order.

    With a ``reference`` (the worst acceptable ``(accuracy, latency_ms, third)``: the budgets,
    as the hypervolume uses them), each objective is rescaled over the feasible box: accuracy
    from the best of ``points`` (0) down to the reference's (1), latency and the third from 0
    (0) up to the reference's (1). A loose budget then leaves latency differences small, and a
    much more accurate member that still fits easily is preferred to a fast inaccurate one.
    Without one, each axis is rescaled over ``points`` themselves (best 0, worst 1). An axis
    of zero span scales to 0.
    """
    if not points:
        return []
    accs = [p[0] for p in points]
    if reference is None:
        lats = [p[1] for p in points]
        thirds = [p[2] for p in points]
        axes = ((max(accs), max(accs) - min(accs)), (min(lats), max(lats) - min(lats)),
                (min(thirds), max(thirds) - min(thirds)))
    else:
        ref_acc, ref_lat, ref_third = reference
        axes = ((max(accs), max(accs) - min(ref_acc, min(accs))),
                (0.0, max(ref_lat, max(p[1] for p in points))),
                (0.0, max(ref_third, max(p[2] for p in points))))

    def distance(p: Point) -> float:
        # (best value, span) per axis; the distance to the best is |v - best| / span.
        return math.hypot(
            *(
                abs(v - best) / span if span > 0 else 0.0
                for v, (best, span) in zip(p, axes, strict=True)
            )
        )

    return sorted(range(len(points)), key=lambda i: (distance(points[i]), i))


def knee(points: Sequence[Point], reference: Point | None = None) -> int | None:
    """Index of the recommended point (:data:`KNEE_RULE`): the first of :func:`knee_order`,
    None for an empty input.

    The pick is always on the Pareto front, since a dominating point is strictly nearer the
    ideal (every axis is measured from its best value, so being better on one and no worse on
    the others is being nearer).
    """
    order = knee_order(points, reference)
    return order[0] if order else None
