"""`run_demo`'s store: its tables are made on a thread of their own while the model trains,
and what goes wrong there stops the demo with the store's own error."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from airis.app.demo import run_demo
from airis.sinks.clickhouse_store import StoreOpenError


def test_a_store_the_demo_cannot_open_stops_it_with_the_stores_error(
    chdb_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This process holds the embedded engine on another directory (`chdb_dir`), so the
    # demo's store cannot open; without a model to train the demo reaches its flow at once.
    monkeypatch.setenv("AIRIS_ONNX_MODEL", "")
    console = Console(file=io.StringIO())
    end = datetime(2026, 3, 2, 9, tzinfo=UTC)
    with pytest.raises(StoreOpenError, match="one directory per process"):
        run_demo(4.0, 7, None, tmp_path / "demo", console, end=end)
    assert "dataflow" not in console.file.getvalue()  # stopped before the flow
