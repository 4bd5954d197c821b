"""The pipelines import each other only downwards: no module of srkit/pipelines reaches itself through its imports
(imports inside functions count too: they are circles that only run later)."""

from __future__ import annotations

import ast
from pathlib import Path

import srkit.pipelines

PACKAGE = Path(srkit.pipelines.__file__).parent


def _imports(path: Path) -> set[str]:
    """The sibling modules a pipelines module imports, wherever in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("srkit.pipelines."):
            found.add(node.module.split(".")[2])
    return found


def _graph() -> dict[str, set[str]]:
    modules = {path.stem: path for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    return {name: _imports(path) & modules.keys() for name, path in modules.items()}


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (its modules in order, the first repeated at the end), or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return path[path.index(name) :] + [name]
        if name in done:
            return None
        for imported in sorted(graph[name]):
            if found := visit(imported, path + [name]):
                return found
        done.add(name)
        return None

    return next((found for name in sorted(graph) if (found := visit(name, []))), None)


def test_the_check_finds_a_circle():
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _circle({"a": {"b"}, "b": set()}) is None


def test_pipelines_have_no_import_circles():
    graph = _graph()
    assert {"batch", "photos", "scaleout", "processes", "ray_actors", "types"} <= graph.keys()
    assert _circle(graph) is None, " -> ".join(_circle(graph) or [])


def test_the_shared_types_are_a_leaf():
    assert _graph()["types"] == set()
