"""Reports written from a configured store and incident memory (what `airis report` and
`airis demo` call)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from airis.app.html_report import render_page
from airis.app.html_report.data import Similar, demo_view, incident_view, similar_from
from airis.settings import Settings
from airis.sinks.clickhouse_store import open_store

__all__ = ["write_demo_report", "write_incident_report"]

logger = logging.getLogger(__name__)


def write_incident_report(settings: Settings, incident_id: str, out: Path) -> Path:
    """Write incident ``incident_id``'s page to ``out``."""

    def render(store: Any, similar: Similar | None) -> str:
        view = incident_view(store, incident_id, similar)
        return render_page("incident", view, f"Incident {incident_id}")

    return _write(settings, out, render)


def write_demo_report(settings: Settings, out: Path) -> Path:
    """Write the page of the whole store (a demo's run) to ``out``."""

    def render(store: Any, similar: Similar | None) -> str:
        return render_page("demo", demo_view(store, similar), "AIRIS-MON demo")

    return _write(settings, out, render)


def _write(settings: Settings, out: Path, render: Any) -> Path:
    store = open_store(settings.store)
    memory = _memory(settings)
    try:
        similar: Similar | None = similar_from(memory) if memory is not None else None
        page = render(store, similar)
    finally:
        store.close()
        if memory is not None:
            memory.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def _memory(settings: Settings) -> Any:
    """The incident memory, or None (the page then says similar incidents are unavailable)."""
    from airis.sinks.incident_memory import IncidentMemory

    try:
        return IncidentMemory(settings.memory)
    except Exception as exc:  # e.g. another process holds the local Qdrant directory
        logger.warning("report: no incident memory (%s): similar incidents left out", exc)
        return None
