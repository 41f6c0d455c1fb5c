"""The public API: keyword-only and typed, its names exported, its errors inside the exception
tree and naming Python parameters (the CLI names flags)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import autosq
from autosq.errors import AutosqError, ConfigError, UsageError


def test_public_names_are_exported() -> None:
    for name in ("search", "compare", "refine", "export", "load_result", "SearchResult",
                 "Comparison", "TrialRecord", "FrontMember", "cost", "plan", "preset",
                 "SqueezeNetConfig", "AutosqError"):
        assert name in autosq.__all__ and hasattr(autosq, name)


@pytest.mark.parametrize("name", ["search", "compare", "refine", "export", "load_result"])
def test_calls_are_keyword_only_and_typed(name: str) -> None:
    sig = inspect.signature(getattr(autosq, name))
    assert sig.parameters, name
    for p in sig.parameters.values():
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, f"{name}({p.name}) is positional"
        assert p.annotation is not inspect.Parameter.empty, f"{name}({p.name}) has no type"
    assert sig.return_annotation is not inspect.Signature.empty


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: autosq.search(trials=0), "trials must be an integer >= 1"),
        (lambda: autosq.search(seed=-1), "seed must be an integer in 0.."),
        (lambda: autosq.search(max_mb=float("nan")), "max_mb must be a finite number > 0"),
        (lambda: autosq.search(refine=1), "refine trains front members: it needs data"),
        (lambda: autosq.compare(devices="rpi4"), "devices must be a list"),
        (lambda: autosq.compare(devices=["rpi4"], max_mb=[-1.0]), "max_mb values must be"),
        (lambda: autosq.cost(autosq.preset("squeezenet1_1")).size_mb("int4"),
         "precision must be one of fp32, fp16, int8; got 'int4'"),
        (lambda: autosq.preset("squeezenet1_1", sr=float("inf")), "sr must be a finite number"),
    ],
)
def test_errors_name_python_parameters(call: object, needle: str) -> None:
    with pytest.raises(UsageError) as info:
        call()  # type: ignore[operator]
    assert needle in str(info.value) and "--" not in str(info.value)


def test_reading_a_missing_study_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    with pytest.raises(AutosqError, match="does not exist"):
        autosq.load_result(study="x", storage=url)
    with pytest.raises(AutosqError, match="does not exist"):
        autosq.refine(study="x", storage=url)
    assert list(tmp_path.iterdir()) == []


def test_config_errors_are_usage_errors() -> None:
    assert issubclass(ConfigError, UsageError) and UsageError.exit_code == 2
