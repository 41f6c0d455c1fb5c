"""Everything autosq shows a person: rich tables, and the JSON objects other tools read."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from autosq.arch import Plan
from autosq.cost import Cost


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
