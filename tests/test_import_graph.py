"""srkit's modules import each other only downwards: no module reaches itself through its imports (imports inside
functions count too: they are circles that only run later). `srkit.kernels` is a separate tree and imports nothing
of srkit."""

from __future__ import annotations

import ast
from pathlib import Path

import srkit

PACKAGE = Path(srkit.__file__).parent


def _name(path: Path) -> str:
    """The dotted module name of a file under srkit/ (a package by its folder)."""
    parts = ("srkit", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_name(path): path for path in PACKAGE.rglob("*.py") if "kernels" not in path.relative_to(PACKAGE).parts}


def _imports(name: str, path: Path, modules: set[str]) -> set[str]:
    """The srkit modules `name` imports, wherever in the file (`from . import x` names the module x)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            named = {f"{target}.{alias.name}" for alias in node.names} & modules
            found |= named or ({target} & modules if node.module else set())
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names} & modules
    return found - {name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


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


def test_the_graph_sees_relative_and_function_level_imports():
    graph = _graph()
    assert "srkit.pipelines.types" in graph["srkit.pipelines.batch_plan"]
    assert "srkit.engine.cpu_backend" in graph["srkit.environment"]


def test_srkit_has_no_import_circles():
    graph = _graph()
    assert {"srkit.pipelines.batch", "srkit.engine.runner", "srkit.io.video.reader", "srkit.cli"} <= graph.keys()
    assert _circle(graph) is None, " -> ".join(_circle(graph) or [])
