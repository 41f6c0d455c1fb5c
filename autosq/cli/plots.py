"""The PNG plots of ``search``/``front`` and ``compare``: what to draw is computed first, as
plain data (:func:`front_plot`, :func:`compare_plot`), then drawn with matplotlib; the file is
written atomically."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from autosq.searching.pareto import pareto_front

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from autosq.outputs.compare import Comparison
    from autosq.searching.result import FrontMember, SearchResult

XY = list[tuple[float, float]]


class Panel(NamedTuple):
    """One axis: the measured trials (fitting or not), the front, the pick, a budget line."""

    xlabel: str
    fits: XY
    over: XY
    front: XY
    recommended: tuple[float, float] | None
    budget: float | None


class FrontPlot(NamedTuple):
    """Accuracy against latency and against size, for one study."""

    title: str
    ylabel: str
    panels: tuple[Panel, Panel]


class DeviceSeries(NamedTuple):
    """One device's candidates and front, accuracy against latency."""

    device: str
    points: XY
    front: XY


class ComparePlot(NamedTuple):
    """Every device's candidates and front on one latency axis, with latency budget lines."""

    title: str
    ylabel: str
    series: list[DeviceSeries]
    budgets: list[float]


def _axis(member: FrontMember, axis: int) -> float:
    """The member's latency (axis 1) or size (axis 2), as the cloud's points hold them."""
    return member.latency_ms if axis == 1 else member.record.size_mb


def front_plot(result: SearchResult) -> FrontPlot:
    """What the front plot shows."""
    budget = result.settings.budget
    members = result.members
    kind = members[0].record.accuracy_kind if members else "accuracy"
    rec = result.recommended
    panels = []
    for axis, label, limit in ((1, "latency (ms)", budget.max_ms),
                               (2, "size (MiB)", budget.max_mb)):
        # Each panel draws the two-objective front of its own axis as a staircase (the same
        # choice as the table: a three-objective front drawn over one axis zigzags).
        points = [(m.accuracy, _axis(m, axis), 0.0) for m in members]
        front = sorted((points[i][1], points[i][0]) for i in pareto_front(points))
        panels.append(Panel(
            xlabel=label,
            fits=[(p[axis], p.accuracy) for p in result.cloud if p.feasible],
            over=[(p[axis], p.accuracy) for p in result.cloud if not p.feasible],
            front=front,
            recommended=None if rec is None else (_axis(rec, axis), rec.accuracy),
            budget=limit,
        ))
    lat_kind = members[0].latency_kind if members else ""
    return FrontPlot(title=f"{result.study_name}: {result.settings.device}, latency {lat_kind}",
                     ylabel=f"accuracy ({kind})", panels=(panels[0], panels[1]))


def compare_plot(c: Comparison) -> ComparePlot:
    """What the comparison plot shows."""
    series = []
    for dev, pts in c.points.items():
        front_idx = pareto_front([(p.accuracy, p.latency_ms, 0.0) for p in pts])  # a staircase
        front = sorted((pts[j].latency_ms, pts[j].accuracy) for j in front_idx)
        series.append(DeviceSeries(dev, [(p.latency_ms, p.accuracy) for p in pts], front))
    budgets = sorted({r.max_ms for r in c.rows if r.max_ms})
    return ComparePlot(title=f"{c.study}: the same candidates on each device",
                       ylabel=f"accuracy ({c.accuracy_kind})", series=series, budgets=budgets)


def _png(fig: Figure) -> bytes:
    """The figure as PNG bytes (drawn in memory: a destination is written whole, with the
    command's other outputs, or not at all)."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, dpi=110, format="png")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def axis_end(panel: Panel) -> float:
    """Where a panel's x axis ends: just past its slowest (or largest) candidate, so a front
    far under a loose budget is not squeezed against the axis; the budget pulls the axis out
    only when it lies within a quarter beyond that."""
    xs = [p[0] for pts in (panel.fits, panel.over, panel.front) for p in pts]
    end = max(xs, default=panel.budget or 1.0)
    if panel.budget and panel.budget <= 1.25 * end:
        end = max(end, panel.budget)
    return end * 1.05


def draw_front(plot: FrontPlot) -> bytes:
    """Draw a :class:`FrontPlot` as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, panel in zip(axes, plot.panels, strict=True):
        for pts, colour, name in ((panel.over, "#bbbbbb", "over budget"),
                                  (panel.fits, "#6a9fd4", "fits")):
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, c=colour, label=name)
        ax.step([p[0] for p in panel.front], [p[1] for p in panel.front], "o-", c="#d62728",
                where="post", lw=1, label="front (this axis)")
        if panel.recommended is not None:
            ax.plot(*panel.recommended, "*", c="black", ms=14, label="recommended")
        xmax = axis_end(panel)
        if panel.budget and panel.budget <= xmax:
            ax.axvline(panel.budget, c="#d62728", ls="--", lw=1, label=f"budget {panel.budget:g}")
        elif panel.budget:
            ax.annotate(f"budget {panel.budget:g} \u2192 (beyond the axis)", (0.99, 0.98),
                        xycoords="axes fraction", ha="right", va="top", fontsize=8,
                        color="#d62728")
        ax.set_xlim(0, xmax)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(plot.ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(plot.title)
    fig.tight_layout()
    return _png(fig)


def draw_compare(plot: ComparePlot) -> bytes:
    """Draw a :class:`ComparePlot` as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for i, s in enumerate(plot.series):
        colour = f"C{i}"
        ax.scatter([p[0] for p in s.points], [p[1] for p in s.points], s=10, c=colour, alpha=0.3)
        ax.step([p[0] for p in s.front], [p[1] for p in s.front], "o-", c=colour,
                where="post", label=s.device)
    xs = [p[0] for s in plot.series for p in s.points if p[0] > 0]
    low, high = (min(xs) / 1.1, max(xs) * 1.1) if xs else (0.1, 10.0)
    for ms in plot.budgets:  # only where in view: the axis spans the candidates
        if low <= ms <= high * 1.25:
            ax.axvline(ms, c="grey", ls="--", lw=1)
            high = max(high, ms * 1.05)
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel(plot.ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(plot.title)
    fig.tight_layout()
    return _png(fig)
