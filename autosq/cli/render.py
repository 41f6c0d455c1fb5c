"""What autosq shows a person in a terminal: rich tables, and the JSON objects other tools
read. Presentation only: every number comes computed from the library."""

from __future__ import annotations

import math
import os
import shlex
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from autosq.searching.pareto import KNEE_RULE

if TYPE_CHECKING:
    from autosq.accuracy.proxy_check import ProxyCheck
    from autosq.arch.cost import Cost
    from autosq.arch.plan import Plan
    from autosq.arch.space import SearchSpace
    from autosq.measure.profiles import DeviceProfile
    from autosq.measure.protocol import LatencyResult
    from autosq.outputs.compare import Comparison
    from autosq.searching.result import FrontMember, SearchResult


def get_console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr); when not a terminal, as wide as ``COLUMNS`` says, else
    wide enough that tables written to a file or a pipe are never truncated."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() and int(columns) >= 40 else 160
        console = Console(stderr=stderr, width=width)
    return console


def _hw(n: int) -> str:
    return f"{n}x{n}"


def arch_json(p: Plan, c: Cost) -> dict[str, Any]:
    """The ``autosq arch --json`` object: totals, config and layers."""
    return {
        **c.to_dict(),
        "arch_id": p.config.arch_id,
        "config": p.config.to_dict(),
        "layers": [
            {
                "name": lay.name,
                "kind": lay.kind,
                "module": lay.module,
                "inputs": list(lay.inputs),
                "cin": lay.cin,
                "cout": lay.cout,
                "kernel": lay.kernel,
                "stride": lay.stride,
                "in_hw": lay.in_hw,
                "out_hw": lay.out_hw,
                "params": lay.params,
                "macs": lay.macs,
            }
            for lay in p.layers
        ],
    }


def print_arch(p: Plan, c: Cost, title: str | None = None) -> None:
    """The per-layer table and the totals of a plan."""
    cfg = p.config
    head = title or "custom"
    table = Table(
        title=f"{head}: {cfg.macro}, base_e={cfg.base_e} incr_e={cfg.incr_e} freq={cfg.freq} "
        f"pct_3x3={cfg.pct_3x3:g} sr={cfg.sr:g} bypass={cfg.bypass}, "
        f"{cfg.input_size}x{cfg.input_size}, {cfg.num_classes} classes",
        title_justify="left",
    )
    for col, just in [
        ("layer", "left"),
        ("kind", "left"),
        ("channels", "right"),
        ("k/s", "right"),
        ("output", "right"),
        ("params", "right"),
        ("MACs", "right"),
    ]:
        table.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for lay in p.layers:
        ks = f"{lay.kernel}/{lay.stride}" if lay.kind in ("conv", "maxpool") else ""
        table.add_row(
            lay.name,
            lay.kind,
            f"{lay.cin}->{lay.cout}",
            ks,
            _hw(lay.out_hw),
            f"{lay.params:,}" if lay.params else "",
            f"{lay.macs:,}" if lay.macs else "",
        )
    console = get_console()
    console.print(table)
    totals = Table(show_header=False, box=None)
    totals.add_column(style="bold")
    totals.add_column(justify="right")
    totals.add_row("params", f"{c.params:,}")
    totals.add_row("conv MACs", f"{c.macs:,}")
    totals.add_row(
        "size fp32 / fp16 / int8",
        f"{c.size_mb('fp32'):.2f} / {c.size_mb('fp16'):.2f} / {c.size_mb('int8'):.2f} MiB",
    )
    totals.add_row("peak activation memory", f"{c.peak_mem_mb:.2f} MiB (fp32, batch 1)")
    totals.add_row("arch id", cfg.arch_id)
    console.print(totals)


