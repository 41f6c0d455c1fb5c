"""Everything autosq shows a person: rich tables, and the JSON objects other tools read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from autosq.arch import Plan
from autosq.cost import Cost

if TYPE_CHECKING:
    from autosq.latency import LatencyResult
    from autosq.profiles import DeviceProfile


def get_console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr); when not a terminal, wide enough that tables written to
    a file or a pipe are never truncated."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=160)
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


def print_devices(profiles: list[DeviceProfile]) -> None:
    """The ``autosq devices`` table."""
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
        )
    get_console().print(table)


def print_latency(what: str, profile: DeviceProfile, r: LatencyResult) -> None:
    """The ``autosq measure`` summary."""
    t = Table(show_header=False, box=None, title=f"{what} on {profile.name}", title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("latency (median)", f"{r.latency_ms:.2f} ms  [{r.latency_kind}]")
    t.add_row("p90 / min", f"{r.p90_ms:.2f} / {r.min_ms:.2f} ms")
    t.add_row(
        "runs",
        f"{r.runs} in {r.blocks} blocks (stopped: {r.stop}; "
        f"two quietest blocks {r.block_gap:.1%} apart)",
    )
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
    if r.over_budget:
        t.add_row("budget", "[red]over the latency budget[/red]")
    get_console().print(t)
