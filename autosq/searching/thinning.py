"""A front a person can choose from: at most :data:`SHOWN` members, spread over the
accuracy-latency range, keeping the members a person would look for first.

Pure Python (standard library only). A long front (155 members after 1000 trials of the main
job) is shown thinned in the table, the page and ``--json``; the whole front is one flag
(``--all``) or one click away.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from autosq.searching.pareto import Point

SHOWN = 15  # members shown by default

THIN_RULE = (
    f"Thinned to at most {SHOWN} members: the recommended one, both ends, the most accurate "
    "under each budget in view, then repeatedly the member that adds most to the hypervolume "
    "of those shown (accuracy scaled to the front's range, latency from 0 to the slowest "
    "member's), the farthest from those shown on a tie."
)

__all__ = ["SHOWN", "THIN_RULE", "best_under", "thin"]


def best_under(points: Sequence[Point], max_ms: float) -> int | None:
    """Index of the most accurate point at or under ``max_ms`` (the faster on a tie), or None
    when none is."""
    fits = [i for i, p in enumerate(points) if p[1] <= max_ms]
    if not fits:
        return None
    return min(fits, key=lambda i: (-points[i][0], points[i][1], i))


def thin(points: Sequence[Point], keep: Iterable[int] = (), limit: int = SHOWN) -> list[int]:
    """Indices (ascending) of at most ``limit`` points to show (all of them when there are no
    more), always with both ends (the fastest and the most accurate) and ``keep``.

    The rest are chosen greedily: each time, the point that adds most to the hypervolume of
    the chosen ones in the accuracy-latency plane (accuracy scaled to the points' range,
    latency to the slowest point's; the reference just past the slowest and the least
    accurate, so that every point can add), which shows the members a front's hypervolume is
    made of, spread over its range. A point that adds nothing (a three-objective front has
    members dominated in this plane) is ranked by its distance to the nearest chosen one, in
    accuracy and log latency each scaled to the range. Ties go to the lowest index; the result
    is deterministic.
    """
    n = len(points)
    if n <= limit:
        return list(range(n))
    fastest = min(range(n), key=lambda i: (points[i][1], -points[i][0], i))
    best = min(range(n), key=lambda i: (-points[i][0], points[i][1], i))
    chosen = list(dict.fromkeys([fastest, best, *(i for i in keep if 0 <= i < n)]))
    accs = [p[0] for p in points]
    logs = [math.log(p[1]) if p[1] > 0 else 0.0 for p in points]
    slowest = max(p[1] for p in points)
    plane = [(p[1] / slowest if slowest > 0 else 0.0, a)
             for p, a in zip(points, _scaled(accs), strict=True)]
    xy = list(zip(_scaled(logs), _scaled(accs), strict=True))
    nearest = [min(math.dist(xy[i], xy[c]) for c in chosen) for i in range(n)]
    while len(chosen) < limit:
        area = _area([plane[c] for c in chosen])
        gain = {i: _area([plane[c] for c in chosen] + [plane[i]]) - area
                for i in range(n) if i not in chosen}
        pick = max(gain, key=lambda i: (round(gain[i], 12), nearest[i], -i))
        chosen.append(pick)
        nearest = [min(d, math.dist(xy[i], xy[pick])) for i, d in enumerate(nearest)]
    return sorted(chosen)


REFERENCE = (1.05, -0.05)  # (latency, accuracy) in the scaled plane: past every point


def _scaled(values: list[float]) -> list[float]:
    low, high = min(values), max(values)
    return [(v - low) / (high - low) if high > low else 0.0 for v in values]


def _area(points: Sequence[tuple[float, float]]) -> float:
    """The area (latency down, accuracy up) ``points`` dominate up to :data:`REFERENCE`."""
    total, top = 0.0, REFERENCE[1]
    for lat, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > top:
            total += (REFERENCE[0] - lat) * (acc - top)
            top = acc
    return total
