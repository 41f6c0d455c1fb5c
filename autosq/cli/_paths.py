"""A command's outputs against its inputs: an output path that is one of the files the command
reads (the study's SQLite or journal file, the model being compressed, the container being
decoded, the data) is refused before anything is written, so that no command, and above all
no command that only reads, destroys what it was given (``autosq front --csv study.db``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from autosq.errors import UsageError


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (through links, relative folders, hard links)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # a link loop
        return os.path.abspath(a) == os.path.abspath(b)


def _inside(path: Path, folder: Path) -> bool:
    try:
        return folder.is_dir() and path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        return False


def refuse_inputs_as_outputs(outputs: Mapping[str, Path | None],
                             inputs: Mapping[str, Path | str | None],
                             storage: str | None = None) -> None:
    """Raise :class:`UsageError` when an output (flag -> path) is one of the ``inputs`` (what
    -> path), or the file of the ``storage`` URL, or lies inside an input folder (a data set:
    a file written there would join it)."""
    from autosq._io import shown_path

    named: dict[str, Path] = {}
    for what, value in inputs.items():
        if value is not None and not str(value).startswith("builtin:"):
            named[what] = Path(value).expanduser()
    if storage is not None:
        from autosq.searching.storage import redact, storage_file

        path = storage_file(storage)
        if path is not None:
            named[f"the study's storage file (from --storage {redact(storage)})"] = path
    for flag, out in outputs.items():
        if out is None:
            continue
        out = Path(out).expanduser()
        for what, path in named.items():
            if _same(out, path):
                raise UsageError(f"{flag} {shown_path(out)} is {what}: writing it would "
                                 "destroy what the command reads; choose another file name")
            if _inside(out, path):
                raise UsageError(f"{flag} {shown_path(out)} lies inside {what} "
                                 f"{shown_path(path)}: a file written there would change it; "
                                 "choose another folder")




def guard_home() -> None:
    """When the home folder is unusable (missing, or a file) and nothing else says where
    caches go, point ``XDG_CACHE_HOME`` at a private temporary folder, before any library is
    imported: ONNX Runtime would otherwise create ``$HOME/.cache`` (a folder at the file
    system's root for ``HOME=/nonexistent``) or print a raw log line. autosq's own cache then
    refuses with one line (:func:`autosq._io.cache_dir`)."""
    import atexit
    import shutil
    import tempfile

    home = os.path.expanduser("~")
    if os.path.isdir(home) or os.environ.get("XDG_CACHE_HOME"):
        return
    folder = tempfile.mkdtemp(prefix="autosq-xdg-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["XDG_CACHE_HOME"] = folder
__all__ = ["guard_home", "refuse_inputs_as_outputs"]
