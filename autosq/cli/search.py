"""``autosq search``: the main job. Sample SqueezeNets for a device, measure them, show the
feasible Pareto front with a recommended member."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from autosq.cli import app
from autosq.cli.devices import PROFILES_HELP

if TYPE_CHECKING:
    from autosq.result import SearchResult

KNEE_HELP = (
    "The recommended member is the front's knee: the member closest to the ideal corner once "
    "accuracy, latency and size are each rescaled from best (0) to worst (1) over the front."
)


def emit(result: SearchResult, as_json: bool, csv: Path | None, plot: Path | None) -> None:
    """Show a result the way the flags ask (shared by search and front)."""
    from autosq.report import plot_front, print_front, write_csv

    if csv is not None:
        write_csv(result, csv)
    if plot is not None:
        plot_front(result, plot)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        print_front(result)
        for what, path in (("CSV", csv), ("plot", plot)):
            if path is not None:
                typer.echo(f"{what} written to {path}")


@app.command(
    help=f"Search SqueezeNets that fit a device; print the feasible Pareto front. {KNEE_HELP}"
)
def search(
    device: str = typer.Option("host", "--device", "-d", help="Device profile name or .toml."),
    max_mb: float | None = typer.Option(
        None, "--max-mb", help="Size budget in MiB (default: the profile's)."
    ),
    max_ms: float | None = typer.Option(
        None, "--max-ms", help="Latency budget in ms (default: the profile's; 0 for none)."
    ),
    max_ram_mb: float | None = typer.Option(
        None, "--max-ram-mb", help="Peak activation memory budget in MiB (default: the profile's)."
    ),
    space: str = typer.Option("default", "--space", help="Search space name or .toml file."),
    trials: int = typer.Option(50, "--trials", "-n", help="Trials the study should reach."),
    timeout: float | None = typer.Option(None, "--timeout", help="Stop after this many s."),
    seed: int = typer.Option(0, "--seed", help="Sampler seed."),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe, nsga2 or random."),
    storage: str = typer.Option(
        "sqlite:///autosq.db",
        "--storage",
        help="Optuna storage URL (journal:///file.log also works).",
    ),
    study: str | None = typer.Option(
        None, "--study", help="Study name (default: from device, budget, space and input size)."
    ),
    input_size: int | None = typer.Option(
        None, "--input-size", help="Input side in pixels (default: the profile's)."
    ),
    num_classes: int | None = typer.Option(None, "--num-classes", help="Output classes "
                                           "(default: the data's, or 1000)."),
    proxy: str = typer.Option("synflow", "--proxy", help="Zero-cost accuracy proxy, used "
                              "without --data: synflow, naswot, params, macs."),
    data: str | None = typer.Option(None, "--data", help="Train candidates on this data: an "
                                    "ImageFolder folder or builtin:shapes. Use a small "
                                    "--input-size (e.g. 64): training is on the CPU."),
    epochs: float = typer.Option(2.0, "--epochs", help="Training epochs per candidate."),
    batch_size: int = typer.Option(64, "--batch-size", help="Training batch size."),
    refine: int = typer.Option(0, "--refine", help="Then train the K front members nearest "
                               "the knee longer and recompute the front."),
    refine_epochs: float | None = typer.Option(None, "--refine-epochs", help="Epochs for "
                                               "--refine (default: 4 x --epochs)."),
    profiles: list[Path] = typer.Option([], "--profiles", help=PROFILES_HELP),
    no_retime: bool = typer.Option(False, "--no-retime", help="Do not re-time the front."),
    as_json: bool = typer.Option(False, "--json", help="Print the front as JSON."),
    csv: Path | None = typer.Option(None, "--csv", help="Write the front to this CSV file."),
    plot: Path | None = typer.Option(None, "--plot", help="Draw the front to this PNG file."),
) -> None:
    from autosq.progress import search_progress
    from autosq.report import check_outputs
    from autosq.study import run_search

    check_outputs(csv, plot)

    with search_progress(enabled=not as_json) as (on_start, on_progress, on_train):
        result = run_search(
            device=device, max_mb=max_mb, max_ms=max_ms, max_ram_mb=max_ram_mb, space=space,
            trials=trials, timeout=timeout, seed=seed, sampler=sampler, storage=storage,
            study=study, input_size=input_size, num_classes=num_classes, proxy=proxy,
            data=data, epochs=epochs, batch_size=batch_size, refine=refine,
            refine_epochs=refine_epochs, profiles=profiles, retime=not no_retime,
            on_start=on_start, on_progress=on_progress, on_train=on_train,
        )
    emit(result, as_json, csv, plot)


@app.command(help=f"Show the feasible Pareto front of a stored study. {KNEE_HELP}")
def front(
    study: str = typer.Option(..., "--study", help="Study name."),
    storage: str = typer.Option("sqlite:///autosq.db", "--storage", help="Optuna storage URL."),
    as_json: bool = typer.Option(False, "--json", help="Print the front as JSON."),
    csv: Path | None = typer.Option(None, "--csv", help="Write the front to this CSV file."),
    plot: Path | None = typer.Option(None, "--plot", help="Draw the front to this PNG file."),
) -> None:
    from autosq.report import check_outputs
    from autosq.study import load_result

    check_outputs(csv, plot)
    emit(load_result(study, storage), as_json, csv, plot)


@app.command()
def refine(
    study: str = typer.Option(..., "--study", help="Study name (searched with --data)."),
    top: int = typer.Option(3, "--top", help="How many front members to train longer."),
    epochs: float = typer.Option(8.0, "--epochs", help="Epochs for each."),
    storage: str = typer.Option("sqlite:///autosq.db", "--storage", help="Optuna storage URL."),
    as_json: bool = typer.Option(False, "--json", help="Print the new front as JSON."),
) -> None:
    """Train the front members nearest the knee longer; update their accuracy and the front."""
    from autosq.errors import UsageError
    from autosq.progress import search_progress
    from autosq.refine import refine_front
    from autosq.study import load_result, open_study

    if top < 1:
        raise UsageError(f"--top must be >= 1; got {top}")
    st = open_study(storage, study, None)
    with search_progress(enabled=not as_json) as (_, _p, on_train):
        changes = refine_front(st, storage, top, epochs, on_train=on_train)
    if not as_json:
        for c in changes:
            typer.echo(f"trial {c['trial']}: val_top1 {c['before']:.4f} -> {c['after']:.4f} "
                       f"({c['epochs']:g} epochs)")
    emit(load_result(study, storage), as_json, None, None)


@app.command()
def spaces(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the shipped search spaces (use your own with --space FILE.toml)."""
    from autosq.report import print_spaces
    from autosq.space import list_spaces, load_space

    found = [load_space(n) for n in list_spaces()]
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in found], indent=2))
    else:
        print_spaces(found)
