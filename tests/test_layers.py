"""Imports go one way between the layers of ``personalize`` (docs/architecture.md).

Every import counts, wherever it is written: at module level, inside a
function, or under ``TYPE_CHECKING``. A function-level import that dodges a
cycle is still a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "personalize"

#: Lowest first. A part may import its own modules and any part of a lower layer.
LAYERS: list[set[str]] = [
    {"conf", "signals"},
    {"models"},
    {"dataset"},
    {"backends"},
    {"strategies"},
    {"identity"},
    {"catalog", "consent"},
    {"tracking"},
    {"evaluation"},
    {"training"},
    # A/B tests: assignment (which serving asks), statistics, the bandit, reports
    {"experiments"},
    {"serving"},
    # what blocks earn: exposure logging (after serving), attribution, rollups
    {"outcomes"},
    # the edges: thin callers of the services, imported by nothing below them
    {"api", "templatetags", "admin", "management", "checks", "apps", "tasks", "urls", "views",
     "testing", "__init__"},
]
LAYER_OF = {part: n for n, parts in enumerate(LAYERS) for part in parts}
EDGES = LAYER_OF["api"]
#: Generated files that import what the models need at the time they were written.
SKIPPED = {"migrations"}


def _part(module: str) -> str:
    """The first component under ``personalize`` (``"__init__"`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _modules(package: Path = PACKAGE) -> Iterator[tuple[str, Path]]:
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        if len(parts) > 1 and parts[1] in SKIPPED:
            continue
        yield ".".join(parts), path


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """``(imported personalize module, line)`` of every import in the file."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target == "personalize":  # from personalize import signals
                for alias in node.names:
                    yield f"personalize.{alias.name}", node.lineno
            else:
                yield target, node.lineno


def _edges(package: Path = PACKAGE) -> list[tuple[str, str, str]]:
    """``(importing part, imported part, "file:line")`` across parts."""
    edges = []
    for module, path in _modules(package):
        source = _part(module)
        for target, line in _imports(module, path):
            if target.split(".")[0] != "personalize":
                continue
            imported = _part(target)
            if imported != source:
                edges.append((source, imported, f"{path.relative_to(package.parent)}:{line}"))
    return edges


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(module) for module, _ in _modules()}
    assert parts - LAYER_OF.keys() == set()


def test_imports_go_down_the_layers_only():
    upward = [
        f"{where}: {source} imports {imported}"
        for source, imported, where in _edges()
        if LAYER_OF.get(imported, -1) >= LAYER_OF.get(source, -1)
        # the edges may use one another (the admin renders a template tag)
        and not LAYER_OF.get(source) == LAYER_OF.get(imported) == EDGES
    ]
    assert upward == []


def _cycles(edges: list[tuple[str, str, str]]) -> list[list[str]]:
    """The parts that reach each other through imports, as strongly connected groups."""
    graph: dict[str, set[str]] = {}
    for source, imported, _ in edges:
        graph.setdefault(source, set()).add(imported)
        graph.setdefault(imported, set())
    reach = {part: _reachable(graph, part) for part in graph}
    groups = {frozenset(p for p in reach[part] if part in reach[p]) | {part} for part in graph}
    return sorted(sorted(group) for group in groups if len(group) > 1)


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        part = todo.pop()
        if part not in seen:
            seen.add(part)
            todo.extend(graph[part])
    return seen


def test_no_two_parts_import_each_other():
    assert _cycles(_edges()) == []


def test_the_cycle_check_finds_a_cycle_through_a_third_part():
    edges = [("a", "b", ""), ("b", "c", ""), ("c", "a", ""), ("c", "d", "")]
    assert _cycles(edges) == [["a", "b", "c"]]


def test_the_layer_check_sees_function_level_imports(tmp_path):
    # a checker that missed imports inside functions would pass any package
    package = tmp_path / "personalize"
    (package / "strategies").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "strategies" / "__init__.py").write_text("")
    (package / "strategies" / "base.py").write_text(
        "def f():\n    from personalize.serving import service\n"
        "def g():\n    from personalize import tracking\n"
    )
    found = {(source, imported) for source, imported, _ in _edges(package)}
    assert found == {("strategies", "serving"), ("strategies", "tracking")}


@pytest.mark.parametrize("module", [m for m, _ in _modules()])
def test_no_module_is_longer_than_about_500_lines(module):
    path = dict(_modules())[module]
    assert len(path.read_text().splitlines()) <= 520, f"{module}: split it by job"
