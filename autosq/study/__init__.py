"""Deprecated: ``autosq.study`` was split into :mod:`autosq.searching` (the search) and
:mod:`autosq.outputs` (what is made from a finished study). ``import autosq.study.X`` still
works, with a :class:`DeprecationWarning`, and gives the module at its new place."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

_OUTPUTS = ("export", "compression", "deep_compression", "compare", "page", "calibrate")
_SEARCHING = ("evaluate", "objectives", "pareto", "records", "refine", "result", "run",
              "samplers", "screening", "storage", "workers")
MOVED = {f"{__name__}.{m}": f"autosq.outputs.{m}" for m in _OUTPUTS} | {
    f"{__name__}.{m}": f"autosq.searching.{m}" for m in _SEARCHING}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``autosq.study.X`` and loads it as the module that replaced it."""

    def __init__(self) -> None:
        self._specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there",
                      DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        self._specs[new] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """The module is the new one, already executed: give it back its own spec (the import
        system set the alias's)."""
        module.__spec__ = self._specs[module.__name__]


if not any(isinstance(f, _Alias) for f in sys.meta_path):
    sys.meta_path.insert(0, _Alias())


def __getattr__(name: str) -> ModuleType:
    target = MOVED.get(f"{__name__}.{name}")
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f"{__name__}.{name}")
