"""``autosq proxy-check``: which accuracy estimator ranks architectures like training does."""

from __future__ import annotations

import json

import typer

from autosq.cli._options import (
    at_least,
    between,
    check_threads,
    check_train_device,
    json_option,
    pretrained_option,
    threads_option,
    train_device_option,
)

MAX_STEPS = 1_000_000  # training steps of one candidate: more is a typo (days of CPU)


def proxy_check(
    data: str = typer.Option("builtin:shapes", "--data", help="ImageFolder folder or "
                             "builtin:shapes."),
    space: str = typer.Option("tiny", "--space", help="Space to sample architectures from."),
    archs: int = typer.Option(40, "--archs", callback=between(3, 10_000),
                              help="How many architectures (>= 3; 40 or more for intervals "
                              "narrow enough to rank estimators)."),
    steps: int = typer.Option(1500, "--steps", callback=between(1, MAX_STEPS),
                              help="Optimizer steps of the reference (stand-alone) training."),
    budgets: str = typer.Option("100,500", "--budgets",
                                help="Short stand-alone training budgets to compare, in steps."),
    supernet: bool = typer.Option(True, "--supernet/--no-supernet",
                                  help="Include the one-shot supernet."),
    input_size: int = typer.Option(32, "--input-size", callback=at_least(8),
                                   help="Input side in pixels."),
    seed: int = typer.Option(0, "--seed", callback=between(0, 2**32 - 1),
                             help="Seed of the sample and the training."),
    threads: int | None = threads_option(),
    train_device: str = train_device_option(),
    pretrained: str | None = pretrained_option(),
    as_json: bool = json_option(),
) -> None:
    """Train a spread sample of architectures stand-alone, score them with every estimator,
    and print each estimator's Spearman and Kendall rank correlation (with bootstrap 95%
    intervals) and its cost per candidate."""
    from autosq.accuracy.datasets import load_dataset
    from autosq.accuracy.proxy_check import ArchRow, run_proxy_check
    from autosq.arch.space import load_space
    from autosq.cli.render import get_console, print_proxy_check
    from autosq.errors import UsageError

    try:
        short = tuple(int(b) for b in budgets.split(","))
    except ValueError:
        raise UsageError(f"--budgets must be comma-separated step counts; got {budgets!r}") \
            from None
    if not short or any(not 1 <= b <= MAX_STEPS for b in short):
        raise UsageError(f"--budgets must be step counts in 1..{MAX_STEPS:,}; got {budgets!r}")
    check_threads(threads)
    check_train_device(train_device)
    sp = load_space(space)
    ds = load_dataset(data, input_size, seed=seed)
    console = get_console(stderr=True)

    from autosq.cli.progress import training_progress

    with training_progress(f"proxy-check: architecture 1/{archs}") as on_step:
        def on_arch(i: int, n: int, row: ArchRow) -> None:
            on_step.label = f"proxy-check: architecture {min(i + 1, n)}/{n}"
            if not as_json:
                console.print(f"[{i}/{n}] {row.arch_id} ({row.params:,} params): reference "
                              f"val_top1 {row.reference_top1:.3f}")

        check = run_proxy_check(ds, sp, archs, seed=seed, reference_steps=steps,
                                short_budgets=short, supernet=supernet, on_arch=on_arch,
                                threads=threads, pretrained=pretrained,
                                train_device=train_device, on_step=on_step)
    if as_json:
        typer.echo(json.dumps(check.to_dict(), indent=2))
    else:
        print_proxy_check(check)
