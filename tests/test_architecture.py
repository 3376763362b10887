"""The package's shape (STYLE.md): imports flow one way, no circles between folders, size budgets.

Layers, lowest first: errors/files/registry/config → data, nn → models, report → engine → tasks →
recipes, diagnosis → assemble → runs → capabilities → api → cli. A module may import its own
layer or lower ones, at run time or for typing alike; names reached through the registry's
``"module:attribute"`` strings are not imports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "fathom"
CAPABILITIES = ("transfer", "selfsupervised", "tuning", "compression", "export", "serving",
                "trust", "distributed", "federated")  # fmt: skip
LAYERS = {
    "_version": 0, "errors": 0, "files": 0, "registry": 0, "config": 0, "options": 0,
    "yaml_reader": 0,
    "data": 1, "nn": 1, "models": 2, "report": 2, "engine": 3, "tasks": 4,
    "recipes": 5, "diagnosis": 5, "assemble": 6, "runs": 7,
    **dict.fromkeys(CAPABILITIES, 8), "api": 9, "cli": 10, "__init__": 11, "__main__": 11,
}  # fmt: skip
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def area(module: str) -> str:
    """The layer name of a dotted module: its first component below ``fathom``."""
    return module.split(".")[1] if module.count(".") else "__init__"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> Iterator[str]:
    """Every absolute fathom module a file imports: top level, in functions, for typing."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fathom"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                yield submodule if resolve(submodule) else node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("fathom"))


def resolve(module: str) -> Path | None:
    """The file of a dotted fathom module, if it is one (a package gives its __init__.py)."""
    base = PACKAGE.parent.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def source_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_area_has_a_layer():
    unknown = {area(module_name(path)) for path in source_files()} - set(LAYERS)
    assert not unknown, f"give these folders a layer in LAYERS: {sorted(unknown)}"


def test_imports_flow_one_way():
    violations = []
    for path in source_files():
        own = area(module_name(path))
        for imported in imports_of(path):
            target = area(imported)
            if target != own and LAYERS[target] > LAYERS[own]:
                relative = path.relative_to(PACKAGE.parent)
                violations.append(f"{relative} imports {imported} ({own} must not use {target})")
    assert not violations, "\n".join(violations)


def import_graph() -> dict[Path, set[Path]]:
    graph: dict[Path, set[Path]] = {}
    for path in source_files():
        targets = {resolve(module) for module in imports_of(path)}
        graph[path] = {target for target in targets if target is not None and target != path}
    return graph


def strongly_connected(graph: dict[Path, set[Path]]) -> list[set[Path]]:
    """Tarjan's algorithm, iteratively: the groups of files that reach each other."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    on_stack: set[Path] = set()
    groups: list[set[Path]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    groups.append(group)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def test_no_circle_between_folders():
    circles = []
    for group in strongly_connected(import_graph()):
        folders = {path.parent for path in group}
        if len(folders) > 1:
            names = sorted(str(path.relative_to(PACKAGE.parent)) for path in group)
            circles.append(" <-> ".join(names))
    assert not circles, "files of different folders import each other:\n" + "\n".join(circles)


def test_size_budgets():
    too_big = []
    for path in source_files():
        text = path.read_text()
        relative = path.relative_to(PACKAGE.parent)
        if text.count("\n") > MAX_FILE_LINES:
            too_big.append(f"{relative}: {text.count(chr(10))} lines (at most {MAX_FILE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_big.append(f"{relative}:{node.lineno} {node.name}: {length} lines")
    assert not too_big, "\n".join(too_big)


def test_no_module_shadows_the_standard_library():
    import sys

    clashes = [
        str(path.relative_to(PACKAGE.parent))
        for path in source_files()
        if path.stem in sys.stdlib_module_names or path.parent.name in sys.stdlib_module_names
    ]
    assert not clashes, f"these names shadow standard-library modules: {clashes}"
