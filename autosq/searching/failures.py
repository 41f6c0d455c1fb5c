"""A storage that fails under a running search (a database server that went away, a disk that
filled up): found among an error's causes, and said in one line naming the storage (password
masked) and what was kept."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from autosq.errors import AutosqError, StorageError
from autosq.searching.storage import first_line, redact, storage_file

_FULL = ("no space left", "disk is full", "disk full", "quota exceeded")


def storage_failure(exc: BaseException) -> BaseException | None:
    """The storage's own error behind ``exc``, or None: a database driver's (SQLAlchemy,
    psycopg, sqlite3) or the file system's, found among the causes (Optuna, failing to store a
    trial, may raise an error of its own while handling the storage's)."""
    import errno

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__module__.split(".")[0] in ("sqlalchemy", "psycopg", "sqlite3"):
            return current
        if isinstance(current, OSError) and current.errno in (
                errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS):
            return current
        current = current.__cause__ or current.__context__
    return None


@contextlib.contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """Around work on a study: a storage that fails (a server that went away, a disk that
    filled up) is one line naming it, password masked, and saying what was kept."""
    try:
        yield
    except AutosqError:
        raise
    except Exception as exc:
        cause = storage_failure(exc)
        if cause is None:
            raise
        text = first_line(cause) if cause is not exc else first_line(exc)
        path = storage_file(url)
        if any(word in text.lower() for word in _FULL):
            filename = getattr(cause, "filename", None)
            held = filename or path
            where = f"the device holding {held}" if held else "the database server"
            raise StorageError(
                f"no space left on {where} (storage {redact(url)}): the study keeps every "
                "finished trial and can be read; free some space and run the same command "
                "again to continue") from None
        raise StorageError(
            f"the study storage {redact(url)} failed: {text}; the study keeps every finished "
            "trial (the running one is marked when a search resumes); run the same command "
            "again once the storage is back") from None


__all__ = ["storage_errors", "storage_failure"]
