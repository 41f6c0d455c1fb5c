"""``autosq refine``: train the front members nearest the knee longer; update the front."""

from __future__ import annotations

import typer

from autosq.cli._options import (
    at_least,
    check_threads,
    check_train_device,
    json_option,
    positive,
    pretrained_option,
    storage_option,
    threads_option,
    train_device_option,
)
from autosq.cli.front import emit


def refine(
    study: str = typer.Option(..., "--study", help="Study name (searched with --data)."),
    top: int = typer.Option(3, "--top", callback=at_least(1),
                            help="How many front members to train longer."),
    epochs: float | None = typer.Option(None, "--epochs", callback=positive(),
                                        help="Epochs for each (default: 4 times the search's "
                                        "training budget)."),
    storage: str = storage_option(),
    threads: int | None = threads_option(),
    train_device: str = train_device_option(),
    pretrained: str | None = pretrained_option(),
    as_json: bool = json_option("the new front as JSON"),
) -> None:
    """Train the front members nearest the knee longer; update their accuracy and the front."""
    from autosq.cli.progress import search_progress
    from autosq.searching.refine import refine_front
    from autosq.searching.result import build_result
    from autosq.searching.storage import load_study

    check_threads(threads)
    check_train_device(train_device)
    st = load_study(storage, study)
    with search_progress(enabled=not as_json) as shown:
        changes = refine_front(st, storage, top, epochs, on_train=shown.on_train,
                               threads=threads, train_device=train_device,
                               pretrained=pretrained)
    if not as_json:
        for c in changes:
            typer.echo(f"trial {c.trial}: {c.before:.4f} {c.before_kind} -> {c.after:.4f} "
                       f"val_top1 ({c.epochs:.3g} epochs)")
    emit(build_result(st, storage), as_json, None, None)
