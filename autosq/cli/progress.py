"""The live display of a running search: trials done, feasible so far, the best candidate so
far, the candidate being trained, and the phase (confirming the front). On a terminal, a rich
progress bar; on a file or a pipe, plain lines at a steady interval (:class:`PlainProgress`),
so a log shows progress while the search runs. It owns nothing else."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple, TextIO

if TYPE_CHECKING:
    import optuna

    from autosq.accuracy.train import OnStep
    from autosq.searching.run import OnProgress, OnStart
    from autosq.searching.run import Progress as SearchProgress

INTERVAL_ENV = "AUTOSQ_PROGRESS_SECONDS"
PLAIN_INTERVAL_S = 15.0  # a line this often on a file or a pipe (AUTOSQ_PROGRESS_SECONDS)


class Callbacks(NamedTuple):
    """What a command hands to the search: start, each trial, each training step, a phase."""

    on_start: OnStart
    on_progress: OnProgress
    on_train: OnStep
    on_phase: Callable[[str], None]


def _status(p: SearchProgress) -> str:
    best = ""
    b = p.best
    if b is not None and b.latency is not None and b.accuracy is not None:
        best = (f" | best {b.accuracy:.3g} {b.accuracy_kind}, "
                f"{b.latency.latency_ms:.1f} ms, {b.size_mb:.2f} MiB")
    return f"feasible {p.feasible}, skipped {p.skipped}, failed {p.failed}{best}"


class TrainClock:
    """The time left of a training, from the pace of its steps so far (a new training, seen as
    a step count going back, restarts the clock)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.t0: float | None = None
        self.first = self.last = 0

    def eta(self, step: int, steps: int) -> float | None:
        """Seconds left, or None before the pace is known."""
        now = self.clock()
        if self.t0 is None or step < self.last:
            self.t0, self.first = now, step
        self.last = step
        done = step - self.first
        return None if done <= 0 else (now - self.t0) / done * max(0, steps - step)


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def _train_status(loss: float, images_per_s: float, eta: float | None = None) -> str:
    left = "" if eta is None else f", {_duration(eta)} left"
    return f"loss {loss:.3f}, {images_per_s:,.0f} images/s{left}"