def print_devices(profiles: list[DeviceProfile], predictors: dict[str, str]) -> None:
    """The ``autosq devices`` table (``predictors``: device -> its predictor's state)."""
    table = Table(title="Device profiles", title_justify="left")
    for col in (
        "device",
        "description",
        "max MiB",
        "max ms",
        "max RAM MiB",
        "threads",
        "latency",
        "calibration / file",
        "predictor",
    ):
        table.add_column(col)
    for p in profiles:
        how = p.latency_source
        detail = p.path
        if p.calibration is not None:
            c = p.calibration
            detail = f"{c.reference}@{c.reference_input_size} = {c.device_ms:g} ms ({p.path})"
        elif p.agent_url:
            detail = f"agent {p.agent_url}"
        table.add_row(
            p.name,
            p.description,
            f"{p.max_mb:g}",
            "-" if p.max_ms is None else f"{p.max_ms:g}",
            "-" if p.max_ram_mb is None else f"{p.max_ram_mb:g}",
            str(p.threads),
            how,
            detail,
            predictors.get(p.name, "-"),
        )
    get_console().print(table)


def _ms(value: float) -> str:
    """Milliseconds with enough digits for a fast model (0.0053, not 0.00)."""
    return f"{value:.2f}" if value >= 1 else f"{value:.3g}"


