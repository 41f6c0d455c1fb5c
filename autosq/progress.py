"""The live display of a running search: a rich progress bar with trials done, feasible so
far and the best candidate so far. It owns nothing else."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

    from autosq.study import Progress as SearchProgress

OnStart = Callable[["optuna.Study", int], None]
OnProgress = Callable[["SearchProgress"], None]


@contextlib.contextmanager
def search_progress(enabled: bool = True) -> Iterator[tuple[OnStart, OnProgress]]:
    """(on_start, on_progress) callbacks that drive a progress bar on stderr."""
    if not enabled:
        yield (lambda study, n: None), (lambda p: None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from autosq.report import get_console

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

    def on_start(study: optuna.Study, missing: int) -> None:
        nonlocal task
        done = len(study.trials)
        label = f"{study.study_name}" + (f" (resuming after {done})" if done else "")
        task = bar.add_task(label, total=missing, status="")
        if missing == 0:
            bar.console.print("the study already has the trials asked for: nothing to run")

    def on_progress(p: SearchProgress) -> None:
        if task is None:
            return
        best = ""
        if p.best is not None and p.best.latency is not None:
            best = (
                f" | best {p.best.accuracy:.3g} {p.best.accuracy_kind}, "
                f"{p.best.latency.latency_ms:.1f} ms, {p.best.size_mb:.2f} MiB"
            )
        status = f"feasible {p.feasible}, skipped {p.skipped}, failed {p.failed}{best}"
        bar.update(task, completed=p.done, status=status)

    with bar:
        yield on_start, on_progress
