"""IncidentMemorySink: incidents out of a dataflow into a real Qdrant in local mode."""

from __future__ import annotations

import subprocess
import sys
import threading
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
    must neither stop the flow nor lose incidents. (One failure: how many batches one write
    takes in depends on the writing thread's timing; `close` writes what is left.)"""
    settings = Settings(data_dir=tmp_path)
    attempts: list[int] = []

    def flaky() -> IncidentMemory:
        attempts.append(1)
        if len(attempts) <= 1:
            raise ConnectionError("qdrant unavailable")
        return IncidentMemory(settings.memory)

    failures = telemetry.SINK_FAILURES.labels(sink="incident_memory")
    before = failures._value.get()
    run([incident(i) for i in range(6)], IncidentMemorySink(memory_factory=flaky))
    assert failures._value.get() - before == 1
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


def test_a_slow_memory_does_not_hold_up_the_flow(tmp_path: Path) -> None:
    """The writes run on the partition's own thread: the flow's call returns while a write
    is still under way (a real Qdrant in local mode, held back here as a slow server would
    be: no slow server can run in the tests), the batches given meanwhile wait for one write
    (not one each, which a server that is down would make pile up), and `close` waits."""
    settings = Settings(data_dir=tmp_path)
    release, writing = threading.Event(), threading.Event()
    writes: list[int] = []

    class HeldBack(IncidentMemory):
        def upsert_many(self, items):  # type: ignore[no-untyped-def]
            writes.append(len(items))
            writing.set()
            assert release.wait(30), "the test never released the write"
            super().upsert_many(items)

    sink = IncidentMemorySink(memory_factory=lambda: HeldBack(settings.memory))
    part = sink.build_part("remember", "incident_memory", None)
    returned = threading.Event()
    flow = threading.Thread(target=lambda: (part.write_batch([incident(0)]), returned.set()))
    flow.start()
    assert writing.wait(30)
    assert returned.wait(5), "write_batch waited for the memory's write"
    for i in range(1, 6):
        part.write_batch([incident(i)])
    release.set()
    part.close()
    flow.join()
    assert writes == [1, 5]
    with IncidentMemory(settings.memory) as memory:
        assert memory.count() == 6


def test_batches_given_while_a_write_fails_slowly_wait_for_one_retry(tmp_path: Path) -> None:
    """A server that is down makes each write wait out the client's timeout: the batches
    given meanwhile must not each queue a write of their own (held back here by an event; no
    server that times out can run in the tests)."""
    release, writing = threading.Event(), threading.Event()
    attempts: list[int] = []

    def down() -> IncidentMemory:
        attempts.append(1)
        writing.set()
        assert release.wait(30), "the test never released the write"
        raise ConnectionError("qdrant unavailable")

    part = IncidentMemorySink(memory_factory=down).build_part("remember", "incident_memory", None)
    part.write_batch([incident(0)])
    assert writing.wait(30)
    for i in range(1, 6):
        part.write_batch([incident(i)])
    release.set()
    part.close()
    assert len(attempts) <= 3  # the one under way, one for the batches meanwhile, close's


def test_a_memory_that_fails_to_close_says_so(tmp_path: Path, caplog) -> None:
    """Closing runs on the writing thread too: what it raises is logged, not lost there."""
    settings = Settings(data_dir=tmp_path)

    class FailsToClose(IncidentMemory):
        def close(self) -> None:
            super().close()
            raise OSError("disk gone")

    sink = IncidentMemorySink(memory_factory=lambda: FailsToClose(settings.memory))
    part = sink.build_part("remember", "incident_memory", None)
    part.write_batch([incident(0)])
    with caplog.at_level("ERROR", logger="airis.sinks.incident_memory_sink"):
        part.close()
    assert "its thread failed" in caplog.text and "disk gone" in caplog.text
