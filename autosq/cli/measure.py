"""``autosq measure``: time one model for a device, with the stats and how they were obtained."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from autosq.cli._options import (
    at_least,
    json_option,
    max_memory_mb_option,
    max_model_mb_option,
    max_seconds_option,
    positive,
    profiles_option,
)


def measure(
    model: Path | None = typer.Argument(None, help="An ONNX file to time."),
    device: str = typer.Option("host", "--device", "-d", help="Device profile name or .toml file."),
    preset: str | None = typer.Option(
        None, "--preset", help="Time a named preset instead of a file."
    ),
    input_size: int | None = typer.Option(
        None, "--input-size", callback=at_least(1),
        help="Input side for --preset (default: the profile's)."
    ),
    num_classes: int = typer.Option(1000, "--num-classes", callback=at_least(1),
                                    help="Classes for --preset."),
    max_ms: float | None = typer.Option(
        None, "--max-ms", callback=positive(),
        help="Latency budget: stop early once clearly over it."
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Through an agent: time again, even if "
                               "the agent has this model's result cached."),
    max_model_mb: float = max_model_mb_option(),
    max_seconds: float = max_seconds_option(),
    max_memory_mb: float = max_memory_mb_option(),
    profiles: list[Path] = profiles_option(),
    as_json: bool = json_option("one JSON object"),
) -> None:
    """Time a model with ONNX Runtime for a device: measured here, estimated, or on its agent."""
    from autosq.errors import UsageError
    from autosq.measure.profiles import load_profile

    if (model is None) == (preset is None):
        raise UsageError("give either MODEL.onnx or --preset NAME (not both, not neither)")
    profile = load_profile(device, profiles)
    if model is not None:
        if not model.is_file():
            raise UsageError(f"model file {model} does not exist (expected an .onnx file)")
        size = model.stat().st_size
        if size > max_model_mb * 1024 * 1024:
            raise UsageError(f"model file {model} is {size / 2**20:.1f} MB, over --max-model-mb "
                             f"{max_model_mb:g}")
        onnx_bytes = model.read_bytes()
        what = str(model)
    else:
        from autosq.arch.model import build
        from autosq.arch.presets import preset as get_preset
        from autosq.measure.onnx import export_bytes

        assert preset is not None
        size = input_size or profile.input_size
        config = get_preset(preset, input_size=size, num_classes=num_classes)
        onnx_bytes = export_bytes(build(config, seed=0), size)
        what = f"{preset} @ {size}x{size}"
    from autosq.cli.render import print_latency
    from autosq.measure import timer_for
    from autosq.measure.limits import Limits
    from autosq.measure.protocol import TimingProtocol

    limits = Limits(max_model_mb=max_model_mb, max_seconds=max_seconds,
                    max_memory_mb=max_memory_mb)
    result = timer_for(profile, TimingProtocol.careful(), limits, fresh).time(onnx_bytes, max_ms)
    if as_json:
        typer.echo(
            json.dumps({"model": what, "device": profile.name, **result.to_dict()}, indent=2)
        )
    else:
        print_latency(what, profile, result)
