"""Every delivery client of `airis.sinks` keeps the exporter contract (`airis.sinks.exporter`):
export returns a result and never raises, force_flush says whether anything is left, export
after shutdown fails fast, and a second shutdown is harmless. Each backend runs for real (the
embedded ClickHouse; the Kafka broker, as an integration test; Qdrant in local mode) beside
its in-memory twin."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from bytewax.connectors.kafka import KafkaSinkMessage

from airis.events import Incident, MetricPoint
from airis.settings import Settings
from airis.sinks.clickhouse_writer import ClickHouseWriter, InMemoryWriter
from airis.sinks.exporter import Exporter, ExportResult
from airis.sinks.incident_memory import IncidentMemory
from airis.sinks.incident_memory_sink import IncidentMemoryExporter, InMemoryIncidentExporter
from airis.sinks.kafka_output import (
    InMemoryTopicsExporter,
    KafkaTopicsExporter,
    KafkaTopicsSink,
    consume_topic,
)

# A recent time: the metrics table drops rows older than its 30-day TTL.
POINT = MetricPoint(ts=datetime.now(UTC), service="api", signal="cpu", value=1.0)


def _check_contract(exporter: Exporter, batch: list[Any], caplog) -> None:
    assert isinstance(exporter, Exporter)
    assert exporter.export(batch) is ExportResult.SUCCESS
    assert exporter.force_flush() is True
    exporter.shutdown()
    assert exporter.export(batch) is ExportResult.FAILURE  # fails fast, does not raise
    with caplog.at_level(logging.WARNING):
        exporter.shutdown()  # harmless, says so
    assert "called again" in caplog.text


@pytest.mark.parametrize("twin", [False, True], ids=["chdb", "in_memory"])
def test_the_clickhouse_writers(twin: bool, migrated_store, caplog) -> None:
    writer = InMemoryWriter() if twin else ClickHouseWriter(migrated_store, batch_rows=1)
    _check_contract(writer, [POINT], caplog)
    if not twin:
        assert migrated_store.query("SELECT count() AS n FROM metrics")[0]["n"] == 1


def test_the_in_memory_topics_exporter(caplog) -> None:
    exporter = InMemoryTopicsExporter()
    _check_contract(exporter, [KafkaSinkMessage(b"k", b"v", "alerts")], caplog)
    assert [m.value for m in exporter.messages["alerts"]] == [b"v"]


@pytest.mark.parametrize("acknowledged", [True, False], ids=["each_batch", "queued"])
def test_the_kafka_topics_exporter(
    acknowledged: bool, kafka_bootstrap: str, kafka_topic: Callable[..., str], caplog
) -> None:
    topic = kafka_topic("exporter")
    exporter = KafkaTopicsExporter(kafka_bootstrap, acknowledged=acknowledged)
    _check_contract(exporter, [KafkaSinkMessage(b"k", b"v", topic)], caplog)
    got = [m.value() for m in consume_topic(kafka_bootstrap, topic, idle_timeout=3.0)]
    assert got == [b"v"]


def test_an_unacknowledged_batch_is_a_failure_not_an_exception(kafka_bootstrap: str) -> None:
    # A topic name the broker refuses (invalid characters): the delivery fails for real.
    exporter = KafkaTopicsExporter(kafka_bootstrap, {"message.timeout.ms": "3000"})
    result = exporter.export([KafkaSinkMessage(b"k", b"v", "no spaces allowed")])
    assert result is ExportResult.FAILURE
    assert "did not acknowledge" in exporter.last_error
    exporter.shutdown()


def test_a_queued_message_not_delivered_fails_the_flush_and_the_sink_s_close(
    kafka_bootstrap: str,
) -> None:
    """Not acknowledged per batch, a failed delivery is still said: by `force_flush` (which
    a later export's reports reach too), and by the sink partition's close, which raises."""
    bad = KafkaSinkMessage(b"k", b"v", "no spaces allowed")
    config = {"message.timeout.ms": "3000"}
    exporter = KafkaTopicsExporter(kafka_bootstrap, config, acknowledged=False)
    assert exporter.export([bad]) is ExportResult.SUCCESS  # queued, not waited for
    assert exporter.force_flush() is False
    assert "did not acknowledge" in exporter.last_error
    exporter.shutdown()
    partition = KafkaTopicsSink(kafka_bootstrap, config, acknowledged=False).build("out", 0, 1)
    partition.write_batch([bad])
    with pytest.raises(RuntimeError, match="did not acknowledge"):
        partition.close()


def test_a_broker_that_does_not_answer_leaves_the_exporter_made_and_the_export_failing(
    caplog,
) -> None:
    # Port 9 (discard) is not a broker: the metadata asked for when the exporter is made
    # does not come, which it says, and its first export is the one that fails.
    exporter = KafkaTopicsExporter("127.0.0.1:9", {"message.timeout.ms": "1000"})
    assert "Kafka did not answer" in caplog.text
    result = exporter.export([KafkaSinkMessage(b"k", b"v", "any")])
    assert result is ExportResult.FAILURE


INCIDENT = Incident(
    id="inc-1", status="resolved", started_at=POINT.ts, updated_at=POINT.ts,
    services=["api"], signals=["api/cpu"], anomaly_count=1, root_cause="api",
)  # fmt: skip


@pytest.mark.parametrize("twin", [False, True], ids=["qdrant_local", "in_memory"])
def test_the_incident_memory_exporters(twin: bool, tmp_path, caplog) -> None:
    settings = Settings(data_dir=tmp_path, qdrant_url=None, ollama_url=None)
    exporter = InMemoryIncidentExporter() if twin else IncidentMemoryExporter(
        lambda: IncidentMemory(settings.memory)
    )  # fmt: skip
    _check_contract(exporter, [INCIDENT], caplog)
    if twin:
        assert list(exporter.incidents) == ["inc-1"]
    else:
        with IncidentMemory(settings.memory) as memory:  # the exporter closed it: it reopens
            assert memory.count() == 1


def test_a_memory_that_cannot_open_is_a_failure_not_an_exception() -> None:
    def refuse() -> IncidentMemory:
        raise RuntimeError("already open elsewhere")

    exporter = IncidentMemoryExporter(refuse)
    assert exporter.export([INCIDENT]) is ExportResult.FAILURE
    assert "already open elsewhere" in exporter.last_error
