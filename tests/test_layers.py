"""The packages are layers: a module imports only from its own layer or the ones below it.

From the bottom: the foundation (the event and signal vocabulary, settings, the engine's own
metrics), `operators/` (pure stream logic), `sources/` (ingestion, the simulator), `models/`
(training, the registry, ONNX scoring, embedders), `sinks/` (delivery), `flows/` (the
dataflows, wiring the rest), and the application on top (`airis.cli`, `airis.evals`,
`airis.app`; the benchmarks). The README's "How it works" describes the same order.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Package directory → import name, as pyproject.toml maps them.
PACKAGES = {
    "airis": "airis",
    "operators": "airis.operators",
    "sources": "airis.sources",
    "models": "airis.models",
    "sinks": "airis.sinks",
    "flows": "airis.flows",
}
FOUNDATION = (
    "airis.batches",
    "airis.events",
    "airis.otel_codes",
    "airis.runtime",
    "airis.settings",
    "airis.signals",
    "airis.telemetry",
)
LAYERS = ("foundation", "operators", "sources", "models", "sinks", "flows", "application")


def layer(module: str) -> str:
    """The layer of one of our modules (``airis...``)."""
    if module == "airis" or module in FOUNDATION:
        return "foundation"
    for name in LAYERS[1:-1]:
        if module == f"airis.{name}" or module.startswith(f"airis.{name}."):
            return name
    return "application"


def _modules() -> list[tuple[str, Path]]:
    found = []
    for directory, package in PACKAGES.items():
        for path in sorted((ROOT / directory).rglob("*.py")):
            parts = path.relative_to(ROOT / directory).with_suffix("").parts
            found.append((".".join((package, *parts)).removesuffix(".__init__"), path))
    return found


def _our_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("airis")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airis"):
            found.append((node.lineno, node.module))
    return found


def _upward(module: str, path: Path) -> list[str]:
    rank = LAYERS.index(layer(module))
    return [
        f"{module}:{line} imports {name} ({layer(name)})"
        for line, name in _our_imports(path)
        if LAYERS.index(layer(name)) > rank
    ]


def test_the_root_of_airis_is_the_foundation_and_its_packages_the_application():
    root = sorted(p.stem for p in (ROOT / "airis").glob("*.py") if p.stem != "__init__")
    assert root == sorted(name.removeprefix("airis.") for name in FOUNDATION)
    packages = sorted(p.parent.name for p in (ROOT / "airis").glob("*/__init__.py"))
    assert packages == ["app", "cli", "evals"]


def test_no_module_imports_from_a_higher_layer():
    modules = _modules()
    assert len(modules) > 100, "package directories not found"
    assert [v for module, path in modules for v in _upward(module, path)] == []


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("airis.events", "foundation"),
        ("airis.operators.detectors.detector_bank", "operators"),
        ("airis.sources.simulator", "sources"),
        ("airis.sinks.chdb_store", "sinks"),
        ("airis.cli", "application"),
        ("airis.evals.rca", "application"),
    ],
)
def test_layers_of_modules(module, expected):
    assert layer(module) == expected


def test_an_upward_import_is_caught(tmp_path):
    leaky = tmp_path / "leaky.py"
    leaky.write_text("from airis.flows.detection import SOURCE\nimport airis.events\n")
    assert _upward("airis.operators.leaky", leaky) == [
        "airis.operators.leaky:1 imports airis.flows.detection (flows)"
    ]


#: A module longer than this does more than one thing: split it (issue 14).
MAX_MODULE_LINES = 500


def test_no_module_is_over_500_lines():
    paths = [path for _, path in _modules()] + sorted((ROOT / "benchmarks").glob("*.py"))
    paths += sorted((ROOT / "tests").rglob("*.py"))
    long = {
        str(path.relative_to(ROOT)): lines
        for path in paths
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_the_tests_mirror_the_packages():
    """``tests/X/Y`` tests the package directory ``X/Y`` (the application's ``airis/X/Y``;
    the foundation's modules at the top of ``tests/``), so a module's tests are where its
    path says."""
    packages = {p.relative_to(ROOT) for d in PACKAGES for p in [ROOT / d, *(ROOT / d).rglob("*")]}
    packages = {p for p in packages if (ROOT / p).is_dir() and p.name != "__pycache__"}
    packages |= {p.relative_to("airis") for p in packages if p.parts[0] == "airis"}
    packages.add(Path("deploy"))
    test_dirs = {p.parent.relative_to(ROOT / "tests") for p in (ROOT / "tests").rglob("test_*.py")}
    assert {d for d in test_dirs if d != Path(".") and d not in packages} == set()


#: A dataflow reads top to bottom as the pipeline (issue 13): its file stays short.
MAX_FLOW_LINES = 120


def test_each_dataflow_file_is_under_120_lines():
    flows = [p for p in sorted((ROOT / "flows").glob("*.py")) if "def build_flow(" in p.read_text()]
    assert [p.name for p in flows] == ["kafka_metrics.py", "metrics_anomaly.py"]
    long = {p.name: n for p in flows if (n := len(p.read_text().splitlines())) >= MAX_FLOW_LINES}
    assert long == {}
