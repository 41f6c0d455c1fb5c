"""A front a person can choose from: at most :data:`SHOWN` members, spread over the
accuracy-latency range, keeping the members a person would look for first.

Pure Python (standard library only). A long front (155 members after 1000 trials of the main
job) is shown thinned in the table, the page and ``--json``; the whole front is one flag
(``--all``) or one click away.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence

from autosq.searching.pareto import Point

SHOWN = 15  # members shown by default

THIN_RULE = (
    f"Thinned to at most {SHOWN} members (more only when more must be kept): the recommended "
    "one, both ends, the most accurate under each budget in view, and with them the members "
    "that together dominate the most area of the accuracy-latency plane (the largest "
    "hypervolume any choice of that many can reach, found exactly)."
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

    The rest are the subset of the accuracy-latency front (the points no other is faster and
    at least as accurate than) whose hypervolume in that plane, with the ends and ``keep``, is
    the largest any subset of that size reaches: the members a front's hypervolume is made of,
    spread over its range. It is found exactly by dynamic programming over the front sorted by
    latency (as in Auger et al., "Theory of the hypervolume indicator", FOGA 2009), in
    O(limit x front) with a monotone hull of lines; the reference point does not change the
    choice, as both ends are always in it. When the plane's front is shorter than the limit
    (a three-objective front has members dominated in the plane) the rest are chosen farthest
    first from those shown, in accuracy and log latency each scaled to the range (the lowest
    index on a tie). The result is deterministic. More than ``limit`` only when more must be
    kept.
    """
    n = len(points)
    if n <= limit:
        return list(range(n))
    fastest = min(range(n), key=lambda i: (points[i][1], -points[i][0], i))
    best = min(range(n), key=lambda i: (-points[i][0], points[i][1], i))
    chosen = list(dict.fromkeys([fastest, best, *(i for i in keep if 0 <= i < n)]))
    plane = _plane_front(points)  # fastest first, best last
    on_plane = set(plane)
    slots = limit - sum(i not in on_plane for i in chosen)
    if len(plane) <= slots:
        chosen += [i for i in plane if i not in chosen]
    else:
        kept = set(chosen)
        forced = [k for k, i in enumerate(plane) if i in kept]
        chain = _best_chain([points[i][1] for i in plane], [points[i][0] for i in plane],
                            forced, max(slots, len(forced)))
        chosen += [plane[k] for k in chain if plane[k] not in chosen]
    if len(chosen) < limit:
        chosen += _farthest(points, chosen, limit - len(chosen))
    return sorted(chosen)


def _plane_front(points: Sequence[Point]) -> list[int]:
    """Indices of the accuracy-latency front (the first of equal points), fastest first:
    latency and accuracy both strictly rising along it."""
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0], i))
    front: list[int] = []
    for i in order:
        if not front or points[i][0] > points[front[-1]][0]:
            front.append(i)
    return front


def _best_chain(xs: Sequence[float], ys: Sequence[float], forced: Sequence[int],
                size: int) -> list[int]:
    """Positions of ``size`` points of a front (``xs`` latency and ``ys`` accuracy, both
    strictly rising; position 0 and the last in ``forced``) with every ``forced`` one, of the
    largest area: sum over chosen i of ys[i] * (the next chosen's x - xs[i]); the last one's
    term is the same for every choice. One layer per chosen count; a layer's best value at j
    is the best of lines ys[i] * x + (value[i] - ys[i] * xs[i]) over the i after the last
    forced point before j, read off a hull whose slopes and queries both rise."""
    n = len(xs)
    is_forced = [False] * n
    for k in forced:
        is_forced[k] = True
    none = -math.inf
    value = [0.0] + [none] * (n - 1)  # chains of one point: position 0 only
    parents: list[list[int]] = []
    for _ in range(size - 1):
        nxt, parent = [none] * n, [-1] * n
        hull: deque[tuple[float, float, int]] = deque()
        for j in range(1, n):
            i = j - 1
            if is_forced[i]:
                hull.clear()  # a chain may not skip a forced point
            if value[i] > none:
                _add(hull, (ys[i], value[i] - ys[i] * xs[i], i))
            while len(hull) > 1 and _at(hull[1], xs[j]) > _at(hull[0], xs[j]):
                hull.popleft()
            if hull:
                nxt[j], parent[j] = _at(hull[0], xs[j]), hull[0][2]
        value = nxt
        parents.append(parent)
    chain, j = [n - 1], n - 1
    for parent in reversed(parents):
        j = parent[j]
        chain.append(j)
    return chain[::-1]


def _at(line: tuple[float, float, int], x: float) -> float:
    return line[0] * x + line[1]


def _add(hull: deque[tuple[float, float, int]], line: tuple[float, float, int]) -> None:
    """Add a line of the highest slope yet, dropping those it makes useless for a maximum."""
    while len(hull) > 1:
        (m1, b1, _), (m2, b2, _) = hull[-2], hull[-1]
        m3, b3 = line[0], line[1]
        if (b1 - b3) * (m2 - m1) > (b1 - b2) * (m3 - m1):
            break
        hull.pop()
    hull.append(line)


def _farthest(points: Sequence[Point], chosen: Sequence[int], count: int) -> list[int]:
    """``count`` more points, each the farthest from those shown (accuracy and log latency
    each scaled to the range; the lowest index on a tie)."""
    accs = _scaled([p[0] for p in points])
    logs = _scaled([math.log(p[1]) if p[1] > 0 else 0.0 for p in points])
    xy = list(zip(logs, accs, strict=True))
    nearest = [min(math.dist(xy[i], xy[c]) for c in chosen) for i in range(len(points))]
    taken = set(chosen)
    more: list[int] = []
    for _ in range(count):
        pick = max((i for i in range(len(points)) if i not in taken),
                   key=lambda i: (nearest[i], -i))
        more.append(pick)
        taken.add(pick)
        nearest = [min(d, math.dist(xy[i], xy[pick])) for i, d in enumerate(nearest)]
    return more


def _scaled(values: list[float]) -> list[float]:
    low, high = min(values), max(values)
    return [(v - low) / (high - low) if high > low else 0.0 for v in values]
