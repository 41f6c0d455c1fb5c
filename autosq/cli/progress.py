"""The live display of a running search: a rich progress bar with trials done, feasible so
far and the best candidate so far. It owns nothing else."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

    from autosq.accuracy.train import OnStep
    from autosq.searching.run import OnProgress, OnStart
    from autosq.searching.run import Progress as SearchProgress


@contextlib.contextmanager
def search_progress(enabled: bool = True) -> Iterator[tuple[OnStart, OnProgress, OnStep]]:
    """(on_start, on_progress, on_train) callbacks that drive a progress bar on stderr; the
    training line shows the candidate's step, loss and images per second."""
    if not enabled:
        yield (lambda study, n: None), (lambda p: None), (lambda *a: None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from autosq.cli.render import get_console

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=get_console(stderr=True),
        transient=False,
    )
    task = None
    train_task = None

    def on_start(study: optuna.Study, missing: int) -> None:
        nonlocal task
        done = len(study.trials)
        label = f"{study.study_name}" + (f" (resuming after {done})" if done else "")
        if missing == 0:
            bar.console.print("autosq: the study already has the trials asked for: nothing "
                              "to run")
            return
        bar.start()  # only now: an error before the study opens is then one line alone
        task = bar.add_task(label, total=missing, status="")

    def on_progress(p: SearchProgress) -> None:
        if task is None:
            return
        best = ""
        b = p.best
        if b is not None and b.latency is not None and b.accuracy is not None:
            best = (f" | best {b.accuracy:.3g} {b.accuracy_kind}, "
                    f"{b.latency.latency_ms:.1f} ms, {b.size_mb:.2f} MiB")
        status = f"feasible {p.feasible}, skipped {p.skipped}, failed {p.failed}{best}"
        bar.update(task, completed=p.done, status=status)

    def on_train(step: int, steps: int, loss: float, images_per_s: float) -> None:
        nonlocal train_task
        status = f"loss {loss:.3f}, {images_per_s:,.0f} images/s"
        if train_task is None:
            train_task = bar.add_task("  training candidate", total=steps, status=status)
        bar.update(train_task, completed=step, total=steps, status=status)

    try:
        yield on_start, on_progress, on_train
    finally:
        if task is not None:
            bar.stop()
