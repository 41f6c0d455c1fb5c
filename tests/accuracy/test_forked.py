"""Processes forked to prepare images die on SIGTERM and leave Ctrl-C to the parent, whatever
handler the parent had installed (the search's SIGTERM handler raises: inherited by a pool
worker, it once hung a search after decoding), and the decoding pool ends without killing."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import autosq.accuracy.datasets as data
from autosq.accuracy import threads
from autosq.accuracy.datasets import load_dataset
from autosq.accuracy.datasets.folder import FolderRows
from autosq.accuracy.datasets.sources import decode_image
from autosq.accuracy.datasets.stream import train_batches

pytestmark = [pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                 reason="reads signal dispositions from Linux's /proc"),
              pytest.mark.usefixtures("raising_sigterm")]  # as the search's handler does


def _disposition(pid: int) -> tuple[bool, bool]:
    """(SIGTERM caught by a handler, SIGINT ignored) for process ``pid``."""
    fields = dict(line.split(":\t", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)
    caught, ignored = int(fields["SigCgt"], 16), int(fields["SigIgn"], 16)
    return bool(caught >> (signal.SIGTERM - 1) & 1), bool(ignored >> (signal.SIGINT - 1) & 1)


def _children_once_started() -> list[tuple[bool, bool]]:
    """The children's dispositions once each has run its start-up (a fork copies the parent's
    handlers until then); waits for start-up, not for any work to finish."""
    deadline = time.monotonic() + 120
    while True:
        seen = [_disposition(p.pid) for p in multiprocessing.active_children() if p.pid]
        if (seen and all(s == (False, True) for s in seen)) or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


def _rows(root: Path, n: int) -> FolderRows:
    root.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = root / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return FolderRows(root, ["a"], paths, [0] * n, ["all"] * n, frozenset())


def test_the_decoding_pool_resets_signals_and_closes(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    rows = _rows(tmp_path / "imgs", 300)
    decoded = data._parallel(rows, 8)
    first = next(decoded)
    assert _children_once_started() == [(False, True), (False, True)]
    rest = list(decoded)
    assert multiprocessing.active_children() == []
    assert len(rest) == 299
    for i in (0, 150, 299):
        assert np.array_equal(([first, *rest])[i], decode_image(rows.paths[i], 8))


def test_a_decoding_pool_stopped_early_ends(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    decoded = data._parallel(_rows(tmp_path / "imgs", 300), 8)
    next(decoded)
    _children_once_started()
    decoded.close()  # terminates the workers: they must die, not raise the parent's exception
    assert multiprocessing.active_children() == []


def test_loader_workers_reset_signals() -> None:
    batches = train_batches(load_dataset("builtin:shapes:12", 32), 16, 30, seed=0, workers=2)
    next(batches)
    assert _children_once_started() == [(False, True), (False, True)]
    assert len(list(batches)) == 29


_SIGTERMS_AFTER_FORK: list[int] = []  # SIGTERMs to raise in the parent's at-fork hooks


def _sigterm_in_the_fork_hooks() -> None:
    if _SIGTERMS_AFTER_FORK:
        _SIGTERMS_AFTER_FORK.pop()
        signal.raise_signal(signal.SIGTERM)
        for _ in range(1000):  # the handler runs here, inside the hook, as in the CI failure
            pass


os.register_at_fork(after_in_parent=_sigterm_in_the_fork_hooks)


@pytest.fixture
def sigterm_while_forking() -> Iterator[None]:
    _SIGTERMS_AFTER_FORK[:] = [signal.SIGTERM]
    yield
    _SIGTERMS_AFTER_FORK.clear()


@pytest.mark.usefixtures("sigterm_while_forking")
def test_a_sigterm_while_the_decoding_pool_forks_is_not_lost(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        raising_sigterm: type[Exception]) -> None:
    # Raised inside an at-fork hook, the handler's exception was printed as "ignored" and the
    # search went on after SIGTERM (a clean-clone CI run).
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    decoded = data._parallel(_rows(tmp_path / "imgs", 300), 8)
    with pytest.raises(raising_sigterm):
        next(decoded)
    assert _SIGTERMS_AFTER_FORK == []  # it was sent, inside the fork
    assert multiprocessing.active_children() == []  # the pool is ended


@pytest.mark.usefixtures("sigterm_while_forking")
def test_a_sigterm_while_loader_workers_fork_is_not_lost(
        raising_sigterm: type[Exception]) -> None:
    batches = train_batches(load_dataset("builtin:shapes:12", 32), 16, 30, seed=0, workers=2)
    with pytest.raises(raising_sigterm):
        next(batches)
    assert _SIGTERMS_AFTER_FORK == []
