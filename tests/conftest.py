"""Shared fixtures: random valid configurations, the CLI runner, small models."""

from __future__ import annotations

import random
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autosq.arch.config import SqueezeNetConfig


def random_config(rng: random.Random, **fixed: Any) -> SqueezeNetConfig:
    """A random valid config over wide ranges (pct_3x3 hits 0 and 1 now and then)."""
    pct = rng.choice(
        [0.0, 1.0, round(rng.uniform(0.01, 0.99), 3), round(rng.uniform(0.01, 0.99), 3)]
    )
    macro = rng.choice(["v1.0", "v1.1"])
    fields: dict[str, Any] = {
        "base_e": rng.randint(2, 160),
        "incr_e": rng.randint(0, 160),
        "freq": rng.randint(1, 8),
        "pct_3x3": pct,
        "sr": round(rng.uniform(0.05, 1.0), 3),
        "macro": macro,
        "conv1_filters": rng.choice([None, rng.randint(8, 128)]),
        "bypass": rng.choice(["none", "simple", "complex"]),
        "num_classes": rng.choice([2, 10, 100, 1000]),
        "input_size": rng.randint(21, 96),
    }
    fields.update(fixed)
    return SqueezeNetConfig(**fields)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory,
                   monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own autosq cache folder (returned): nothing touches ~/.cache, and
    cached reference timings or datasets never leak between tests."""
    from autosq._io import CACHE_ENV

    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv(CACHE_ENV, str(path))
    return path


@pytest.fixture(autouse=True)
def no_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables are as wide as autosq makes them off a terminal (160 columns), whatever width the
    test runner's environment passes on (pytest-xdist's workers inherit COLUMNS=80); a test
    that wants a width sets COLUMNS itself."""
    monkeypatch.delenv("COLUMNS", raising=False)


STORAGES = ("sqlite", "journal", "postgresql")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A real PostgreSQL server on loopback for the whole session (see tests/pgserver.py)."""
    from pgserver import running_server

    with running_server() as server:
        yield server


@pytest.fixture
def postgres_url(pg_server: Any) -> str:
    """A fresh database on the session's PostgreSQL server (its URL, password included)."""
    return str(pg_server.new_database())


@pytest.fixture(params=STORAGES)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh study storage URL, once per kind autosq supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'studies.db'}"
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"journal:///{tmp_path / 'studies.log'}"


@pytest.fixture
def make_configs() -> Callable[[int, int], list[SqueezeNetConfig]]:
    """make_configs(n, seed): n random valid configs, reproducibly."""

    def make(n: int, seed: int = 0) -> list[SqueezeNetConfig]:
        rng = random.Random(seed)
        return [random_config(rng) for _ in range(n)]

    return make


@pytest.fixture
def cli() -> Callable[..., tuple[int, str, str]]:
    """cli(*args) runs autosq's main in-process and returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    from autosq.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
        return code, out.getvalue(), err.getvalue()

    return run


class SigtermRaised(Exception):
    """What :func:`raising_sigterm`'s handler raises."""


@pytest.fixture
def raising_sigterm() -> Iterator[type[SigtermRaised]]:
    """SIGTERM handled as the search handles it, by raising (:class:`SigtermRaised`)."""
    def handler(signum: int, frame: object) -> None:
        raise SigtermRaised()

    previous = signal.signal(signal.SIGTERM, handler)
    yield SigtermRaised
    signal.signal(signal.SIGTERM, previous)
