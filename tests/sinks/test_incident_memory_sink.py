"""IncidentMemorySink: incidents out of a dataflow into a real Qdrant in local mode."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main

from airis import telemetry
from airis.events import Incident
from airis.settings import Settings
from airis.sinks.incident_memory import IncidentMemory
from airis.sinks.incident_memory_sink import IncidentMemorySink

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def incident(i: int) -> Incident:
    start = T0 + timedelta(hours=i)
    return Incident(id=f"inc-{i}", status="resolved", started_at=start, updated_at=start,
                    services=["api", "db"], signals=["db/latency_p99"], anomaly_count=3,
                    root_cause="db", log_templates=[f"disk {i} full"])  # fmt: skip


def run(incidents: list[Incident], sink: IncidentMemorySink) -> None:
    flow = Dataflow("remember")
    items = op.input("in", flow, TestingSource(incidents, batch_size=2))
    op.output("out", op.key_on("key", items, lambda _i: "memory"), sink)
    run_main(flow)


def test_every_incident_is_remembered_once_even_when_replayed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    run([incident(i) for i in range(5)], IncidentMemorySink(settings.memory))
    run([incident(i) for i in range(3, 7)], IncidentMemorySink(settings.memory))  # 3, 4 again
    with IncidentMemory(settings.memory) as memory:
        assert memory.count() == 7
        [best, *_] = memory.similar("inc-1", k=3)
        assert best.incident_id in {f"inc-{i}" for i in range(7)}


def test_a_memory_that_fails_keeps_the_incidents_and_writes_them_later(tmp_path: Path) -> None:
    """A Qdrant that is down at first (simulated by a factory that raises, as the client would)
    must neither stop the flow nor lose incidents."""
    settings = Settings(data_dir=tmp_path)
    attempts: list[int] = []

    def flaky() -> IncidentMemory:
        attempts.append(1)
        if len(attempts) <= 2:
            raise ConnectionError("qdrant unavailable")
        return IncidentMemory(settings.memory)

    failures = telemetry.SINK_FAILURES.labels(sink="incident_memory")
    before = failures._value.get()
    run([incident(i) for i in range(6)], IncidentMemorySink(memory_factory=flaky))
    assert failures._value.get() - before == 2
    with IncidentMemory(settings.memory) as memory:
        assert memory.count() == 6


def test_the_qdrant_client_is_imported_when_the_flow_is_built_not_at_its_first_incident() -> None:
    # Bytewax builds a sink's partition at its first item: an import there stalls the flow.
    script = (
        "import sys\n"
        "from airis.sinks.incident_memory_sink import IncidentMemorySink\n"
        "assert 'qdrant_client' not in sys.modules\n"
        "IncidentMemorySink()\n"
        "assert 'qdrant_client' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
