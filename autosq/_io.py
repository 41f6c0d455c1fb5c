"""Files autosq reads and writes: the cache folder, atomic writes, JSON caches, TOML tables.

Everything that lands on disk goes through :func:`write_files` (one file, or several renamed
into place together): written to temporary siblings first, so a crash, a full disk or an error
in between never leaves half a file, and a reader never sees one.
"""

from __future__ import annotations

import contextlib
import errno
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
    given = os.environ.get(CACHE_ENV)
    home = Path(os.path.expanduser("~"))
    base = Path(given) if given else home / ".cache" / "autosq"
    path = base.joinpath(*parts)
    if not create:
        return path
    if given and not given.isprintable():  # a newline pasted into the variable, say
        raise UsageError(f"cannot use the cache folder {shown_path(given)} (from {CACHE_ENV}): "
                         "its name holds a control character; set it to the folder's name "
                         "alone")
    if given and (problem := path_problem(given)) is not None:
        raise UsageError(f"cannot use the cache folder {shown_path(given)} (from {CACHE_ENV}): "
                         f"it {problem}")
    if not given and not home.is_dir():
        # Never make a home folder (at the file system's root, say): the user's is wrong.
        raise UsageError(
            f"cannot use the cache folder {shown_path(path)}: the home folder "
            f"{shown_path(home)} (HOME) "
            f"{'is not a folder' if home.exists() else 'does not exist'}; set {CACHE_ENV} to a "
            "writable folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # mkdir says "File exists" for a file in the way (the folder itself or a parent).
        why = ("it is a file, not a folder" if path.exists() and not path.is_dir() else
               exc.strerror or str(exc))
        raise UsageError(
            f"cannot use the cache folder {path} ({why}); set {CACHE_ENV} to a writable folder"
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
            except RuntimeError:
                # A library's writer (torch.save) reports a failed write as its own error;
                # a full disk is then an OSError like any other (a cache skips it).
                if _nearly_full(path.parent):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
                raise
        if len(temps) == 1:  # one file: an atomic replace, never a moment without it
            os.replace(*temps[0])
        else:
            _swap_in(temps)
    except BaseException:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


def _nearly_full(folder: Path) -> bool:
    """Whether the file system holding ``folder`` has (almost) no space left."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < (1 << 20)


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


NAME_MAX = 255  # bytes of one file name (Linux file systems, macOS)
PATH_MAX = 4096  # bytes of a whole path, with its terminating zero


def shown_path(path: str | Path) -> str:
    """A path as a message shows it: as typed when it is printable, else quoted with its
    escapes (a trailing newline from an environment variable is seen as ``\\n``); a very long
    one cut in the middle, with its length."""
    text = str(path)
    out = text if text.isprintable() else repr(text)
    if len(out) > 160:
        out = f"{out[:100]}...{out[-40:]} ({len(text):,} characters)"
    return out


def path_problem(path: str | Path) -> str | None:
    """Why no file system can hold this path (a name over :data:`NAME_MAX` bytes, a path over
    :data:`PATH_MAX`), or None. Checked before a file is created or looked up, so that the
    user reads what is wrong instead of "File name too long"."""
    text = str(path)
    longest = max((len(part.encode("utf-8", "surrogateescape"))
                   for part in Path(text).parts), default=0)
    if longest > NAME_MAX:
        return (f"has a file or folder name of {longest:,} bytes; file systems allow at most "
                f"{NAME_MAX}")
    if len(text.encode("utf-8", "surrogateescape")) >= PATH_MAX:
        return f"is {len(text):,} characters long; a path may have at most {PATH_MAX - 1} bytes"
    return None


def os_error_text(exc: OSError) -> str:
    """An operating system's error as one line saying what happened to which file."""
    import errno as codes

    name = shown_path(exc.filename) if exc.filename else None
    if exc.errno in (codes.ENOSPC, codes.EDQUOT):
        where = f"the device holding {name}" if name else "the device written to"
        return f"no space left on {where}; free some space and run it again"
    if exc.errno == codes.ENAMETOOLONG and name:
        return f"the file name {name} is too long for the file system"
    if exc.errno in (codes.EPERM, codes.EACCES, codes.EROFS) and name:
        return (f"{exc.strerror or exc}: {name} (read-only, immutable, or in a folder that "
                "forbids it)")
    text = str(exc.strerror or exc)
    return f"{text}: {name}" if name else text


def not_a_file(path: Path) -> str | None:
    """Why ``path`` is not a regular file a user can hand autosq ("is a folder", "does not
    exist", ...), or None when it is one."""
    if (problem := path_problem(path)) is not None:
        return problem
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
            raise error(f"{what} {shown_path(path)} {problem}; expected a .toml file")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} {shown_path(path)} is not UTF-8 text; expected a .toml "
                    "file") from None
    except OSError as exc:
        raise error(f"cannot read {what} {shown_path(path)}: {exc.strerror or exc}") from None


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
