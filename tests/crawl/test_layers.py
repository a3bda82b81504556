"""The crawl and the command line import in layers: no cycle, and `CrawlStats` below them all."""

from __future__ import annotations

import ast
from pathlib import Path

import audioscape_async

PACKAGE = Path(audioscape_async.__file__).parent


def _module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = [PACKAGE.name, *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _imports_at_module_level(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports outside functions and classes, those under ``if TYPE_CHECKING:`` included."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            pending.extend(node.body)
            pending.extend(getattr(node, "orelse", []))
            pending.extend(getattr(node, "finalbody", []))
            for handler in getattr(node, "handlers", []):
                pending.extend(handler.body)
    return found


def import_graph() -> dict[str, set[str]]:
    """Each module of the package and the modules of the package it imports at module level."""
    names = _module_names()
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = graph.setdefault(name, set())
        for node in _imports_at_module_level(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                # `from X import sub` imports the submodule `sub`; any other name, X itself.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in names else base
                    for alias in node.names
                ]
            edges.update(target for target in targets if target in names and target != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary import cycle, once, from its smallest module name."""
    found: list[list[str]] = []
    for start in sorted(graph):
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for target in sorted(graph[node]):
                if target == start:
                    found.append(path)
                elif target > start and target not in path:
                    stack.append((target, [*path, target]))
    return found


def test_no_module_of_the_crawl_or_the_command_line_imports_in_a_circle() -> None:
    """No import cycle (TYPE_CHECKING imports counted) passes through the crawl or the CLI."""
    areas = ("audioscape_async._crawl", "audioscape_async._cli")
    found = [cycle for cycle in cycles(import_graph()) if any(m.startswith(areas) for m in cycle)]
    assert found == []


def test_crawl_stats_is_a_leaf_below_the_pipeline_and_the_walk() -> None:
    """`_crawl._stats` imports nothing of the SDK but its errors; pipeline and walk import it."""
    graph = import_graph()
    assert graph["audioscape_async._crawl._stats"] == {"audioscape_async._exceptions"}
    for user in ("_pipeline", "_crawl._walk", "_crawl._pagination"):
        assert "audioscape_async._crawl._stats" in graph[f"audioscape_async.{user}"], user


def test_in_memory_crawls_load_no_file_machinery() -> None:
    """The in-memory layers never import the checkpoint, file or format modules."""
    graph = import_graph()
    file_layer = {
        f"audioscape_async._crawl.{name}"
        for name in ("_file_crawl", "_checkpoint", "_files", "_formats")
    }
    for module in ("__init__", "_stats", "_walk", "_pagination", "_crawl"):
        name = "audioscape_async._crawl" + ("" if module == "__init__" else f".{module}")
        assert not graph[name] & file_layer, name


def test_nothing_in_the_package_imports_in_a_circle() -> None:
    """No import cycle anywhere in the package, TYPE_CHECKING imports counted.

    (A function may still import lazily at call time: `_models`' `from_dict` reaches
    `_convert`, which holds the converter of the models.)
    """
    assert cycles(import_graph()) == []
