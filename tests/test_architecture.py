"""Imports flow one way: data/nn/models → engine → tasks → recipes → api/run → cli (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "fathom"
LAYERS = {
    "_version": 0, "errors": 0, "io": 0, "registry": 0, "config": 0,
    "data": 1, "nn": 1, "models": 2, "report": 2,
    "engine": 3, "tasks": 4, "recipes": 5, "diagnosis": 5, "api": 6, "run": 6, "inspection": 6, "run_actions": 6, "cli": 7, "cli_parser": 7, "__init__": 8,
}  # fmt: skip


def area(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def runtime_imports(path: Path) -> list[str]:
    """Absolute fathom imports outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "fathom":
            found += [f"fathom.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fathom"):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("fathom")]
    return found


def test_imports_flow_one_way():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        own = area(".".join(relative.parts))
        for imported in runtime_imports(path):
            target = area(imported)
            if target != own and LAYERS[target] > LAYERS[own]:
                violations.append(
                    f"{relative} imports {imported} ({own} must not depend on {target})"
                )
    assert not violations, "\n".join(violations)
