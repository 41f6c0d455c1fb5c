"""The package's structure: layers by data flow, no import cycles, pure modules stay pure.

The import graph counts every import, also those inside functions (``TYPE_CHECKING`` blocks
excepted), since a cycle through a function-level import is still a cycle for a reader.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "autosq"
# Each layer may import only the layers before it (and the shared leaves errors, _io, _signals,
# memory, _version); nothing in a layer imports the package's public API
# (autosq/__init__.py).
LAYERS = ("arch", "compress", "measure", "accuracy", "searching", "outputs", "cli")
PURE = ("autosq.arch.config", "autosq.arch.plan", "autosq.arch.cost", "autosq.arch.space",
        "autosq.arch.presets", "autosq.measure.protocol", "autosq.measure.limits",
        "autosq.measure.features", "autosq.searching.screening", "autosq.memory",
        "autosq.searching.pareto", "autosq.searching.objectives",
        "autosq.searching.records", "autosq.accuracy.correlation", "autosq.arch.inherit",
        "autosq.searching.arguments", "autosq.searching.thinning")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if "TYPE_CHECKING" in ast.unparse(node.test):
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            assert node.level == 0, f"{name}: relative import"
            found.add(node.module or "")
            found.update(f"{node.module}.{a.name}" for a in node.names)

    Visitor().visit(ast.parse(path.read_text()))
    edges = set()
    for target in found:
        while target and target not in modules and "." in target:
            target = target.rsplit(".", 1)[0]
        if target in modules and target != name:
            edges.add(target)
    return edges


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    # a package __init__ re-exporting its own submodules is not a dependency of theirs
    return {m: {t for t in ts if not (modules[m].name == "__init__.py"
                                      and t.startswith(m + "."))} for m, ts in graph.items()}


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(t):], t]))
            if t not in state:
                visit(t)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def _layer(module: str) -> int | None:
    if module == "autosq":  # the public API re-exports every layer: it sits above them all
        return len(LAYERS)
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_layers_import_only_earlier_layers() -> None:
    wrong = []
    for m, targets in _graph().items():
        own = _layer(m)
        if own is None:
            continue
        wrong += [f"{m} -> {t}" for t in targets if (_layer(t) or 0) > own]
    assert not wrong, "a layer imports a later one: " + "; ".join(sorted(wrong))


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_load_no_heavy_library(module: str) -> None:
    code = (f"import sys, {module}; heavy = [m for m in ('torch', 'onnxruntime', 'optuna', "
            "'numpy', 'pandas') if m in sys.modules]; print(heavy); sys.exit(bool(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_grows_past_400_lines() -> None:
    long = {m: len(p.read_text().splitlines()) for m, p in _modules().items()}
    assert max(long.values()) <= 400, sorted(long.items(), key=lambda kv: -kv[1])[:3]


def test_the_old_study_package_still_imports_with_a_deprecation_warning() -> None:
    code = ("import warnings; warnings.simplefilter('error')\n"
            "try:\n    import autosq.study.export\nexcept DeprecationWarning as w:\n"
            "    print(w)\n"
            "warnings.simplefilter('ignore')\n"
            "import autosq.study.export as old, autosq.outputs.export as new\n"
            "import autosq.study.records as r, autosq.searching.records as s\n"
            "print(old is new, r is s, new.__spec__.name)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "autosq.study.export moved to autosq.outputs.export; import it from there",
        "True True autosq.outputs.export"]
