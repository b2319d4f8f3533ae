"""`operators/` must not depend on the stream engine."""

from __future__ import annotations

import ast
from pathlib import Path

OPERATORS = Path(__file__).resolve().parents[2] / "operators"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_operators_do_not_import_bytewax():
    modules = sorted(OPERATORS.rglob("*.py"))
    assert modules, "no operator modules found"
    offenders = {
        str(p.relative_to(OPERATORS)): sorted(
            n for n in _imports(p) if n.split(".")[0] == "bytewax"
        )
        for p in modules
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_operators_do_not_import_flows_sinks_or_sources():
    forbidden = ("airis.flows", "airis.sinks", "airis.sources")
    for path in OPERATORS.rglob("*.py"):
        bad = [n for n in _imports(path) if n.startswith(forbidden)]
        assert not bad, f"{path.name} imports {bad}"
