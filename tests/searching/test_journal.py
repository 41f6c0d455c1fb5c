"""The journal file's appends: a SIGTERM that arrives while the lock is held waits for the
release, so the lock file is never left behind (a killed search's workers got one there)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from autosq.searching import journal


def test_a_sigterm_inside_an_append_lands_after_the_lock_is_released(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raising_sigterm: type[Exception]) -> None:
    path = tmp_path / "j.log"
    path.touch()
    backend = journal.JournalFile(str(path))
    real_fsync = os.fsync

    def fsync_then_sigterm(fd: int) -> None:
        real_fsync(fd)
        os.kill(os.getpid(), signal.SIGTERM)  # while the lock is held

    monkeypatch.setattr(journal.os, "fsync", fsync_then_sigterm)
    with pytest.raises(raising_sigterm):
        backend.append_logs([{"op_code": 0, "worker_id": "w"}])
    assert path.read_text() == '{"op_code":0,"worker_id":"w"}\n'  # written whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.log"]  # no lock file left
    monkeypatch.setattr(journal.os, "fsync", real_fsync)
    backend.append_logs([{"op_code": 0, "worker_id": "v"}])  # the lock is free
    assert path.read_text().count("\n") == 2
