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


def test_cache_dir_names_the_variable_when_unusable(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    with pytest.raises(UsageError, match=CACHE_ENV):
        cache_dir()
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert cache_dir("data") == tmp_path / "c" / "data" and (tmp_path / "c" / "data").is_dir()
