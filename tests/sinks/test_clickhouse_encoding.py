"""Spans and log lines as column blocks: the rows their events give, one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airis.batches import LogBatch, SpanBatch
from airis.events import LogRecord, Span
from airis.sinks.clickhouse_encoding import (
    TABLES,
    encode_batch,
    encode_log,
    encode_log_batch,
    encode_span,
    encode_span_batch,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_span_and_log_batches_give_the_rows_of_their_events() -> None:
    spans = [
        Span(trace_id="a" * 32, span_id=f"{i:016x}", parent_span_id=None if i else "c" * 16,
             service="api", name="GET /", start=NOW + timedelta(seconds=i), duration_ms=i / 3,
             status=status, peer_service=peer, attributes=attributes)
        for i, (status, peer, attributes) in enumerate([
            ("ok", None, {"span.kind": "server"}), ("error", "db", {"span.kind": "client"}),
            ("unset", "db", {"peer.service": "cache"}), ("ok", None, {"span.kind": "odd"}),
        ])
    ]  # fmt: skip
    logs = [
        LogRecord(ts=NOW, service="api", severity=severity, body=f"line {i}", trace_id=trace,
                  span_id="b" * 16 if trace else None, attributes={"k": str(i)} if i else {})
        for i, (severity, trace) in enumerate([("WARN", "c" * 32), ("FATAL", None), ("INFO", None)])
    ]  # fmt: skip
    for batch, events, encode in [
        (SpanBatch.from_events(spans), spans, encode_span),
        (LogBatch.from_events(logs), logs, encode_log),
    ]:
        block = TABLES[type(batch)].encode(batch)
        assert list(zip(*block, strict=True)) == [encode(e) for e in events]
        assert TABLES[type(batch)].columns == TABLES[type(events[0])].columns
        rows, rejected = encode_batch([events[0], batch, events[-1]])
        assert rejected == []
        assert rows == {
            TABLES[type(batch)].table: [encode(e) for e in (events[0], *events, events[-1])]
        }
    assert (
        encode_span_batch is TABLES[SpanBatch].encode
        and encode_log_batch is TABLES[LogBatch].encode
    )
