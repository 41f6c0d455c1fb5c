"""Files autosq reads and writes: the cache folder, atomic writes, JSON caches, TOML tables.

Everything that lands on disk goes through :func:`write_files` (one file, or several renamed
into place together): written to temporary siblings first, so a crash, a full disk or an error
in between never leaves half a file, and a reader never sees one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autosq.errors import UsageError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CACHE_ENV = "AUTOSQ_CACHE_DIR"


def cache_dir(*parts: str, create: bool = True) -> Path:
    """autosq's cache folder (``AUTOSQ_CACHE_DIR``, else ``~/.cache/autosq``), or a folder
    inside it, created. Raises :class:`UsageError` naming the variable when it is unusable.
    With ``create=False`` (readers), only the path: nothing is created or checked."""
    base = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "autosq")
    path = base.joinpath(*parts)
    if not create:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot use the cache folder {path} ({exc.strerror or exc}); set {CACHE_ENV} to a "
            "writable folder"
        ) from None
    if not os.access(path, os.W_OK):
        raise UsageError(
            f"cannot use the cache folder {path} (not writable); set {CACHE_ENV} to a writable "
            "folder"
        )
    return path


def write_files(files: Sequence[tuple[Path, bytes | Callable[[Path], None]]],
                mode: int | None = 0o666) -> None:
    """Write every file, all or nothing: each to a temporary sibling first, then renamed into
    place together.

    Each payload is the bytes to write, or a function that writes the temporary path it is
    given (for libraries that only write to a path: pandas, matplotlib, torch). ``mode`` is
    masked by the umask (``None`` keeps mkstemp's 0600, for private caches). A destination
    that is a folder is refused before anything is written. Existing destinations are moved
    aside before the renames and put back if any rename fails (an immutable file, a full
    disk), so on any error every destination is as it was and no temporary file is left.
    """
    for path, _ in files:
        if path.is_dir():
            raise UsageError(f"cannot write {path}: it is a folder")
    temps: list[tuple[str, Path]] = []
    umask = os.umask(0)
    os.umask(umask)
    try:
        for path, payload in files:
            try:
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                           suffix=".tmp")
                temps.append((tmp, path))
                if callable(payload):
                    os.close(fd)
                    payload(Path(tmp))
                else:
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(payload)
                if mode is not None:
                    os.chmod(tmp, mode & ~umask)
            except OSError as exc:  # name the file the user asked for, not the temporary one
                raise type(exc)(exc.errno, exc.strerror or str(exc), str(path)) from None
        if len(temps) == 1:  # one file: an atomic replace, never a moment without it
            os.replace(*temps[0])
        else:
            _swap_in(temps)
    except BaseException:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


def _swap_in(temps: list[tuple[str, Path]]) -> None:
    """Rename each temporary file onto its destination, all or none."""
    aside: list[tuple[Path, str]] = []  # (destination, where its old file was moved)
    placed: list[Path] = []
    try:
        for tmp, path in temps:
            if os.path.lexists(path):
                old = f"{tmp}.old"
                os.rename(path, old)
                aside.append((path, old))
        for tmp, path in temps:
            os.rename(tmp, path)
            placed.append(path)
    except BaseException:
        for path in placed:
            with contextlib.suppress(OSError):
                os.unlink(path)
        for path, old in aside:
            with contextlib.suppress(OSError):
                os.rename(old, path)
        raise
    for _, old in aside:
        with contextlib.suppress(OSError):
            os.unlink(old)


def write_file(path: Path, payload: bytes | Callable[[Path], None],
               mode: int | None = 0o666) -> None:
    """:func:`write_files` for one file."""
    write_files([(Path(path), payload)], mode)


def read_json_cache(path: Path) -> dict[str, Any]:
    """A JSON object cached on disk; a missing, unreadable or foreign file is an empty cache."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # it is rebuilt
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: Any, mode: int | None = 0o666) -> None:
    """``data`` as indented JSON, atomically."""
    write_file(path, json.dumps(data, indent=1, sort_keys=True).encode(), mode)


# -- TOML data files (device profiles, search spaces) ----------------------------------------


def shipped(folder: str) -> dict[str, Traversable]:
    """name -> file for the ``*.toml`` files of a folder shipped inside the package."""
    root = resources.files("autosq").joinpath(folder)
    return {
        f.name[:-5]: f
        for f in sorted(root.iterdir(), key=lambda t: t.name)
        if f.name.endswith(".toml")
    }


def parse_toml(text: str, where: str, error: type[UsageError]) -> dict[str, Any]:
    """Parse TOML text, turning a syntax error into ``error`` naming ``where``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{where}: not valid TOML: {exc}") from None
    except RecursionError:
        raise error(f"{where}: not valid TOML: nested too deeply") from None


def not_a_file(path: Path) -> str | None:
    """Why ``path`` is not a regular file a user can hand autosq ("is a folder", "does not
    exist", ...), or None when it is one."""
    if path.is_file():
        return None
    if path.is_dir():
        return "is a folder"
    if path.exists():
        return "is not a regular file"
    if path.is_symlink():
        return "is a broken symbolic link (or a link loop)"
    return "does not exist"


def read_text_file(path: Path, what: str, error: type[UsageError]) -> str:
    """The UTF-8 text of a user's file, or ``error`` saying why it cannot be read."""
    try:
        if (problem := not_a_file(path)) is not None:
            raise error(f"{what} {path} {problem}; expected a .toml file")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not UTF-8 text; expected a .toml file") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None


_KIND_NAMES = {int: "an integer", str: "a string", float: "a number"}


class TomlTable:
    """Typed access to one TOML table; errors (of class ``error``) name the file and the key."""

    def __init__(
        self, where: str, data: Mapping[str, Any], error: type[UsageError], prefix: str = ""
    ) -> None:
        self.where, self.data, self.error, self.prefix = where, data, error, prefix

    def fail(self, key: str, rule: str, value: Any = None) -> UsageError:
        seen = "" if value is None else f"; got {value!r}"
        return self.error(f"{self.where}: key '{self.prefix}{key}' {rule}{seen}")

    def table(self, key: str, required: bool = True) -> TomlTable | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is missing (a [table])")
            return None
        if not isinstance(value, dict):
            raise self.fail(key, "must be a [table]", value)
        return TomlTable(self.where, value, self.error, f"{self.prefix}{key}.")

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = ...,
        *,
        positive: bool = False,
        choices: Iterable[str] = (),
    ) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "is missing")
            return default
        value = self.data[key]
        wrong_bool = isinstance(value, bool) and kind is not bool
        if wrong_bool or not isinstance(value, kind):
            kinds = (kind,) if isinstance(kind, type) else kind
            names = "a number" if float in kinds else _KIND_NAMES.get(kinds[0], kinds[0].__name__)
            raise self.fail(key, f"must be {names}", value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise self.fail(key, "must be a finite number", value)
            if positive and value <= 0:
                raise self.fail(key, "must be > 0", value)
            if value < 0:
                raise self.fail(key, "must be >= 0", value)
        choices = tuple(choices)
        if choices and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}", value)
        return value

    def check_known(self, known: Iterable[str]) -> None:
        unknown = sorted(set(self.data) - set(known))
        if unknown:
            raise self.fail(unknown[0], f"is not a known key (known: {', '.join(sorted(known))})")
