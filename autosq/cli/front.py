"""``autosq front``: show the feasible Pareto front of a stored study; and how every command
that ends with a front (search, front, refine) shows it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from autosq.cli._options import (
    all_option,
    check_outputs,
    csv_option,
    json_option,
    plot_option,
    storage_option,
)
from autosq.searching.pareto import KNEE_RULE

if TYPE_CHECKING:
    from autosq.searching.result import SearchResult

KNEE_HELP = KNEE_RULE
HELP = f"Show the feasible Pareto front of a stored study. {KNEE_HELP}"


def emit(result: SearchResult, as_json: bool, csv: Path | None, plot: Path | None,
         show_all: bool = False) -> None:
    """Show a result the way the flags ask (shared by search, front and refine)."""
    from autosq._io import write_files
    from autosq.cli.render import print_front

    files: list[tuple[Path, bytes]] = []
    if csv is not None:
        files.append((csv, result.front.to_csv(index=False).encode()))
    if plot is not None:
        from autosq.cli.plots import draw_front, front_plot

        files.append((plot, draw_front(front_plot(result))))
    write_files(files)  # both or neither
    if as_json:
        typer.echo(json.dumps(result.to_json(everything=show_all), indent=2))
    else:
        print_front(result, show_all)
        for what, path in (("CSV", csv), ("plot", plot)):
            if path is not None:
                typer.echo(f"{what} written to {path}")


def front(
    study: str = typer.Option(..., "--study", help="Study name."),
    storage: str = storage_option(),
    as_json: bool = json_option("the front as JSON"),
    csv: Path | None = csv_option("the front"),
    plot: Path | None = plot_option("the front"),
    show_all: bool = all_option(),
) -> None:
    from autosq.cli._paths import refuse_inputs_as_outputs
    from autosq.searching.result import load_result

    check_outputs(csv, plot)
    refuse_inputs_as_outputs({"--csv": csv, "--plot": plot}, {}, storage)
    emit(load_result(study=study, storage=storage), as_json, csv, plot, show_all)
