"""Events as rows and column blocks of their ClickHouse tables (pure functions).

`TABLES` maps each event type to its table, columns and encoder, so a batch may mix event
types; `encode_blocks` turns a batch into one column block per table (a `MetricBatch`,
`SpanBatch` or `LogBatch` without building rows). Rows carry their natural identity (the
``ORDER BY`` keys of ReplacingMergeTree tables, see `airis.sinks.migrations`), so writing a
batch twice leaves one copy after merges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from airis.batches import (
    EventBatch,
    ForecastBatch,
    LogBatch,
    MetricBatch,
    ModelScoreBatch,
    SpanBatch,
)
from airis.events import (
    Alert,
    Anomaly,
    CapacityWarning,
    DeadLetter,
    DependencyEdge,
    DriftEvent,
    ForecastPoint,
    Incident,
    LogRecord,
    LogTemplate,
    MetricPoint,
    ModelScore,
    RcaCandidate,
    ScalingAdvice,
    Span,
)
from airis.otel_codes import SEVERITY_NUMBER, SPAN_KIND_NAMES, STATUS_CODE_NAMES
from airis.sinks.column_block import Block, rows_to_block

__all__ = [
    "TABLES",
    "Row",
    "TableSpec",
    "encode_alert",
    "encode_anomaly",
    "encode_batch",
    "encode_blocks",
    "encode_dead_letter",
    "encode_edge",
    "encode_fields",
    "encode_incident",
    "encode_log",
    "encode_log_batch",
    "encode_log_template",
    "encode_metric",
    "encode_metric_batch",
    "encode_rca_candidate",
    "encode_span",
    "encode_span_batch",
]

Row = tuple[Any, ...]


# --- encoding (pure) --------------------------------------------------------------------------


def encode_metric(point: MetricPoint) -> Row:
    """A `MetricPoint` as a ``metrics`` row: ts, service, signal, value, labels."""
    return (point.ts, point.service, point.signal, point.value, point.labels)


def encode_metric_batch(batch: MetricBatch) -> Block:
    """A `MetricBatch` as a ``metrics`` block, straight from its columns (no row is built)."""
    n = len(batch.ts)
    return (
        batch.ts, (batch.service,) * n, batch.signal, batch.value, batch.labels or ({},) * n
    )  # fmt: skip


def encode_anomaly(anomaly: Anomaly) -> Row:
    """An `Anomaly` as an ``anomalies`` row (its fields, in declaration order)."""
    a = anomaly
    return (
        a.id, a.service, a.signal, a.kind, a.window_start, a.window_end,
        a.score, a.observed, a.expected, a.lower, a.upper, a.state, a.detector,
    )  # fmt: skip


def encode_alert(alert: Alert) -> Row:
    """An `Alert` as an ``alerts`` row (its fields, in declaration order)."""
    a = alert
    return (
        a.id, a.fingerprint, a.status, a.service, a.signal, a.kind, a.severity,
        a.starts_at, a.ends_at, a.updated_at, a.score, a.summary, a.labels,
    )  # fmt: skip


def encode_incident(incident: Incident) -> Row:
    """An `Incident` as an ``incidents`` row (candidates go to ``rca_candidates``)."""
    i = incident
    return (
        i.id, i.status, i.started_at, i.updated_at, i.ended_at, i.services, i.signals,
        i.anomaly_count, i.root_cause or "", i.summary, i.log_templates,
    )  # fmt: skip


def encode_rca_candidate(candidate: RcaCandidate) -> Row:
    """An `RcaCandidate` as an ``rca_candidates`` row."""
    c = candidate
    return (c.incident_id, c.rank, c.service, c.score, c.evidence, c.features)


def encode_log(record: LogRecord) -> Row:
    """A `LogRecord` as an ``otel_logs`` row (the Collector exporter's columns)."""
    r = record
    return (
        r.ts, r.trace_id or "", r.span_id or "", r.severity, SEVERITY_NUMBER[r.severity],
        r.service, r.body, {"service.name": r.service}, r.attributes,
    )  # fmt: skip


def encode_log_batch(batch: LogBatch) -> Block:
    """A `LogBatch` as an ``otel_logs`` block: `encode_log`'s values, column by column."""
    column, n = batch.column, len(batch)
    severities = column("severity")
    return (
        column("ts"), tuple(t or "" for t in column("trace_id")),
        tuple(s or "" for s in column("span_id")), severities,
        tuple(SEVERITY_NUMBER[s] for s in severities), column("service"), column("body"),
        ({"service.name": batch.service},) * n, column("attributes"),
    )  # fmt: skip


def encode_log_template(t: LogTemplate) -> Row:
    """A `LogTemplate` as a ``log_templates`` row."""
    return (t.service, t.template_id, t.template, t.first_seen, t.last_seen, t.count)


def encode_span(span: Span) -> Row:
    """A `Span` as an ``otel_traces`` row (the Collector exporter's columns and values; its
    ``Events`` and ``Links`` stay empty: our spans carry neither)."""
    s = span
    attributes = s.attributes
    if s.peer_service and "peer.service" not in attributes:
        attributes = {**attributes, "peer.service": s.peer_service}
    kind = SPAN_KIND_NAMES.get(attributes.get("span.kind", ""), "SPAN_KIND_UNSPECIFIED")
    return (
        s.start, s.trace_id, s.span_id, s.parent_span_id or "", "", s.name, kind, s.service,
        {"service.name": s.service}, "", "", attributes, round(s.duration_ms * 1e6),
        STATUS_CODE_NAMES[s.status], "",
    )  # fmt: skip


def encode_span_batch(batch: SpanBatch) -> Block:
    """A `SpanBatch` as an ``otel_traces`` block: `encode_span`'s values, column by column."""
    column, n = batch.column, len(batch)
    attributes = tuple(
        {**a, "peer.service": peer} if peer and "peer.service" not in a else a
        for a, peer in zip(column("attributes"), column("peer_service"), strict=True)
    )
    unspecified = "SPAN_KIND_UNSPECIFIED"
    return (
        column("start"), column("trace_id"), column("span_id"),
        tuple(p or "" for p in column("parent_span_id")), ("",) * n, column("name"),
        tuple(SPAN_KIND_NAMES.get(a.get("span.kind", ""), unspecified) for a in attributes),
        column("service"), ({"service.name": batch.service},) * n, ("",) * n, ("",) * n,
        attributes, tuple(round(d * 1e6) for d in column("duration_ms")),
        tuple(STATUS_CODE_NAMES[s] for s in column("status")), ("",) * n,
    )  # fmt: skip


def encode_edge(edge: DependencyEdge) -> Row:
    """A `DependencyEdge` as a ``service_edges`` row."""
    e = edge
    return (
        e.window_start, e.window_end, e.caller, e.callee, e.calls, e.errors, e.error_rate,
        e.p50_ms, e.p95_ms, e.p99_ms,
    )  # fmt: skip


def encode_dead_letter(letter: DeadLetter) -> Row:
    """A `DeadLetter` as a ``dead_letters`` row; ``truncated`` becomes 0 or 1."""
    d = letter
    return (d.received_at, d.source, d.reason, d.payload, int(d.truncated), d.origin)


@dataclass(frozen=True)
class TableSpec:
    """Where one event type goes: its table, its columns, and its encoder (``columnar``: the
    encoder gives a `Block` of many rows, for events that are batches; else one row)."""

    table: str
    columns: tuple[str, ...]
    encode: Callable[[Any], Any]
    columnar: bool = False


_METRIC_COLUMNS = ("ts", "service", "signal", "value", "labels")
_ANOMALY_COLUMNS = (
    "id", "service", "signal", "kind", "window_start", "window_end", "score",
    "observed", "expected", "lower", "upper", "state", "detector",
)  # fmt: skip
_OTEL_LOG_COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "SeverityText", "SeverityNumber", "ServiceName", "Body",
    "ResourceAttributes", "LogAttributes",
)  # fmt: skip
_OTEL_TRACE_COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind",
    "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes",
    "Duration", "StatusCode", "StatusMessage",
)  # fmt: skip
_EDGE_COLUMNS = (
    "window_start", "window_end", "caller", "callee", "calls", "errors", "error_rate",
    "p50_ms", "p95_ms", "p99_ms",
)  # fmt: skip
_INCIDENT_COLUMNS = (
    "id", "status", "started_at", "updated_at", "ended_at", "services", "signals",
    "anomaly_count", "root_cause", "summary", "log_templates",
)  # fmt: skip
_ALERT_COLUMNS = (
    "id", "fingerprint", "status", "service", "signal", "kind", "severity",
    "starts_at", "ends_at", "updated_at", "score", "summary", "labels",
)  # fmt: skip


