"""The import layout, read from the source with ``ast`` (nothing is imported): no two modules of
``blender_gradhog`` or ``torch_backend`` import each other, directly or around a loop; the core never
imports Blender or the add-on; the add-on reaches the core through one switch."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("blender_gradhog", "torch_backend")


def module_files() -> dict[str, Path]:
    """``{"blender_gradhog.api": path, "torch_backend.pose": path/__init__.py, ...}``."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_names(name: str, path: Path) -> set[str]:
    """Every module name ``name`` imports, anywhere in the file (inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    """Edges between our own modules. ``from . import x`` needs the package's ``__init__`` loaded,
    which is not a dependency on it: only names that are modules, and other packages, count."""
    modules = module_files()
    graph = {}
    for name, path in modules.items():
        targets = {target for target in imported_names(name, path) if target in modules}
        # "from . import api" also yields the package itself; keep it only when nothing below it is meant.
        graph[name] = {t for t in targets if t != name and not any(o.startswith(t + ".") for o in targets)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_known_edges():
    graph = import_graph()
    assert "blender_gradhog.api" in graph["blender_gradhog.operators"]
    assert "blender_gradhog.options" in graph["blender_gradhog.api"]
    assert "torch_backend.pose.options" in graph["torch_backend.pose"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("name", [n for n in module_files() if n.startswith("torch_backend")])
def test_core_never_imports_blender_or_the_addon(name):
    imported = imported_names(name, module_files()[name])
    for forbidden in ("bpy", "mathutils", "bpy_extras", "gpu", "blender_gradhog"):
        assert not any(n == forbidden or n.startswith(forbidden + ".") for n in imported), (name, forbidden)


def test_the_addon_reaches_the_core_through_one_switch():
    """Only ``_backend.py`` names modules by string; no add-on module imports ``torch_backend`` itself."""
    for name, path in module_files().items():
        if not name.startswith("blender_gradhog"):
            continue
        source = path.read_text(encoding="utf-8")
        if name != "blender_gradhog._backend":
            assert "import_module" not in source and "__import__" not in source, name
        assert not any(n.split(".")[0] == "torch_backend" for n in imported_names(name, path)), name
