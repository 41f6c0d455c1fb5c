"""``autosq arch``: the per-layer plan and the totals of one SqueezeNet configuration."""

from __future__ import annotations

import json

import typer

from autosq.cli._options import json_option


def arch(
    preset: str | None = typer.Argument(
        None, help="A named preset (squeezenet1_0, squeezenet1_1, ...); flags override it."
    ),
    base_e: int | None = typer.Option(None, "--base-e", help="Expand filters of fire2."),
    incr_e: int | None = typer.Option(
        None, "--incr-e", help="Expand filters added every freq modules."
    ),
    freq: int | None = typer.Option(None, "--freq", help="Fire modules between increments."),
    pct_3x3: float | None = typer.Option(
        None, "--pct-3x3", help="Share of 3x3 expand filters, 0..1."
    ),
    sr: float | None = typer.Option(None, "--sr", help="Squeeze ratio: squeeze = sr x expand."),
    macro: str | None = typer.Option(None, "--macro", help="Macro architecture: v1.0 or v1.1."),
    bypass: str | None = typer.Option(None, "--bypass", help="none, simple or complex."),
    conv1_filters: int | None = typer.Option(None, "--conv1", help="Filters of conv1."),
    num_classes: int | None = typer.Option(None, "--num-classes", help="Output classes."),
    input_size: int | None = typer.Option(None, "--input-size", help="Input side in pixels."),
    as_json: bool = json_option("one JSON object"),
) -> None:
    """Print the layers of a configuration and its params, MACs, size and peak memory."""
    from autosq.arch.config import SqueezeNetConfig
    from autosq.arch.cost import cost_of
    from autosq.arch.plan import plan
    from autosq.arch.presets import preset as get_preset
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
    if preset is not None:
        config = get_preset(preset, **overrides)
    else:
        config = SqueezeNetConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
    p = plan(config)
    c = cost_of(p)
    if as_json:
        typer.echo(json.dumps(arch_json(p, c), indent=2))
    else:
        print_arch(p, c, title=preset)
