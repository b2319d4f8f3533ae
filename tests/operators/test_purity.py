"""`operators/` is pure stream logic: no engine, no I/O, no settings, no metrics."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

OPERATORS = Path(__file__).resolve().parents[2] / "operators"

#: What an operator may import: computation only. Clients, files, sockets, threads, Bytewax,
#: Prometheus and our settings are what `sources/`, `sinks/`, `models/` and `flows/` are for.
ALLOWED_THIRD_PARTY = frozenset({"numpy", "scipy", "numba", "pydantic"})
ALLOWED_STDLIB = frozenset(
    {
        "__future__", "abc", "array", "bisect", "collections", "copy", "dataclasses", "datetime",
        "enum", "functools", "hashlib", "heapq", "importlib", "inspect", "itertools", "logging",
        "math", "numbers", "operator", "random", "re", "statistics", "sys", "types", "typing",
        "warnings",
    }
)  # fmt: skip
#: Ours: the foundation's vocabulary and other operators.
ALLOWED_OURS = ("airis.batches", "airis.events", "airis.signals", "airis.operators")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _allowed(name: str) -> bool:
    top = name.split(".")[0]
    if top == "airis":
        return any(name == ours or name.startswith(ours + ".") for ours in ALLOWED_OURS)
    return top in ALLOWED_THIRD_PARTY or top in ALLOWED_STDLIB


def test_operators_import_only_computation():
    modules = sorted(OPERATORS.rglob("*.py"))
    assert len(modules) > 20, "operator modules not found"
    offenders = {
        str(p.relative_to(OPERATORS)): bad
        for p in modules
        if (bad := sorted(n for n in _imports(p) if not _allowed(n)))
    }
    assert offenders == {}


def test_operators_open_no_files():
    opened = [
        str(p.relative_to(OPERATORS))
        for p in sorted(OPERATORS.rglob("*.py"))
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open"
    ]
    assert opened == []


def test_the_allowed_standard_modules_are_standard():
    assert ALLOWED_STDLIB.issubset(sys.stdlib_module_names | {"__future__"})


def test_an_io_import_is_caught(tmp_path):
    module = tmp_path / "leaky.py"
    module.write_text("import socket\nfrom airis.settings import Settings\nimport bytewax\n")
    assert [n for n in _imports(module) if not _allowed(n)] == [
        "socket",
        "airis.settings",
        "bytewax",
    ]
