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
    "under each budget in view, then repeatedly the member farthest from those already shown "
    "(accuracy and log latency, each scaled to the front's range)."
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

    The rest are chosen greedily by the farthest-point rule: each time, the point whose
    distance to the nearest already chosen one is largest, in accuracy and log latency each
    scaled to the points' range, so the shown members cover the range evenly wherever the
    front is dense. Ties go to the lowest index; the result is deterministic.
    """
    n = len(points)
    if n <= limit:
        return list(range(n))
    fastest = min(range(n), key=lambda i: (points[i][1], -points[i][0], i))
    best = min(range(n), key=lambda i: (-points[i][0], points[i][1], i))
    chosen = list(dict.fromkeys([fastest, best, *(i for i in keep if 0 <= i < n)]))
    accs = [p[0] for p in points]
    logs = [math.log(p[1]) if p[1] > 0 else 0.0 for p in points]

    def scaled(values: list[float]) -> list[float]:
        low, high = min(values), max(values)
        return [(v - low) / (high - low) if high > low else 0.0 for v in values]

    xy = list(zip(scaled(logs), scaled(accs), strict=True))
    nearest = [min(math.dist(xy[i], xy[c]) for c in chosen) for i in range(n)]
    while len(chosen) < limit:
        pick = max((i for i in range(n) if i not in chosen), key=lambda i: (nearest[i], -i))
        chosen.append(pick)
        nearest = [min(d, math.dist(xy[i], xy[pick])) for i, d in enumerate(nearest)]
    return sorted(chosen)
