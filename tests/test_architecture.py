"""The package's shape: one import package whose subpackages follow the data flow, without cycles.

Every import is counted, also those inside functions and under TYPE_CHECKING: a lazy import hides a
cycle from the interpreter, not from a reader. A layer may import its own and lower layers only.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[1] / "entitlements"

# Lowest first. A module not listed by its subpackage is listed by its own name.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("warehouse", "audit", "config"),
    ("ingest",),
    ("quality", "demo"),
    ("transform",),
    ("serve",),
    ("reports",),
    ("runs",),
    ("cli", "bench", "__main__"),
)
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules this file imports (a `from x import y` counts y when y is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; the package imports absolutely"
            base = node.module or ""
            names = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
            names = names or [base]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: _imports(path, modules) - {name} for name, path in paths.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_every_module_belongs_to_a_layer() -> None:
    unplaced = sorted(module for module in _graph() if _layer(module) not in RANK | {"entitlements": 0})
    assert unplaced == [], f"place these in LAYERS (lowest first): {unplaced}"


def test_no_layer_imports_a_higher_one() -> None:
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if _layer(module) in RANK and _layer(target) in RANK and RANK[_layer(target)] > RANK[_layer(module)]
    )
    assert upward == [], "imports against the data flow:\n" + "\n".join(upward)


def test_no_import_cycle() -> None:
    graph = _graph()
    cycles = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert cycles == [], f"modules importing each other: {cycles}"


def test_the_graph_sees_imports() -> None:
    """The checks above are only as good as the graph: known edges must be in it."""
    graph = _graph()
    assert "entitlements.ingest.layouts" in graph["entitlements.quality.gates"]
    assert "entitlements.warehouse" in graph["entitlements.runs.pipeline"]


def test_audit_tables_are_declared_only_in_the_audit_module() -> None:
    """Every audit.* table's columns live in entitlements/audit.py; no module writes DDL of its own."""
    ddl = re.compile(
        r"create\s+table[^\n]*audit\.|create\s+table[^\n]*\{(?:DQ_RESULTS|MANIFEST|REJECTED)", re.I
    )
    offenders = sorted(
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if path.name != "audit.py" and ddl.search(path.read_text(encoding="utf-8"))
    )
    assert offenders == [], f"declare the table in entitlements/audit.py and use audit.ensure: {offenders}"


def test_the_warehouse_as_of_date_has_one_definition() -> None:
    """The date the marts answer for is the last finished build's (warehouse.built_as_of); no module
    works it out again from the marts (max(as_of_date)) or from the builds table."""
    rule = re.compile(
        r"max\(\s*as_of_date\s*\)|as_of_date\s+from\s+(audit\.pipeline_runs|\{BUILDS_TABLE\})", re.I
    )
    where = sorted(
        str(path.relative_to(PACKAGE.parent))
        for path in [*PACKAGE.rglob("*.py"), *PACKAGE.parent.joinpath("notebooks").glob("*.py")]
        if rule.search(path.read_text(encoding="utf-8"))
    )
    assert where == [], f"use entitlements.warehouse.built_as_of instead: {where}"
    assert "def built_as_of(" in (PACKAGE / "warehouse.py").read_text(encoding="utf-8")
