"""The one atomic writer and the cache folder helper."""

from __future__ import annotations

from pathlib import Path

import pytest

from autosq._io import CACHE_ENV, cache_dir, write_files
from autosq.errors import UsageError


def test_files_written_together_or_not_at_all(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.json"
    write_files([(a, b"one"), (b, lambda tmp: tmp.write_text("two"))])
    assert a.read_bytes() == b"one" and b.read_text() == "two"

    def boom(tmp: Path) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_files([(a, b"new"), (b, boom)])
    assert a.read_bytes() == b"one" and b.read_text() == "two"  # neither replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.json"]  # no temporaries


def test_a_folder_in_place_of_one_file_changes_neither(tmp_path: Path) -> None:
    a, b = tmp_path / "m.onnx", tmp_path / "m.onnx.json"
    a.write_bytes(b"old model")
    b.mkdir()
    with pytest.raises(UsageError, match=r"m\.onnx\.json: it is a folder"):
        write_files([(a, b"new model"), (b, b"{}")])
    assert a.read_bytes() == b"old model" and b.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.json"]


@pytest.mark.parametrize("failing", [0, 1])
def test_a_rename_that_fails_puts_every_old_file_back(tmp_path: Path, failing: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """An old card that cannot be replaced (immutable, EPERM), or a model that cannot:
    both files stay as they were."""
    import os

    a, b = tmp_path / "m.onnx", tmp_path / "m.onnx.json"
    a.write_bytes(b"old model")
    b.write_text("old card")
    real = os.rename
    calls: list[str] = []

    def rename(src: str, dst: str) -> None:
        calls.append(str(dst))
        targets = [c for c in calls if c in (str(a), str(b))]
        if str(dst) in (str(a), str(b)) and len(targets) == failing + 1 and \
                str(src).endswith(".tmp"):
            raise PermissionError(1, "Operation not permitted", str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(PermissionError):
        write_files([(a, b"new model"), (b, b"new card")])
    monkeypatch.undo()
    assert a.read_bytes() == b"old model" and b.read_text() == "old card"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.json"]


def test_cache_dir_names_the_variable_when_unusable(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    with pytest.raises(UsageError, match=CACHE_ENV):
        cache_dir()
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert cache_dir("data") == tmp_path / "c" / "data" and (tmp_path / "c" / "data").is_dir()
