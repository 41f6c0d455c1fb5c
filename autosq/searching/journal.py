"""Journal files (``journal:///PATH.log``): checked before use, repaired on request, and
appended to so that a failed write (a full disk) never leaves a cut record behind.

A journal is Optuna's log of operations, one JSON record a line. A record cut short makes the
whole study unreadable from then on, so :func:`check_journal` refuses such a file before
anything is appended, :func:`repair_journal` keeps the records before the damage, and
:class:`JournalFile` takes back a write that did not complete.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from optuna.storages.journal import JournalFileBackend

from autosq._io import not_a_file, write_file
from autosq._signals import signals_held
from autosq.errors import StorageError, UsageError


class JournalFile(JournalFileBackend):
    """Optuna's journal file backend, whose appends are all or nothing: a write that fails
    part way (no space left on the device) is cut back to the journal's last whole record,
    under the same lock, and the error raised.

    Ctrl-C and SIGTERM wait from taking the lock to releasing it: a search stopped by SIGTERM
    (its workers, when the search that started them is killed) raises from its handler, and
    raised inside Optuna's lock release it left the lock file behind, blocking every other
    process for the lock's 30 s grace period, and surfaced as a FileNotFoundError blamed on the
    candidate being evaluated."""

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        import json

        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        with signals_held():
            self._lock.acquire()
            try:
                size = os.path.getsize(self._file_path)
                try:
                    with open(self._file_path, "ab") as f:
                        f.write(text.encode("utf-8"))
                        f.flush()
                        os.fsync(f.fileno())
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.truncate(self._file_path, size)
                    raise
            finally:
                self._lock.release()


def _scan_journal(data: bytes) -> tuple[int, int]:
    """(bytes, records) of the leading whole, readable records of a journal: lines ending in a
    newline that hold a JSON object with Optuna's ``op_code``."""
    import json

    good = kept = 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError:
                break
            if not isinstance(record, dict) or "op_code" not in record:
                break
        good += len(line)
        kept += 1
    return good, kept


# A record another process is writing at this moment lacks its end for a few milliseconds; a
# journal that still ends mid-record after this long was cut short.
JOURNAL_SETTLE_SECONDS = 2.0


def check_journal(path: Path) -> None:
    """Refuse a journal whose records do not all parse (a write cut short, a damaged file):
    Optuna would append behind the damage, and from then on nothing could read the study. A
    last record still being written by another worker is waited for, not refused."""
    if not path.is_file():
        return
    deadline = time.monotonic() + JOURNAL_SETTLE_SECONDS
    while True:
        data = path.read_bytes()
        good, kept = _scan_journal(data)
        if good == len(data):
            return
        rest = data[good:]
        if b"\n" in rest or time.monotonic() > deadline:  # damage before the end, or no writer
            raise StorageError(
                f"journal {path} is damaged at record {kept + 1} (byte {good}); nothing was "
                f"written to it. `autosq repair --storage journal://{path}` keeps the records "
                "before the damage and moves the rest to a backup file")
        time.sleep(0.02)


def repair_journal(path: Path) -> tuple[int, Path | None]:
    """Keep a damaged journal's records before the first damaged one; the rest go to
    ``PATH.damaged-N``. Returns (records kept, backup file or None when nothing was wrong)."""
    import stat

    if (problem := not_a_file(path)) is not None:
        raise UsageError(f"journal {path} {problem}; expected an Optuna journal file")
    data = path.read_bytes()
    good, kept = _scan_journal(data)
    if good == len(data):
        return kept, None
    if kept == 0:  # not a damaged journal: something else, which repair must not touch
        raise UsageError(f"{path} is not an Optuna journal (its first record is not one); "
                         "nothing was changed")
    n = 1
    while (backup := path.with_name(f"{path.name}.damaged-{n}")).exists():
        n += 1
    backup.write_bytes(data[good:])
    write_file(path, data[:good], mode=stat.S_IMODE(path.stat().st_mode))
    return kept, backup


__all__ = ["JOURNAL_SETTLE_SECONDS", "JournalFile", "check_journal", "repair_journal"]