#: Event type → table. A writer accepts exactly these types, mixed in any batch.
def encode_fields(columns: tuple[str, ...]) -> Callable[[BaseModel], Row]:
    """An encoder for events whose fields are the table's columns, in its order (the
    model-ops and planning events); booleans become 0/1 for ``UInt8`` columns.

    >>> from datetime import UTC, datetime
    >>> a = ScalingAdvice(ts=datetime(2026, 1, 1, tzinfo=UTC), service="api", signal="cpu",
    ...     current_replicas=4, desired_replicas=6, factor=1.5, metric=91.0, target=70.0,
    ...     action="scale_up")
    >>> encode_fields(("service", "desired_replicas", "action"))(a)
    ('api', 6, 'scale_up')
    """

    def encode(event: BaseModel) -> Row:
        values = (getattr(event, c) for c in columns)
        return tuple(int(v) if isinstance(v, bool) else v for v in values)

    return encode


def _columns_as_they_are(batch: EventBatch) -> Block:
    """A batch whose model's fields are the table's columns, in its order, as its block."""
    return batch.columns


def _by_fields(table: str, model: type[BaseModel]) -> TableSpec:
    columns = tuple(model.model_fields)
    return TableSpec(table, columns, encode_fields(columns))


TABLES: Mapping[type, TableSpec] = MappingProxyType(
    {
        MetricPoint: TableSpec("metrics", _METRIC_COLUMNS, encode_metric),
        MetricBatch: TableSpec("metrics", _METRIC_COLUMNS, encode_metric_batch, columnar=True),
        Anomaly: TableSpec("anomalies", _ANOMALY_COLUMNS, encode_anomaly),
        Alert: TableSpec("alerts", _ALERT_COLUMNS, encode_alert),
        Incident: TableSpec(
            "incidents",
            _INCIDENT_COLUMNS,
            encode_incident,
        ),
        RcaCandidate: TableSpec(
            "rca_candidates",
            ("incident_id", "rank", "service", "score", "evidence", "features"),
            encode_rca_candidate,
        ),
        LogRecord: TableSpec("otel_logs", _OTEL_LOG_COLUMNS, encode_log),
        LogBatch: TableSpec("otel_logs", _OTEL_LOG_COLUMNS, encode_log_batch, columnar=True),
        Span: TableSpec("otel_traces", _OTEL_TRACE_COLUMNS, encode_span),
        SpanBatch: TableSpec("otel_traces", _OTEL_TRACE_COLUMNS, encode_span_batch, columnar=True),
        DependencyEdge: TableSpec("service_edges", _EDGE_COLUMNS, encode_edge),
        LogTemplate: TableSpec(
            "log_templates",
            ("service", "template_id", "template", "first_seen", "last_seen", "count"),
            encode_log_template,
        ),
        ModelScore: _by_fields("model_scores", ModelScore),
        ModelScoreBatch: TableSpec(
            "model_scores", tuple(ModelScore.model_fields), _columns_as_they_are, columnar=True
        ),
        DriftEvent: _by_fields("drift_events", DriftEvent),
        ForecastPoint: _by_fields("forecasts", ForecastPoint),
        ForecastBatch: TableSpec(
            "forecasts", tuple(ForecastPoint.model_fields), _columns_as_they_are, columnar=True
        ),
        CapacityWarning: _by_fields("capacity_warnings", CapacityWarning),
        ScalingAdvice: _by_fields("scaling_recommendations", ScalingAdvice),
        DeadLetter: TableSpec(
            "dead_letters",
            ("received_at", "source", "reason", "payload", "truncated", "origin"),
            encode_dead_letter,
        ),
    }
)


