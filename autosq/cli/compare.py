"""``autosq compare``: what the same budget buys on different devices."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from autosq.cli._options import (
    at_least,
    check_outputs,
    csv_option,
    device_names,
    json_option,
    plot_option,
    profiles_option,
    storage_option,
)


def compare(
    devices: str = typer.Option(..., "--devices", help="Comma-separated device profiles, e.g. "
                                "rpi3b,rpi4,rpi5,jetson-nano."),
    max_mb: str | None = typer.Option(None, "--max-mb", help="Size budget(s) in MiB, e.g. 5 "
                                      "or 1,2,5,10 (default: the study's)."),
    max_ms: str | None = typer.Option(None, "--max-ms", help="Latency budget(s) in ms, e.g. "
                                      "40 or 20,50,100 (default: none)."),
    study: str | None = typer.Option(None, "--study", help="Reuse this study's candidates "
                                     "(default: run a search on the first device first)."),
    storage: str = storage_option(),
    trials: int = typer.Option(50, "--trials", callback=at_least(1),
                               help="Trials when a search is run first."),
    space: str = typer.Option("default", "--space", help="Space when a search is run first."),
    input_size: int | None = typer.Option(None, "--input-size", callback=at_least(1),
                                          help="Input side when a search is run first."),
    profiles: list[Path] = profiles_option(),
    as_json: bool = json_option(),
    csv: Path | None = csv_option("the table"),
    plot: Path | None = plot_option("the devices' fronts"),
) -> None:
    """For each device: how many candidates fit, the best accuracy that fits (with its latency,
    size and trial) and the recommended member; lists of budgets make a grid."""
    from autosq._io import write_files
    from autosq.cli.render import print_compare
    from autosq.outputs.compare import parse_budgets, run_compare

    check_outputs(csv, plot)
    if study is not None:
        from autosq.cli._paths import refuse_inputs_as_outputs

        refuse_inputs_as_outputs({"--csv": csv, "--plot": plot}, {}, storage)
    names = device_names(devices, "--devices")
    result = run_compare(names, parse_budgets(max_mb, "--max-mb"),
                         parse_budgets(max_ms, "--max-ms"), study=study, storage=storage,
                         space=space, trials=trials, input_size=input_size, profiles=profiles)
    files: list[tuple[Path, bytes]] = []
    if csv is not None:
        files.append((csv, result.frame.to_csv(index=False).encode()))
    if plot is not None:
        from autosq.cli.plots import compare_plot, draw_compare

        files.append((plot, draw_compare(compare_plot(result))))
    write_files(files)  # both or neither
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        print_compare(result)
