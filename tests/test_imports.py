"""No import cycles in effconv/, and every module imports on its own.

The graph is built from each module's import statements, read with `ast` (nothing is executed):
every `import` and `from ... import` anywhere in the file, at module level or inside a function,
except under `if TYPE_CHECKING:` (never run). An import inside a function is still a dependency:
it runs whenever the function does, and that is where the cycles issue 17 lists hide (spec loading
imported the zoo, the CIFAR decoders imported the data module that called them). An edge goes to
the module named, or, for `from package import name`, to `package.name` when that is a module. A
parent package's `__init__` (which Python runs first) is not an edge, so a package may import its
submodules without a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "effconv"

# Cycles that still exist, each as its sorted set of modules; the test fails when one disappears, so
# the list only shrinks. Issue 17 cut the last six: none may come back.
KNOWN_CYCLES: set[frozenset[str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """Every import statement of a module, except those under `if TYPE_CHECKING:`."""

    def __init__(self) -> None:
        self.found: list[ast.Import | ast.ImportFrom] = []

    def visit_Import(self, node: ast.Import) -> None:
        self.found.append(node)

    visit_ImportFrom = visit_Import  # type: ignore[assignment]

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            for child in node.body:
                self.visit(child)
        for child in node.orelse:
            self.visit(child)


def _imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    visitor = _Imports()
    visitor.visit(tree)
    return visitor.found


def _targets(node: ast.Import | ast.ImportFrom, name: str) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:  # relative: from . import x / from .mod import x
        here = name.split(".") if MODULES[name].name == "__init__.py" else name.split(".")[:-1]
        here = here[: len(here) - (node.level - 1)]
        base = ".".join([*here, base] if base else here)
    found = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        found.add(sub if sub in MODULES else base)
    return found


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges = set()
        for node in _imports(tree):
            edges |= {t for t in _targets(node, name) if t in MODULES and t != name}
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _show(cycle: frozenset[str]) -> str:
    return " <-> ".join(sorted(cycle))


def test_no_new_import_cycles():
    new = cycles(import_graph()) - KNOWN_CYCLES
    assert not new, "import cycles: " + "; ".join(_show(c) for c in sorted(new, key=sorted))


def test_known_cycles_still_exist():
    """When a known cycle is cut, remove it from KNOWN_CYCLES."""
    gone = KNOWN_CYCLES - cycles(import_graph())
    assert not gone, "cut, remove from KNOWN_CYCLES: " + "; ".join(_show(c) for c in sorted(gone, key=sorted))


def test_the_graph_sees_imports():
    """The walker itself: module- and function-level imports are edges, TYPE_CHECKING ones are not."""
    graph = import_graph()
    assert "effconv.errors" in graph["effconv.specs"]  # module level
    assert "effconv.zoo" in graph["effconv.training.checkpoint"]  # inside load_run
    assert "effconv.zoo.blocks" in graph["effconv.zoo.mobilenet"]  # from package import submodule
    code = "if TYPE_CHECKING:\n    import a\nelse:\n    import b\ndef f():\n    import c\nclass K:\n    import d\n"
    assert [n.names[0].name for n in _imports(ast.parse(code))] == ["b", "c", "d"]


def test_every_module_imports_in_a_fresh_interpreter():
    """Each module on its own, in a new interpreter (so import order cannot hide a cycle)."""
    script = (
        "import importlib, sys, traceback\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        failed.append(name + ': ' + traceback.format_exc(limit=2).strip().splitlines()[-1])\n"
        "    for loaded in [m for m in sys.modules if m == 'effconv' or m.startswith('effconv.')]:\n"
        "        del sys.modules[loaded]\n"
        "print('\\n'.join(failed))\n"
    )
    names = [n for n in MODULES if n != "effconv.__main__"]
    proc = subprocess.run([sys.executable, "-c", script, *names], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "", proc.stdout


@pytest.mark.parametrize("module", ["effconv.specs", "effconv.data.format", "effconv.errors", "effconv.io"])
def test_ground_floor_stays_light(module):
    """The ground floor and the spec reader load without torch."""
    code = f"import sys, {module}; print('torch' in sys.modules)"
    if module == "effconv.specs":
        code = "import sys; from effconv.specs import load_spec; load_spec('mobilenet_v1'); " \
               "print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"