def print_latency(what: str, profile: DeviceProfile, r: LatencyResult) -> None:
    """The ``autosq measure`` summary."""
    t = Table(show_header=False, box=None, title=f"{what} on {profile.name}", title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("latency (median)", f"{_ms(r.latency_ms)} ms  [{r.latency_kind}]")
    t.add_row("p90 / min", f"{_ms(r.p90_ms)} / {_ms(r.min_ms)} ms")
    gap = (f"two quietest blocks {r.block_gap:.1%} apart" if math.isfinite(r.block_gap)
           else "one block")
    t.add_row("runs", f"{r.runs} in {r.blocks} blocks (stopped: {r.stop}; {gap})")
    t.add_row("spread (p90-p10)/median", f"{r.spread:.1%}")
    t.add_row("threads", f"{r.threads} on CPUs {r.protocol.get('cpus')}")
    t.add_row("onnxruntime", f"{r.protocol.get('onnxruntime')} {r.protocol.get('provider')}")
    if r.scale is not None and r.host_ms is not None:
        cal = r.protocol.get("calibration", {})
        t.add_row(
            "estimated from",
            f"{r.host_ms:.2f} ms here x {r.scale:.3f} "
            f"({cal.get('reference')} is {cal.get('device_ms')} ms there, "
            f"{cal.get('reference_host_ms', 0):.2f} ms here)",
        )
        t.add_row("source", str(cal.get("source")))
    if r.contention is not None:
        warn = (" [yellow](contended: the latency may read high; an idle machine gives the "
                "truth)[/yellow]" if r.contended else "")
        t.add_row("contention", f"{r.contention:.0%} of the timing (other CPUs busy, or "
                  f"taken by the hypervisor){warn}")
    if r.over_budget:
        t.add_row("budget", "[red]over the latency budget[/red]")
    get_console().print(t)


def _front_columns(width: int) -> str:
    """The front table's layout for a console ``width``: every column, the config in its own
    columns, or (narrow terminals) the config in one cell; the marker and the trial always."""
    return "wide" if width >= 150 else "medium" if width >= 110 else "narrow"


def _front_table(result: SearchResult, members: list[FrontMember], width: int) -> Table:
    layout = _front_columns(width)
    first = members[0]
    confirmed = any(m.timing == "confirmed" for m in members)
    table = Table(title="Feasible Pareto front (* recommended)", title_justify="left",
                  caption=f"accuracy: {first.record.accuracy_kind}; latency: ms, "
                  f"{first.latency_kind}; size: MiB", caption_justify="left",
                  show_edge=layout == "wide", pad_edge=layout == "wide")
    config_cols = (["config"] if layout == "narrow"
                   else ["macro", "base_e", "incr_e", "freq", "pct_3x3", "sr", "bypass"])
    cols = ["", "trial", *config_cols, "prec", "accuracy", "latency", "size"]
    if layout == "wide":
        cols += ["params", "MMACs", "peak MiB"]
    for col in cols:
        left = col in ("", "macro", "bypass", "prec", "config")
        table.add_column(col, justify="left" if left else "right", no_wrap=col != "config")
    for m in members:
        r = m.record
        cfg = r.config
        config = ([f"{cfg.macro} {cfg.base_e}+{cfg.incr_e}/{cfg.freq} {cfg.pct_3x3:.2f} "
                   f"{cfg.sr:.3f} {cfg.bypass}"] if layout == "narrow" else
                  [cfg.macro, str(cfg.base_e), str(cfg.incr_e), str(cfg.freq),
                   f"{cfg.pct_3x3:.2f}", f"{cfg.sr:.3f}", cfg.bypass])
        lat = _ms(m.latency_ms) + ("~" if confirmed and m.timing != "confirmed" else "")
        row = ["*" if m.recommended else "", str(m.trial), *config,
               r.precision + ("!" if m.slower_than_fp32 else ""), f"{m.accuracy:.4g}", lat,
               f"{r.size_mb:.2f}"]
        if layout == "wide":
            row += [f"{r.params:,}", f"{r.macs / 1e6:,.0f}", f"{r.peak_mem_mb:.2f}"]
        table.add_row(*row)
    if layout == "narrow":
        table.caption = (f"config: macro base_e+incr_e/freq pct_3x3 sr bypass; "
                         f"{table.caption}")
    return table


def print_front(result: SearchResult, show_all: bool = False) -> None:
    """The front table and what the user needs to act on it: the members shown first (the
    accuracy-latency front and the recommended member, thinned to at most 15), or with
    ``show_all`` the whole front. The layout follows the console's width (80 columns and up
    keep the recommended marker and the trial numbers)."""
    from autosq.searching.thinning import THIN_RULE

    console = get_console()
    s = result.settings
    c = result.counts
    console.print(
        f"[bold]{escape(result.study_name)}[/bold]: {s.device}, budget {s.budget.describe()}, "
        f"space {escape(s.space)}, {s.input_size}x{s.input_size}, {s.num_classes} classes. "
        f"{c.trials} trials: {c.complete} complete ({c.skipped} skipped before timing), "
        f"{c.failed} failed, {c.feasible} fit the budget. Objectives: "
        f"{s.objectives.describe()}."
    )
    if not result.members:
        console.print(f"[red]{escape(result.nearest_miss or '')}[/red]")
        return
    shown = result.members if show_all else result.shown
    console.print(_front_table(result, shown, console.width))
    hidden = len(result.members) - len(shown)
    if hidden:
        secondary = sum(not m.primary and not m.recommended for m in result.members)
        what = ("" if not secondary else
                f" ({secondary} of them only better on {s.objectives.third})")
        console.print(f"{len(shown)} of the {len(result.members)} members shown{what}; "
                      f"--all lists every one. {THIN_RULE}")
    caveat = s.accuracy.caveat()
    if caveat is not None:
        console.print(f"[yellow]{escape(caveat)}[/yellow]")
    if any(m.timing != "confirmed" for m in shown) and any(m.timing == "confirmed"
                                                           for m in shown):
        console.print("~ the search's own latency (not confirmed: see below)")
    for m in shown:
        if m.slower_than_fp32 and m.fp32 is not None:
            console.print(f"! trial {m.trial}: int8 runs slower here than the same "
                          f"architecture in fp32 (trial {m.fp32[0]}: {_ms(m.fp32[1])} ms "
                          f"against {_ms(m.latency_ms)} ms)")
    ref = result.reference
    third = s.objectives.third
    ref_third = {"size": f", {ref[2]:g} MiB", "memory": f", {ref[2]:g} MiB activations"}
    console.print(
        f"hypervolume {result.hypervolume:.4g} (reference: accuracy {ref[0]:.4g}, "
        f"{ref[1]:g} ms{ref_third.get(third or '', '')}); latencies {result.retimed}."
    )
    if result.screen_error is not None:
        console.print(f"screen error (this study): {result.screen_error.describe()}")
    n = result.counts
    if n.screened or n.predicted:
        console.print(f"search latencies: {n.screened} candidates timed briefly (screen), "
                      f"{n.predicted} predicted and left untimed (clearly over the budget or "
                      "dominated); the front is confirmed together unless --no-retime.")
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(f"* {KNEE_RULE}")
    console.print(
        f"study {escape(repr(result.study_name))} in {escape(result.storage)}; show again with "
        f"`autosq front --study {escape(shlex.quote(result.study_name))} --storage "
        f"{escape(shlex.quote(result.storage))}`."
    )


def print_spaces(spaces: list[SearchSpace]) -> None:
    """The ``autosq spaces`` table."""
    from autosq.arch.space import space_size

    table = Table(title="Search spaces", title_justify="left")
    for col in ("space", "description", "dimensions", "fixed", "points"):
        table.add_column(col)
    for sp in spaces:
        dims = []
        for d in sp.dims:
            if d.kind == "categorical":
                dims.append(f"{d.name} in {{{', '.join(map(str, d.choices))}}}")
            else:
                step = f" step {d.step:g}" if d.step else (" log" if d.log else "")
                dims.append(f"{d.name} {d.low:g}..{d.high:g}{step}")
        fixed = ", ".join(f"{k}={v}" for k, v in sp.fixed.items()) or "-"
        size = space_size(sp)
        table.add_row(
            sp.name,
            sp.description,
            "\n".join(dims),
            fixed,
            "continuous" if size == float("inf") else f"{size:,.0f}",
        )
    get_console().print(table)


def print_proxy_check(check: ProxyCheck) -> None:
    """The proxy-check table, with what it is based on."""
    import math

    d = check.data
    table = Table(title=f"Rank correlation with stand-alone validation top-1: "
                  f"{len(check.archs)} architectures from space {check.space!r}, each trained "
                  f"{check.reference_steps} steps on {d['name']} ({d['n_train']} train / "
                  f"{d['n_val']} val images, {d['input_size']}px); 95% bootstrap intervals",
                  title_justify="left")
    for col in ("estimator", "Spearman rho", "Kendall tau", "s / candidate"):
        table.add_column(col, justify="left" if col == "estimator" else "right")

    def key(r: Any) -> float:
        return -r.kendall if not math.isnan(r.kendall) else 1.0

    for r in sorted(check.table, key=key):
        table.add_row(r.estimator,
                      f"{r.spearman:+.3f} [{r.spearman_ci[0]:+.2f}, {r.spearman_ci[1]:+.2f}]",
                      f"{r.kendall:+.3f} [{r.kendall_ci[0]:+.2f}, {r.kendall_ci[1]:+.2f}]",
                      f"{r.seconds_per_candidate:.2f}")
    console = get_console()
    console.print(table)
    accs = [a.reference_top1 for a in check.archs]
    console.print(f"reference val_top1 ranged {min(accs):.3f}..{max(accs):.3f}; best estimator "
                  f"by Kendall tau: {check.best()}")
    sp = check.seed_spread
    if sp:
        console.print(f"seed-to-seed spread of the reference ({sp['archs']:.0f} architectures "
                      f"trained again from another seed): mean |difference| "
                      f"{sp['mean_abs_diff']:.3f}, sd {sp['sd_diff']:.3f}; differences smaller "
                      "than that are not a ranking")


def print_compare(c: Comparison) -> None:
    """Side by side per device, and a grid of best accuracy when budgets are lists."""
    console = get_console()
    table = Table(title=f"What the budget buys: study {c.study!r} (accuracy {c.accuracy_kind})",
                  title_justify="left")
    for col in ("device", "max MiB", "max ms", "fit", "best accuracy", "latency ms",
                "size MiB", "trial", "recommended"):
        table.add_column(col, justify="left" if col == "device" else "right")

    def opt(value: float | int | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    for r in c.rows:
        lat = "-" if r.latency_ms is None else f"{r.latency_ms:.3g} {r.latency_kind}"
        table.add_row(r.device, f"{r.max_mb:g}", opt(r.max_ms, "g"), str(r.feasible_count),
                      opt(r.best_accuracy, ".4g"), lat, opt(r.size_mb, ".2f"), opt(r.trial, "d"),
                      opt(r.recommended_trial, "d"))
    console.print(table)
    budgets = sorted({(r.max_mb, r.max_ms or 0.0) for r in c.rows})
    if len(budgets) > 1:
        grid = Table(title="Best accuracy per device and budget (MiB / ms)", title_justify="left")
        grid.add_column("device")
        for mb, ms in budgets:
            grid.add_column(f"{mb:g}/{ms:g}" if ms else f"{mb:g}/-", justify="right")
        for dev in dict.fromkeys(r.device for r in c.rows):
            cells = {(r.max_mb, r.max_ms or 0.0): r.best_accuracy for r in c.rows
                     if r.device == dev}
            grid.add_row(dev, *(opt(cells[b], ".4g") for b in budgets))
        console.print(grid)
    for note in c.notes:
        console.print(f"note: {note}")
