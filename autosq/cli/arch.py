"""``autosq arch``: the per-layer plan and the totals of one SqueezeNet configuration."""

from __future__ import annotations

import json

import typer

from autosq.cli._options import (
    arch_config,
    base_e_option,
    bypass_option,
    conv1_option,
    freq_option,
    incr_e_option,
    json_option,
    macro_option,
    pct_3x3_option,
    sr_option,
)


def arch(
    preset: str | None = typer.Argument(
        None, help="A named preset (squeezenet1_0, squeezenet1_1, ...); flags override it."
    ),
    base_e: int | None = base_e_option(),
    incr_e: int | None = incr_e_option(),
    freq: int | None = freq_option(),
    pct_3x3: float | None = pct_3x3_option(),
    sr: float | None = sr_option(),
    macro: str | None = macro_option(),
    bypass: str | None = bypass_option(),
    conv1_filters: int | None = conv1_option(),
    num_classes: int | None = typer.Option(None, "--num-classes", help="Output classes."),
    input_size: int | None = typer.Option(None, "--input-size", help="Input side in pixels."),
    as_json: bool = json_option("one JSON object"),
) -> None:
    """Print the layers of a configuration and its params, MACs, size and peak memory."""
    from autosq.arch.cost import cost_of
    from autosq.arch.plan import plan
    from autosq.cli.render import arch_json, print_arch

    overrides = {
        "base_e": base_e,
        "incr_e": incr_e,
        "freq": freq,
        "pct_3x3": pct_3x3,
        "sr": sr,
        "macro": macro,
        "bypass": bypass,
        "conv1_filters": conv1_filters,
        "num_classes": num_classes,
        "input_size": input_size,
    }
    config = arch_config(preset, overrides)
    p = plan(config)
    c = cost_of(p)
    if as_json:
        typer.echo(json.dumps(arch_json(p, c), indent=2))
    else:
        print_arch(p, c, title=preset)
