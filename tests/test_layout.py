"""The package's layering: no import cycle and no import from a lower stage up to a higher one.

Every ``import`` counts, those inside functions and under ``TYPE_CHECKING`` too (a deferred import hides a
cycle, it does not remove it). The stages follow the data flow (docs/architecture.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "galad"

# lowest first; a module may import its own stage and the ones before it
STAGES = [
    ("foundation", ("galad.errors", "galad.paths", "galad.atomic", "galad.store", "galad.config", "galad.folds",
                    "galad.device")),
    ("env", ("galad.env",)),
    ("values", ("galad.values", "galad.metrics", "galad.runs")),
    ("agents", ("galad.agents",)),
    ("candidates", ("galad.candidates",)),
    ("top", ("galad.train", "galad.evaluate", "galad.viewer", "galad.report", "galad.sweep", "galad.bench", "galad.benchcompare",
             "galad.replay", "galad.play", "galad.cli", "galad.__main__", "galad")),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The galad modules ``name`` imports (``from galad.x import y`` counts ``galad.x.y`` when that is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:  # a name inside a module: the module
                t = t.rpartition(".")[0]
            if t.startswith("galad") and t != name:
                found.add(t)
    return found


def _stage(name: str) -> int:
    best = None
    for i, (_, prefixes) in enumerate(STAGES):
        for p in prefixes:
            if name == p or name.startswith(p + "."):
                if best is None or len(p) > best[1]:
                    best = (i, len(p))
    if best is None:
        pytest.fail(f"{name} is in no stage of tests/test_layout.py: add it where it belongs")
    return best[0]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_no_module_imports_a_later_stage(graph):
    upward = sorted(f"{a} -> {b}" for a, deps in graph.items() for b in deps
                    if b != "galad" and _stage(b) > _stage(a) and a != "galad")
    assert not upward, "imports from a lower stage up to a higher one:\n" + "\n".join(upward)


def test_no_import_cycle(graph):
    # Tarjan's strongly connected components; a component of more than one module is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w == "galad" or (v.startswith("galad.") and w == v.rpartition(".")[0]):
                continue  # a package's own __init__ re-exports are not an edge back
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checker_sees_a_deferred_import(tmp_path):
    """The checker itself: an import inside a function is an edge, and so is a relative one."""
    modules = {"galad.a": tmp_path / "a.py", "galad.b": tmp_path / "b.py", "galad.c": tmp_path / "c.py"}
    modules["galad.a"].write_text("def f():\n    from galad.b import thing\n    from . import c\n", encoding="utf-8")
    assert _imports("galad.a", modules["galad.a"], modules) == {"galad.b", "galad.c"}
