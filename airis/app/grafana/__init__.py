"""Grafana over ClickHouse: the dashboards AIRIS-MON provisions, as code.

`DASHBOARDS` builds each dashboard (`airis.app.grafana.panels`); `write` renders them as the
JSON files under ``deploy/grafana/dashboards`` (``airis dashboards write``), and
`airis.app.grafana.check` runs every panel's query against a store the way Grafana's
ClickHouse plugin would (``airis dashboards check``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from airis.app.grafana.incident_boards import alerts_and_incidents, incident_detail, pipeline_health
from airis.app.grafana.panels import Dashboard
from airis.app.grafana.service_boards import capacity, logs_and_traces, service_overview, topology

__all__ = ["DASHBOARDS", "DEFAULT_DIR", "render", "write"]

#: Each dashboard's file name (without ``.json``) and how it is built.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "service-overview": service_overview,
    "alerts-incidents": alerts_and_incidents,
    "incident": incident_detail,
    "topology": topology,
    "capacity": capacity,
    "logs-traces": logs_and_traces,
    "pipeline": pipeline_health,
}

#: Where the provisioned dashboards live in the repository.
DEFAULT_DIR = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "dashboards"


def render(name: str) -> str:
    """Dashboard ``name`` as the text of its JSON file."""
    return json.dumps(DASHBOARDS[name]().model(), indent=2, ensure_ascii=False) + "\n"


def write(directory: Path) -> list[Path]:
    """Write every dashboard's JSON file into ``directory``; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in DASHBOARDS:
        path = directory / f"{name}.json"
        path.write_text(render(name), encoding="utf-8")
        paths.append(path)
    return paths