class PlainProgress:
    """Progress as plain lines (no colours, no cursor moves) on ``stream``: one when the search
    starts, one per phase, and one every ``interval`` seconds with the latest status (a
    background thread calls :meth:`tick`)."""

    def __init__(self, stream: TextIO, interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self.label = ""
        self.done = 0
        self.total: int | None = 0  # None: as many trials as the time allows
        self.status = ""
        self.training = ""
        self.phase = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def line(self, text: str) -> None:
        """Write one line, stamped with the time since the start."""
        m, s = divmod(int(self.clock() - self.started), 60)
        self.stream.write(f"autosq: [{m:02d}:{s:02d}] {text}\n")
        self.stream.flush()

    def summary(self) -> str:
        """The latest status in one line."""
        if self.total == 0:  # a training alone (export, proxy-check)
            return f"{self.label}: {self.training or 'starting'}"
        text = f"{self.label}: {self._count()} trials"
        if self.status:
            text += f", {self.status}"
        if self.phase:
            text += f"; {self.phase}"
        elif self.training:
            text += f"; training a candidate: {self.training}"
        return text

    def tick(self) -> None:
        """One status line (the background thread's, every ``interval`` seconds)."""
        self.line(self.summary())

    def start(self, label: str, total: int | None) -> None:
        """The search began (``total`` trials to run; None: as many as the time allows): say
        so, and start the steady lines."""
        self.label, self.total = label, total
        to_run = "as many trials as the time allows" if total is None else f"{total} trials to run"
        self.line(f"{label}: {to_run}; a status line every {self.interval:g} s")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def set_phase(self, text: str) -> None:
        """A new phase (e.g. confirming the front): one line now."""
        self.phase = text
        status = f", {self.status}" if self.status else ""
        self.line(f"{self.label}: {self._count()} trials{status}; {text}")

    def _count(self) -> str:
        return str(self.done) if self.total is None else f"{self.done}/{self.total}"

    def stop(self) -> None:
        """Stop the steady lines."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)


def plain_interval() -> float:
    """Seconds between plain progress lines (``AUTOSQ_PROGRESS_SECONDS``, default 15)."""
    text = os.environ.get(INTERVAL_ENV, "")
    try:
        value = float(text)
    except ValueError:
        return PLAIN_INTERVAL_S
    return value if 0 < value < 1e6 else PLAIN_INTERVAL_S


@contextlib.contextmanager
def _plain(stream: TextIO) -> Iterator[Callbacks]:
    plain = PlainProgress(stream, plain_interval())

    def on_start(study: optuna.Study, missing: int | None) -> None:
        done = len(study.trials)
        label = study.study_name + (f" (resuming after {done})" if done else "")
        if missing == 0:
            plain.line("the study already has the trials asked for: nothing to run")
            return
        plain.start(label, missing)

    def on_progress(p: SearchProgress) -> None:
        plain.done, plain.status, plain.training = p.done, _status(p), ""

    clock = TrainClock()

    def on_train(step: int, steps: int, loss: float, images_per_s: float) -> None:
        eta = clock.eta(step, steps)
        plain.training = f"step {step}/{steps}, {_train_status(loss, images_per_s, eta)}"

    try:
        yield Callbacks(on_start, on_progress, on_train, plain.set_phase)
    finally:
        plain.stop()


@contextlib.contextmanager
def search_progress(enabled: bool = True) -> Iterator[Callbacks]:
    """The callbacks that show a search's progress on stderr: a progress bar on a terminal,
    plain lines at a steady interval otherwise; nothing when not ``enabled``."""
    if not enabled:
        yield Callbacks(lambda study, n: None, lambda p: None, lambda *a: None,
                        lambda text: None)
        return
    from autosq.cli.render import get_console

    console = get_console(stderr=True)
    if not console.is_terminal:
        with _plain(sys.stderr) as callbacks:
            yield callbacks
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=False,
    )
    task = None
    train_task = None

    def on_start(study: optuna.Study, missing: int | None) -> None:
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
        if task is not None:
            bar.update(task, completed=p.done, status=_status(p))

    clock = TrainClock()

    def on_train(step: int, steps: int, loss: float, images_per_s: float) -> None:
        nonlocal train_task
        status = _train_status(loss, images_per_s, clock.eta(step, steps))
        if train_task is None:
            train_task = bar.add_task("  training candidate", total=steps, status=status)
        bar.update(train_task, completed=step, total=steps, status=status)

    def on_phase(text: str) -> None:
        if task is not None:
            bar.console.print(f"autosq: {text}")

    try:
        yield Callbacks(on_start, on_progress, on_train, on_phase)
    finally:
        if task is not None:
            bar.stop()


@contextlib.contextmanager
def training_progress(label: str, enabled: bool = True) -> Iterator[_Steps]:
    """An ``on_step(step, steps, loss, images_per_s)`` that shows one training (export,
    proxy-check) on stderr: a bar with images/s and the time left on a terminal, plain lines at
    a steady interval otherwise. ``label`` may be changed while it runs through the yielded
    callable's ``label`` attribute (proxy-check names the architecture being trained)."""
    if not enabled:
        yield _Steps(lambda *a: None)
        return
    from autosq.cli.render import get_console

    console = get_console(stderr=True)
    clock = TrainClock()
    if not console.is_terminal:
        plain = PlainProgress(sys.stderr, plain_interval())
        plain.label = label

        def line(step: int, steps: int, loss: float, images_per_s: float) -> None:
            plain.label = steps_cb.label
            eta = clock.eta(step, steps)
            plain.training = f"step {step}/{steps}, {_train_status(loss, images_per_s, eta)}"
            if plain._thread is None:  # the first step: say so at once, then steadily
                plain.line(f"{plain.label}: {plain.training}; a status line every "
                           f"{plain.interval:g} s")
                plain._thread = threading.Thread(target=plain._run, daemon=True)
                plain._thread.start()

        steps_cb = _Steps(line, label)
        try:
            yield steps_cb
        finally:
            plain.stop()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[status]}"), console=console, transient=True)
    task = None

    def update(step: int, steps: int, loss: float, images_per_s: float) -> None:
        nonlocal task
        status = _train_status(loss, images_per_s, clock.eta(step, steps))
        if task is None:
            bar.start()
            task = bar.add_task(steps_cb.label, total=steps, status=status)
        bar.update(task, description=steps_cb.label, completed=step, total=steps,
                   status=status)

    steps_cb = _Steps(update, label)
    try:
        yield steps_cb
    finally:
        if task is not None:
            bar.stop()


class _Steps:
    """A training-step callback with a label the caller may change."""

    def __init__(self, fn: Callable[[int, int, float, float], None], label: str = "") -> None:
        self.fn = fn
        self.label = label

    def __call__(self, step: int, steps: int, loss: float, images_per_s: float) -> None:
        self.fn(step, steps, loss, images_per_s)
