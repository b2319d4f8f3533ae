"""ClickHouseWriter, its in-memory twin and the Bytewax sink, against the real embedded chdb.

One chdb directory for the module (chdb serves one directory per process), one migrated
database per test.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main
from prometheus_client import REGISTRY
from pydantic import BaseModel

import airis.sinks.clickhouse_writer as writer_module
from airis.batches import MetricBatch
from airis.events import (
    Alert,
    Anomaly,
    DeadLetter,
    DependencyEdge,
    Incident,
    LogRecord,
    MetricPoint,
    Span,
    event_id,
    fingerprint,
)
from airis.settings import StoreConfig
from airis.sinks.chdb_store import ChdbStore
from airis.sinks.clickhouse_encoding import (
    TABLES,
    encode_alert,
    encode_batch,
    encode_dead_letter,
    encode_metric,
    encode_metric_batch,
)
from airis.sinks.clickhouse_sink import ClickHouseSink
from airis.sinks.clickhouse_store import ClickHouseStore
from airis.sinks.clickhouse_writer import ClickHouseWriter, ExportResult, InMemoryWriter

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def store(migrated_store: ChdbStore) -> ChdbStore:
    return migrated_store


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def metric(i: int, service: str = "api") -> MetricPoint:
    return MetricPoint(
        ts=NOW + timedelta(seconds=i), service=service, signal="latency_ms", value=float(i),
        labels={"host": f"h{i % 3}"},
    )  # fmt: skip


def anomaly(i: int) -> Anomaly:
    start = NOW + timedelta(seconds=10 * i)
    return Anomaly(
        id=event_id("api", "latency_ms", start), service="api", signal="latency_ms",
        kind="spike", window_start=start, window_end=start + timedelta(seconds=10), score=0.95,
        observed=120.0, expected=50.0, lower=30.0, upper=70.0, state="recent", detector="robust",
    )  # fmt: skip


def alert(i: int, status: str = "firing") -> Alert:
    start = NOW + timedelta(minutes=i)
    return Alert(
        id=event_id("api", "latency_ms", "spike", start, status),
        fingerprint=fingerprint("api", "latency_ms", "spike"), status=status, service="api",
        signal="latency_ms", kind="spike", severity="warning", starts_at=start,
        ends_at=start + timedelta(minutes=5) if status == "resolved" else None, score=0.97,
        summary="api latency_ms spike", labels={"team": "core"},
    )  # fmt: skip


def dead_letter(i: int) -> DeadLetter:
    return DeadLetter(
        received_at=NOW + timedelta(seconds=i), source="kafka:metrics", reason="ts: missing",
        payload='{"bad": true}', truncated=bool(i % 2), origin=f"airis.metrics/0@{i}",
    )  # fmt: skip


class Unsupported(BaseModel):
    """An event type no table takes."""

    note: str


def unsupported() -> Unsupported:
    return Unsupported(note="no table for me")


def count(store: ClickHouseStore, table: str, final: bool = False) -> int:
    return store.query(f"SELECT count() AS c FROM {table}{' FINAL' if final else ''}")[0]["c"]


def writer(store: ClickHouseStore, **kwargs: Any) -> ClickHouseWriter:
    kwargs.setdefault("now", FakeClock())
    return ClickHouseWriter(store, **kwargs)


# --- encoding ----------------------------------------------------------------------------------


def test_encoders_follow_the_registered_columns() -> None:
    m, a, al, d = metric(1), anomaly(1), alert(1, "resolved"), dead_letter(1)
    assert encode_metric(m) == (m.ts, "api", "latency_ms", 1.0, {"host": "h1"})
    assert dict(zip(TABLES[Alert].columns, encode_alert(al), strict=True))["ends_at"] == al.ends_at
    assert encode_dead_letter(d)[-2:] == (1, "airis.metrics/0@1")
    for event in (m, a, al, d):
        spec = TABLES[type(event)]
        row = spec.encode(event)
        assert len(row) == len(spec.columns)
        # every column is a field of the model, holding that field's value (bool → 0/1)
        for column, value in zip(spec.columns, row, strict=True):
            expected = getattr(event, column)
            assert value == (int(expected) if isinstance(expected, bool) else expected)


def test_a_metric_batch_gives_the_rows_of_its_points() -> None:
    points = [metric(1), metric(2).model_copy(update={"labels": {}}), metric(3)]
    batch = MetricBatch.from_points("api", points)
    rows = list(zip(*encode_metric_batch(batch), strict=True))
    assert rows == [encode_metric(p) for p in points]
    assert TABLES[MetricBatch].table == TABLES[MetricPoint].table
    assert TABLES[MetricBatch].columns == TABLES[MetricPoint].columns
    rows, rejected = encode_batch([points[0], batch, points[2]])
    assert rows == {"metrics": [encode_metric(p) for p in (points[0], *points, points[2])]}
    assert rejected == []


@pytest.mark.parametrize("model", [m for m in TABLES if issubclass(m, BaseModel)])
def test_every_model_field_is_stored(model: type[BaseModel]) -> None:
    if model in (LogRecord, Span):  # the Collector exporter's otel_* columns, see below
        return
    elsewhere = {"candidates"} if model is Incident else set()  # rows of rca_candidates
    derived = {"error_rate"} if model is DependencyEdge else set()  # a property, for queries
    assert set(TABLES[model].columns) == set(model.model_fields) - elsewhere | derived


def test_log_records_map_onto_the_otel_logs_columns() -> None:
    record = LogRecord(ts=NOW, service="api", severity="WARN", body="slow", trace_id="c" * 32,
                       attributes={"k": "v"})  # fmt: skip
    row = dict(zip(TABLES[LogRecord].columns, TABLES[LogRecord].encode(record), strict=True))
    assert row["Timestamp"] == NOW and row["ServiceName"] == "api" and row["Body"] == "slow"
    assert (row["SeverityText"], row["SeverityNumber"]) == ("WARN", 13)
    assert (row["TraceId"], row["SpanId"]) == ("c" * 32, "")
    assert row["LogAttributes"] == {"k": "v"}


def test_spans_map_onto_the_otel_traces_columns() -> None:
    span = Span(trace_id="a" * 32, span_id="b" * 16, parent_span_id="c" * 16, service="api",
                name="GET /", start=NOW, duration_ms=1.5, status="error", peer_service="db",
                attributes={"span.kind": "client"})  # fmt: skip
    row = dict(zip(TABLES[Span].columns, TABLES[Span].encode(span), strict=True))
    assert (row["Timestamp"], row["ServiceName"], row["SpanName"]) == (NOW, "api", "GET /")
    assert (row["TraceId"], row["SpanId"], row["ParentSpanId"]) == ("a" * 32, "b" * 16, "c" * 16)
    assert (row["SpanKind"], row["StatusCode"]) == ("SPAN_KIND_CLIENT", "STATUS_CODE_ERROR")
    assert row["Duration"] == 1_500_000  # nanoseconds
    assert row["SpanAttributes"] == {"span.kind": "client", "peer.service": "db"}
    assert row["ResourceAttributes"] == {"service.name": "api"}


def test_registry_matches_the_migrated_tables(store: ChdbStore) -> None:
    for spec in TABLES.values():
        rows = store.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase()"
            f" AND table = '{spec.table}' ORDER BY position"
        )
        # otel_traces' nested Events and Links stay at their defaults (empty)
        columns = [r["name"] for r in rows if not r["name"].startswith(("Events.", "Links."))]
        assert tuple(columns) == spec.columns


def test_encode_batch_groups_a_mixed_batch_and_rejects_unknown_types() -> None:
    log = unsupported()
    rows, rejected = encode_batch([metric(1), alert(1), metric(2), log, dead_letter(1)])
    assert {t: len(r) for t, r in rows.items()} == {"metrics": 2, "alerts": 1, "dead_letters": 1}
    assert rejected == [log]


# --- idempotence -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "make"),
    [("metrics", metric), ("anomalies", anomaly), ("alerts", alert)],
)
def test_writing_a_batch_twice_leaves_one_copy(store: ChdbStore, table: str, make: Any) -> None:
    batch = [make(i) for i in range(50)]
    w = writer(store, batch_rows=10_000)
    for _ in range(2):
        assert w.export(batch) is ExportResult.SUCCESS
        assert w.force_flush()
    assert count(store, table) == 100
    assert count(store, table, final=True) == 50
    store.execute(f"OPTIMIZE TABLE {table} FINAL")
    assert count(store, table) == 50


def test_firing_and_resolved_are_two_rows(store: ChdbStore) -> None:
    w = writer(store)
    w.export([alert(1, "firing"), alert(1, "resolved"), alert(1, "firing")])
    w.force_flush()
    assert count(store, "alerts", final=True) == 2


def test_dead_letters_keep_every_copy(store: ChdbStore) -> None:
    w = writer(store)
    w.export([dead_letter(1)] * 2)
    w.force_flush()
    assert count(store, "dead_letters") == 2  # plain MergeTree: no FINAL, no dedup


def test_values_round_trip(store: ChdbStore) -> None:
    w = writer(store)
    w.export([alert(3, "resolved"), metric(7)])
    w.force_flush()
    stored = store.query("SELECT * FROM alerts")[0]
    assert stored["ends_at"] == (NOW + timedelta(minutes=8)).strftime("%Y-%m-%d %H:%M:%S.000")
    assert stored["updated_at"] is None
    assert stored["labels"] == {"team": "core"}
    assert store.query("SELECT labels, value FROM metrics") == [
        {"labels": {"host": "h1"}, "value": 7}
    ]


# --- batching ----------------------------------------------------------------------------------


def test_batches_by_size(store: ChdbStore) -> None:
    w = writer(store, batch_rows=3, batch_seconds=60)
    assert w.export([metric(1), metric(2)]) is ExportResult.SUCCESS
    assert count(store, "metrics") == 0
    assert w.buffered_rows == {"metrics": 2}
    w.export([metric(3), anomaly(1)])
    assert count(store, "metrics") == 3
    assert count(store, "anomalies") == 0  # anomalies have their own buffer
    assert w.buffered_rows == {"anomalies": 1}
    assert w.rows_written["metrics"] == 3


def test_batches_by_age(store: ChdbStore) -> None:
    clock = FakeClock()
    w = writer(store, batch_rows=1000, batch_seconds=2.0, now=clock)
    w.export([metric(1)])
    clock.t += 1.0
    w.export([metric(2)])
    assert count(store, "metrics") == 0
    clock.t += 1.0  # the oldest row has now waited 2 s
    assert w.export([]) is ExportResult.SUCCESS
    assert count(store, "metrics") == 2
    clock.t += 1.5
    w.export([metric(3)])  # a fresh buffer starts its own clock
    clock.t += 1.5
    w.export([])
    assert count(store, "metrics") == 2
    clock.t += 0.5
    w.export([])
    assert count(store, "metrics") == 3


def test_background_thread_flushes_a_quiet_stream(store: ChdbStore) -> None:
    w = ClickHouseWriter(store, batch_rows=1000, batch_seconds=0.05, flush_interval=0.02)
    try:
        w.export([metric(1)])
        deadline = time.monotonic() + 10
        while count(store, "metrics") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert count(store, "metrics") == 1
    finally:
        w.shutdown()


def test_shutdown_flushes_once_and_then_rejects(
    store: ChdbStore, caplog: pytest.LogCaptureFixture
) -> None:
    w = writer(store, batch_rows=1000)
    w.export([metric(1), alert(1)])
    assert count(store, "metrics") == 0
    w.shutdown()
    assert (count(store, "metrics"), count(store, "alerts")) == (1, 1)
    with caplog.at_level(logging.WARNING):
        w.shutdown()
        assert w.export([metric(2)]) is ExportResult.FAILURE
    assert "called again" in caplog.text and "after shutdown" in caplog.text
    assert count(store, "metrics") == 1
    assert store.query("SELECT 1 AS x") == [{"x": 1}]  # the store is not the writer's to close


def test_shutdown_closes_a_store_it_owns(store: ChdbStore, chdb_dir: Path, database: str) -> None:
    own = ChdbStore(chdb_dir, database=database)
    w = writer(own, close_store=True)
    w.export([metric(1)])
    w.shutdown()
    assert count(store, "metrics") == 1
    with pytest.raises(RuntimeError, match="closed"):
        own.query("SELECT 1")


# --- failures ----------------------------------------------------------------------------------


def test_a_failed_insert_keeps_the_rows_for_a_retry(
    store: ChdbStore, caplog: pytest.LogCaptureFixture
) -> None:
    w = writer(store, batch_rows=2)
    store.execute("RENAME TABLE metrics TO metrics_away")
    with caplog.at_level(logging.ERROR):
        assert w.export([metric(1), metric(2)]) is ExportResult.FAILURE
    assert "2 rows into metrics failed" in caplog.text
    assert w.buffered_rows == {"metrics": 2}
    assert w.export([metric(3)]) is ExportResult.FAILURE  # still failing: 3 rows kept
    store.execute("RENAME TABLE metrics_away TO metrics")
    assert count(store, "metrics") == 0
    assert w.force_flush()
    assert count(store, "metrics") == 3
    assert w.buffered_rows == {}
    assert w.rows_written["metrics"] == 3


class FailingStore(ClickHouseStore):
    """A store whose inserts fail until told otherwise; remembers what it got."""

    database = "fake"

    def __init__(self) -> None:
        self.failing = True
        self.inserted: list[tuple[str, int]] = []
        self.closed = 0

    def execute(self, sql: str) -> None:
        pass

    def query(self, sql: str) -> list[dict[str, Any]]:
        return []

    def insert_columns(
        self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]
    ) -> None:
        if self.failing:
            raise ConnectionError("server went away")
        self.inserted.append((table, len(data[0])))

    def close(self) -> None:
        self.closed += 1


def test_buffer_is_bounded_while_inserts_fail(caplog: pytest.LogCaptureFixture) -> None:
    fake = FailingStore()
    w = writer(fake, batch_rows=2, max_buffered_rows=5)
    for i in range(4):
        assert w.export([metric(2 * i), metric(2 * i + 1)]) is ExportResult.FAILURE
    assert w.buffered_rows == {"metrics": 5}
    assert w.rows_dropped["metrics"] == 3
    fake.failing = False
    assert w.force_flush()
    assert fake.inserted == [("metrics", 5)]


def test_rows_that_cannot_be_written_at_shutdown_are_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FailingStore()
    w = writer(fake, batch_rows=100, close_store=True)
    w.export([metric(1), metric(2)])
    with caplog.at_level(logging.ERROR):
        w.shutdown()
    assert "2 rows for table metrics could not be written" in caplog.text
    assert w.rows_dropped["metrics"] == 2 and w.buffered_rows == {}
    assert fake.closed == 1


def test_unsupported_events_fail_the_export_but_not_the_others(store: ChdbStore) -> None:
    w = writer(store, batch_rows=1)
    log = unsupported()
    assert w.export([log, metric(1)]) is ExportResult.FAILURE
    assert count(store, "metrics") == 1


def test_invalid_arguments_name_the_parameter() -> None:
    fake = FailingStore()
    with pytest.raises(ValueError, match="batch_rows"):
        ClickHouseWriter(fake, batch_rows=0)
    with pytest.raises(ValueError, match="batch_seconds"):
        ClickHouseWriter(fake, batch_seconds=0)
    with pytest.raises(ValueError, match="max_buffered_rows"):
        ClickHouseWriter(fake, batch_rows=10, max_buffered_rows=5)


# --- metrics -----------------------------------------------------------------------------------


def _sample(name: str, table: str) -> float:
    return REGISTRY.get_sample_value(name, {"table": table}) or 0.0


def test_rows_are_counted_in_prometheus(store: ChdbStore) -> None:
    before = _sample("airis_sink_rows_total", "anomalies")
    w = writer(store)
    w.export([anomaly(i) for i in range(4)])
    w.force_flush()
    assert _sample("airis_sink_rows_total", "anomalies") == before + 4


def test_counters_survive_a_second_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    first = writer_module._rows_total()
    monkeypatch.setattr(writer_module, "_METRICS", {})  # as if the module were imported again
    assert writer_module._rows_total() is first


# --- in-memory twin ----------------------------------------------------------------------------


def test_in_memory_writer_has_the_same_contract() -> None:
    w = InMemoryWriter()
    batch = [metric(1), alert(1), metric(2)]
    assert w.export(batch) is ExportResult.SUCCESS
    assert w.events == batch
    assert {t: len(r) for t, r in w.rows.items() if r} == {"metrics": 2, "alerts": 1}
    assert w.rows_written["metrics"] == 2
    assert w.export([unsupported()]) is ExportResult.FAILURE
    assert w.force_flush()
    w.shutdown()
    w.shutdown()
    assert w.export([metric(3)]) is ExportResult.FAILURE
    assert len(w.events) == 3


# --- Bytewax ---------------------------------------------------------------------------------


def test_bytewax_sink_writes_a_mixed_stream(
    store: ChdbStore, chdb_dir: Path, database: str
) -> None:
    events: list[BaseModel] = [metric(i) for i in range(30)] + [anomaly(1), alert(1)]
    flow = Dataflow("sink_test")
    items = op.input("inp", flow, TestingSource(events + events, batch_size=7))
    op.output(
        "out",
        items,
        ClickHouseSink(
            StoreConfig(chdb_path=chdb_dir, batch_rows=10, batch_seconds=60),
            store_factory=lambda: ChdbStore(chdb_dir, database=database),
        ),
    )
    run_main(flow)
    assert count(store, "metrics") == 60  # close() flushed the rest
    assert count(store, "metrics", final=True) == 30
    assert count(store, "anomalies", final=True) == 1
    assert count(store, "alerts", final=True) == 1


@pytest.mark.parametrize("flush_every_batch", [False, True])
def test_bytewax_partition_flushes_per_batch_only_if_asked(
    store: ChdbStore, chdb_dir: Path, database: str, flush_every_batch: bool
) -> None:
    sink = ClickHouseSink(
        StoreConfig(chdb_path=chdb_dir, batch_rows=1000, batch_seconds=60),
        store_factory=lambda: ChdbStore(chdb_dir, database=database),
        flush_every_batch=flush_every_batch,
    )
    part = sink.build("out", 0, 1)
    part.write_batch([metric(1), alert(1)])
    assert count(store, "metrics") == (1 if flush_every_batch else 0)
    part.close()
    assert (count(store, "metrics"), count(store, "alerts")) == (1, 1)
