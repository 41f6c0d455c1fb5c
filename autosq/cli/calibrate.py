"""``autosq calibrate``: fit a device's latency predictor from timings of spread candidates."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from autosq.cli._options import at_least, between, json_option, profiles_option


def calibrate(
    device: str = typer.Option(..., "--device", "-d", help="Device profile name or .toml file "
                               "(timed here or through its agent)."),
    samples: int = typer.Option(30, "--samples", callback=at_least(8),
                                help="Candidates to time (spread over the space by MACs)."),
    space: str = typer.Option("default", "--space", help="Space to draw candidates from."),
    input_size: int | None = typer.Option(None, "--input-size", callback=at_least(1),
                                          help="Input side (default: the profile's)."),
    seed: int = typer.Option(0, "--seed", callback=between(0, 2**32 - 1),
                             help="Seed of the candidates drawn."),
    profiles: list[Path] = profiles_option(),
    as_json: bool = json_option("one JSON object"),
) -> None:
    """Time spread candidates on a device, fit its latency predictor, report its
    cross-validated error, and store it for `autosq measure --predict` and `autosq devices`."""
    from autosq.arch.space import load_space
    from autosq.measure import timer_for
    from autosq.measure.predictor import save_predictor
    from autosq.measure.profiles import load_profile
    from autosq.outputs.calibrate import calibrate as run
    from autosq.outputs.calibrate import device_calibration

    profile = load_profile(device, profiles)
    chosen_space = load_space(space)
    timer = timer_for(profile)
    record = device_calibration(profile, timer)  # refuses estimated devices, asks the agent

    def on_sample(i: int, n: int, config: object, precision: str, ms: float) -> None:
        if not as_json:
            typer.echo(f"  [{i}/{n}] {precision} {ms:.3f} ms", err=True)

    predictor, seconds = run(profile, timer, record, chosen_space, samples, seed, input_size,
                             on_sample)
    path = save_predictor(predictor)
    if as_json:
        typer.echo(json.dumps({**predictor.to_dict(), "seconds": seconds, "path": str(path)},
                              indent=2))
        return
    forms = ", ".join(f"{f} {m:.1%}" for f, m in predictor.forms.items())
    typer.echo(f"{profile.name}: latency predictor from {predictor.samples} timed candidates "
               f"({timer.kind}, {seconds:.0f} s)\n"
               f"  form: {predictor.form} (leave-one-out MAPE by form: {forms})\n"
               f"  error: {predictor.error_text()}\n"
               f"  stored: {path}")
