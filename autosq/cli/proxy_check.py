"""``autosq proxy-check``: which zero-cost proxy ranks architectures like training does."""

from __future__ import annotations

import json

import typer

from autosq.cli._options import at_least, between, json_option, positive


def proxy_check(
    data: str = typer.Option("builtin:shapes", "--data", help="ImageFolder folder or "
                             "builtin:shapes."),
    space: str = typer.Option("tiny", "--space", help="Space to sample architectures from."),
    archs: int = typer.Option(16, "--archs", callback=at_least(3),
                              help="How many architectures to train (>= 3)."),
    epochs: float = typer.Option(2.0, "--epochs", callback=positive(),
                                 help="Training epochs per architecture."),
    input_size: int = typer.Option(32, "--input-size", callback=at_least(8),
                                   help="Input side in pixels."),
    seed: int = typer.Option(0, "--seed", callback=between(0, 2**32 - 1),
                             help="Seed of the sample and the training."),
    as_json: bool = json_option(),
) -> None:
    """Train a sample of architectures and print each proxy's Spearman and Kendall rank
    correlation with their validation top-1."""
    from autosq.accuracy.datasets import load_dataset
    from autosq.accuracy.proxy_check import run_proxy_check
    from autosq.accuracy.train import Recipe
    from autosq.arch.space import load_space
    from autosq.cli.render import get_console, print_proxy_check

    sp = load_space(space)
    ds = load_dataset(data, input_size, seed=seed)
    console = get_console(stderr=True)

    def on_arch(i: int, n: int, row: dict[str, object]) -> None:
        if not as_json:
            console.print(f"[{i}/{n}] {row['arch_id']}: val_top1 {row['val_top1']:.3f} "
                          f"({row['images_per_s']:,.0f} images/s)")

    check = run_proxy_check(ds, sp, archs, Recipe(epochs=epochs), seed=seed, on_arch=on_arch)
    if as_json:
        typer.echo(json.dumps(check.to_dict(), indent=2))
    else:
        print_proxy_check(check)
