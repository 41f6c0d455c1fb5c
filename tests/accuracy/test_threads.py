"""How many threads a training uses: OMP_NUM_THREADS, else half the CPUs; --threads checked."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from autosq.accuracy import threads as threads_module
from autosq.accuracy.threads import default_threads, resolve_threads
from autosq.errors import UsageError

Cli = Callable[..., tuple[int, str, str]]


@pytest.mark.parametrize(("cpus", "env", "expected"), [
    (1, None, 1), (2, None, 1), (3, None, 1), (16, None, 8),
    (16, "3", 3), (2, "8", 2), (16, " 4 ", 4),
])
def test_default_threads(monkeypatch: pytest.MonkeyPatch, cpus: int, env: str | None,
                         expected: int) -> None:
    monkeypatch.setattr(threads_module, "available_cpus", lambda: cpus)
    if env is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", env)
    assert default_threads() == expected
    assert resolve_threads(None) == expected


@pytest.mark.parametrize("env", ["0", "two", "-1", "1.5"])
def test_a_bad_omp_num_threads_is_named(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", env)
    with pytest.raises(UsageError, match=f"OMP_NUM_THREADS must be a whole number >= 1; got "
                                         f"'{env}'"):
        default_threads()


@pytest.mark.parametrize("value", [0, -1, 10_000, True, 1.5])
def test_resolve_threads_refuses_what_no_cpu_set_allows(value: object) -> None:
    with pytest.raises(UsageError, match="threads must be a whole number from 1 to"):
        resolve_threads(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("args", [
    ["search", "--threads", "1"],
    ["search", "--data", "builtin:shapes:10", "--input-size", "32", "--threads", "0"],
    ["export", "--study", "s", "--trial", "0", "--out", "m.onnx", "--threads", "100000"],
    ["refine", "--study", "s", "--threads", "0"],
    ["proxy-check", "--threads", "0"],
])
def test_the_cli_names_the_flag(cli: Cli, args: list[str]) -> None:
    code, _, err = cli(*args)
    assert code == 2 and "--threads" in err and len(err.strip().splitlines()) == 1, err