def encode_blocks(
    events: Iterable[BaseModel], tables: Mapping[type, TableSpec] = TABLES
) -> tuple[dict[str, list[Block]], list[BaseModel]]:
    """Encode ``events`` as blocks per table, in order; also return the events no table accepts.

    Events of one object per row are gathered and transposed once per run; a batch event
    (``columnar``) is its own block.

    >>> from datetime import UTC, datetime
    >>> from airis.sinks.column_block import block_rows
    >>> p = MetricPoint(ts=datetime(2026, 1, 1, tzinfo=UTC), service="api", signal="cpu", value=1)
    >>> blocks, rejected = encode_blocks([p, p])
    >>> [block_rows(b) for b in blocks["metrics"]], rejected
    ([2], [])
    """
    blocks: dict[str, list[Block]] = {}
    pending: dict[str, list[Row]] = {}
    rejected: list[BaseModel] = []
    # The common case is a batch of one type: look the spec up once per run of a type.
    last_type: type | None = None
    spec: TableSpec | None = None
    for event in events:
        if type(event) is not last_type:
            last_type = type(event)
            spec = tables.get(last_type)
        if spec is None:
            rejected.append(event)
        elif spec.columnar:
            _close_rows(spec.table, pending, blocks)
            blocks.setdefault(spec.table, []).append(spec.encode(event))
        else:
            pending.setdefault(spec.table, []).append(spec.encode(event))
    for table in list(pending):
        _close_rows(table, pending, blocks)
    return blocks, rejected


def _close_rows(table: str, pending: dict[str, list[Row]], blocks: dict[str, list[Block]]) -> None:
    rows = pending.pop(table, None)
    if rows:
        blocks.setdefault(table, []).append(rows_to_block(rows))


def encode_batch(
    events: Iterable[BaseModel], tables: Mapping[type, TableSpec] = TABLES
) -> tuple[dict[str, list[Row]], list[BaseModel]]:
    """`encode_blocks` as rows per table (what the in-memory twin keeps).

    >>> from datetime import UTC, datetime
    >>> p = MetricPoint(ts=datetime(2026, 1, 1, tzinfo=UTC), service="api", signal="cpu", value=1)
    >>> rows, rejected = encode_batch([p, p])
    >>> {table: len(r) for table, r in rows.items()}, rejected
    ({'metrics': 2}, [])
    """
    blocks, rejected = encode_blocks(events, tables)
    rows = {
        table: [row for block in table_blocks for row in zip(*block, strict=True)]
        for table, table_blocks in blocks.items()
    }
    return rows, rejected
