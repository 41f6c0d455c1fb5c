"""``autosq compare``: what the same budget buys on different devices."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from autosq.cli import app
from autosq.cli.devices import PROFILES_HELP


@app.command()
def compare(
    devices: str = typer.Option(..., "--devices", help="Comma-separated device profiles, e.g. "
                                "rpi3b,rpi4,rpi5,jetson-nano."),
    max_mb: str | None = typer.Option(None, "--max-mb", help="Size budget(s) in MiB, e.g. 5 "
                                      "or 1,2,5,10 (default: the study's)."),
    max_ms: str | None = typer.Option(None, "--max-ms", help="Latency budget(s) in ms, e.g. "
                                      "40 or 20,50,100 (default: none)."),
    study: str | None = typer.Option(None, "--study", help="Reuse this study's candidates "
                                     "(default: run a search on the first device first)."),
    storage: str = typer.Option("sqlite:///autosq.db", "--storage", help="Optuna storage URL."),
    trials: int = typer.Option(50, "--trials", help="Trials when a search is run first."),
    space: str = typer.Option("default", "--space", help="Space when a search is run first."),
    input_size: int | None = typer.Option(None, "--input-size", help="Input side when a "
                                          "search is run first."),
    profiles: list[Path] = typer.Option([], "--profiles", help=PROFILES_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    csv: Path | None = typer.Option(None, "--csv", help="Write the table to this CSV file."),
    plot: Path | None = typer.Option(None, "--plot", help="Overlay the devices' fronts (PNG)."),
) -> None:
    """For each device: how many candidates fit, the best accuracy that fits (with its latency,
    size and trial) and the recommended member; lists of budgets make a grid."""
    from autosq.comparison import parse_budgets, run_compare
    from autosq.report import check_outputs, plot_compare, print_compare, write_rows_csv

    check_outputs(csv, plot)
    names = [d.strip() for d in devices.split(",") if d.strip()]
    result = run_compare(names, parse_budgets(max_mb, "--max-mb"),
                         parse_budgets(max_ms, "--max-ms"), study=study, storage=storage,
                         space=space, trials=trials, input_size=input_size, profiles=profiles)
    if csv is not None:
        write_rows_csv(result.rows, csv)
    if plot is not None:
        plot_compare(result, plot)
    if as_json:
        typer.echo(json.dumps(result.rows, indent=2))
    else:
        print_compare(result)
