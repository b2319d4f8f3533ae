"""Write AIRIS-MON events (metrics, anomalies, alerts, dead letters) to ClickHouse in batches.

Three layers, top to bottom:

- pure ``encode_*`` functions turn one event into one row of its table; `TABLES` maps each
  event type to its table, columns and encoder, so a batch may mix event types;
- `ClickHouseWriter` buffers rows per table and inserts a table's rows when it holds
  ``batch_rows`` of them or its oldest row has waited ``batch_seconds``. It never raises on a
  delivery failure: it logs, returns `ExportResult.FAILURE` and keeps the rows for the next
  attempt (up to ``max_buffered_rows`` per table). `InMemoryWriter` is its twin for tests and
  dry runs;
- `ClickHouseSink`, a Bytewax ``DynamicSink`` that builds one writer per worker.

Idempotence: rows carry their natural identity (``ORDER BY`` keys of ReplacingMergeTree
tables, see `airis.sinks.migrations`), so writing a batch twice (a retry after a failed
insert, a Bytewax replay after a restart) leaves one copy after merges, or with ``FINAL``.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from bytewax.outputs import (
    DynamicSink,
    FixedPartitionedSink,
    StatefulSinkPartition,
    StatelessSinkPartition,
)
from prometheus_client import REGISTRY, Counter
from pydantic import BaseModel

from airis import telemetry
from airis.batches import MetricBatch
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
from airis.settings import Settings
from airis.sinks.clickhouse_store import ClickHouseStore, open_store
from airis.sinks.column_block import Block, BlockBuffer, block_rows, rows_to_block
from airis.sinks.migrations import migrate
from airis.sinks.spill import RowSpill

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "DEFAULT_BATCH_SECONDS",
    "DEFAULT_MAX_BUFFERED_ROWS",
    "TABLES",
    "ClickHouseSink",
    "ClickHouseWriter",
    "ExportResult",
    "InMemoryWriter",
    "PartitionedClickHouseSink",
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
    "encode_log_template",
    "encode_metric",
    "encode_metric_batch",
    "encode_rca_candidate",
    "encode_span",
]

DEFAULT_BATCH_ROWS = 20_000
DEFAULT_BATCH_SECONDS = 2.0
#: Shortest period of the sink's background flush check (seconds).
MIN_FLUSH_INTERVAL = 0.05
#: Rows kept per table while inserts fail; beyond it the oldest are dropped (and counted).
DEFAULT_MAX_BUFFERED_ROWS = 1_000_000
#: First wait after a failed insert before the next one; it doubles per failure up to the max.
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0

Row = tuple[Any, ...]


class ExportResult(enum.Enum):
    """What `ClickHouseWriter.export` achieved."""

    SUCCESS = 0
    FAILURE = 1


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


_SEVERITY_NUMBER = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}


def encode_log(record: LogRecord) -> Row:
    """A `LogRecord` as an ``otel_logs`` row (the Collector exporter's columns)."""
    r = record
    return (
        r.ts, r.trace_id or "", r.span_id or "", r.severity, _SEVERITY_NUMBER[r.severity],
        r.service, r.body, {"service.name": r.service}, r.attributes,
    )  # fmt: skip


def encode_log_template(t: LogTemplate) -> Row:
    """A `LogTemplate` as a ``log_templates`` row."""
    return (t.service, t.template_id, t.template, t.first_seen, t.last_seen, t.count)


_SPAN_KIND = {
    "server": "SPAN_KIND_SERVER", "client": "SPAN_KIND_CLIENT", "producer": "SPAN_KIND_PRODUCER",
    "consumer": "SPAN_KIND_CONSUMER", "internal": "SPAN_KIND_INTERNAL",
}  # fmt: skip
_STATUS_CODE = {"ok": "STATUS_CODE_OK", "error": "STATUS_CODE_ERROR", "unset": "STATUS_CODE_UNSET"}


def encode_span(span: Span) -> Row:
    """A `Span` as an ``otel_traces`` row (the Collector exporter's columns and values; its
    ``Events`` and ``Links`` stay empty: our spans carry neither)."""
    s = span
    attributes = s.attributes
    if s.peer_service and "peer.service" not in attributes:
        attributes = {**attributes, "peer.service": s.peer_service}
    kind = _SPAN_KIND.get(attributes.get("span.kind", ""), "SPAN_KIND_UNSPECIFIED")
    return (
        s.start, s.trace_id, s.span_id, s.parent_span_id or "", "", s.name, kind, s.service,
        {"service.name": s.service}, "", "", attributes, round(s.duration_ms * 1e6),
        _STATUS_CODE[s.status], "",
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
        LogRecord: TableSpec(
            "otel_logs",
            _OTEL_LOG_COLUMNS,
            encode_log,
        ),
        Span: TableSpec("otel_traces", _OTEL_TRACE_COLUMNS, encode_span),
        DependencyEdge: TableSpec("service_edges", _EDGE_COLUMNS, encode_edge),
        LogTemplate: TableSpec(
            "log_templates",
            ("service", "template_id", "template", "first_seen", "last_seen", "count"),
            encode_log_template,
        ),
        ModelScore: _by_fields("model_scores", ModelScore),
        DriftEvent: _by_fields("drift_events", DriftEvent),
        ForecastPoint: _by_fields("forecasts", ForecastPoint),
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


# --- metrics (registered once per process, even if this module is imported twice) ----------

_METRICS_LOCK = threading.Lock()
_METRICS: dict[str, Counter] = {}


def _counter(name: str, documentation: str) -> Counter:
    """The process-wide Counter ``name`` with a ``table`` label, created on first use."""
    with _METRICS_LOCK:
        counter = _METRICS.get(name)
        if counter is None:
            try:
                counter = Counter(name, documentation, ["table"])
            except ValueError:  # already registered, e.g. by a reloaded copy of this module
                counter = REGISTRY._names_to_collectors[name + "_total"]  # type: ignore[assignment]
            _METRICS[name] = counter
        return counter


def _rows_total() -> Counter:
    return _counter("airis_sink_rows", "Rows written to ClickHouse, by table.")


def _rows_dropped_total() -> Counter:
    return _counter(
        "airis_sink_rows_dropped", "Rows given up on (buffer bound or shutdown), by table."
    )


def _insert_failures_total() -> Counter:
    return _counter("airis_sink_insert_failures", "Failed ClickHouse inserts, by table.")


# --- client -----------------------------------------------------------------------------------


class ClickHouseWriter:
    """Buffer events as rows per table and insert them into a `ClickHouseStore` in batches.

    A table's buffer is inserted (in one block) when it holds ``batch_rows`` rows, or when its
    oldest row has waited ``batch_seconds`` (checked at every `export`, and every
    ``flush_interval`` seconds by a background thread if one is asked for: without it a quiet
    stream keeps its last rows until the next export, `force_flush` or `shutdown`).

    A failed insert is logged with the table and row count, counted, and makes `export`
    return `ExportResult.FAILURE`; the rows stay buffered and go with the next attempt, which
    waits (exponential backoff from `RETRY_FIRST_S` to `RETRY_MAX_S`) so that a store that is
    down does not slow every batch of the flow. While inserts keep failing, a table keeps at
    most ``max_buffered_rows`` rows in memory: beyond that they go to ``spill`` (a
    `RowSpill` on disk, sent first once the store is back) or, without one, the oldest are
    dropped with an error log and counted in ``rows_dropped`` and
    ``airis_sink_rows_dropped_total``. Written rows are counted in ``rows_written`` and
    ``airis_sink_rows_total{table}``. Thread-safe.

    Parameters
    ----------
    store
        Where rows go; its tables must exist (`airis.sinks.migrations.migrate`).
    batch_rows
        Rows of one table that trigger an insert.
    batch_seconds
        Longest a row waits in the buffer (as seen by ``now``).
    max_buffered_rows
        Bound on one table's buffer while inserts fail (at least ``batch_rows``).
    tables
        Event type → table registry (`TABLES`).
    now
        Clock in seconds (monotonic); tests inject a fake one.
    flush_interval
        If set, a daemon thread checks for due buffers this often (seconds).
    close_store
        Close ``store`` at `shutdown` (set when the writer opened it).
    spill
        Where rows go while the store is down and memory is full (None: they are dropped).
    """

    def __init__(
        self,
        store: ClickHouseStore,
        *,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        batch_seconds: float = DEFAULT_BATCH_SECONDS,
        max_buffered_rows: int = DEFAULT_MAX_BUFFERED_ROWS,
        tables: Mapping[type, TableSpec] = TABLES,
        now: Callable[[], float] = time.monotonic,
        flush_interval: float | None = None,
        close_store: bool = False,
        spill: RowSpill | None = None,
    ) -> None:
        _validate_arguments(batch_rows, batch_seconds, max_buffered_rows, flush_interval)
        self.store = store
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.max_buffered_rows = max_buffered_rows
        self.tables = tables
        self.now = now
        self.flush_interval = flush_interval
        self.close_store = close_store
        self.spill = spill
        self._failures: dict[str, int] = {}  # consecutive failed inserts per table
        self._retry_at: dict[str, float] = {}
        self.rows_written: dict[str, int] = {spec.table: 0 for spec in tables.values()}
        self.rows_dropped: dict[str, int] = {spec.table: 0 for spec in tables.values()}
        self._columns = {spec.table: spec.columns for spec in tables.values()}
        self._buffers: dict[str, BlockBuffer] = {}
        self._since: dict[str, float] = {}
        self._lock = threading.RLock()
        self._shutdown = False
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if flush_interval is not None:
            self._flusher = threading.Thread(
                target=self._flush_periodically, name="airis-clickhouse-flush", daemon=True
            )
            self._flusher.start()

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kwargs: Any) -> ClickHouseWriter:
        """Open the store ``settings`` name, migrate it, and write to it (closing it at shutdown).

        Batch size and age come from ``settings`` (``AIRIS_SINK_BATCH_ROWS``,
        ``AIRIS_SINK_BATCH_SECONDS``) unless given in ``kwargs``.
        """
        settings = settings if settings is not None else Settings()
        store = open_store(settings)
        try:
            migrate(store)
        except Exception:
            store.close()
            raise
        kwargs.setdefault("batch_rows", settings.sink_batch_rows)
        kwargs.setdefault("batch_seconds", settings.sink_batch_seconds)
        kwargs.setdefault("close_store", True)
        return cls(store, **kwargs)

    @property
    def buffered_rows(self) -> dict[str, int]:
        """Rows waiting per table (tables with none are left out)."""
        with self._lock:
            return {table: len(rows) for table, rows in self._buffers.items() if rows}

    def export(self, events: Sequence[BaseModel]) -> ExportResult:
        """Buffer ``events`` and insert every table that is due; never raises.

        FAILURE if the writer is shut down (nothing is buffered), if some event has a type
        no table accepts (it is logged and skipped; the others are buffered), or if an
        insert failed (its rows stay buffered for the next attempt).
        """
        if self._shutdown:
            logger.warning("export of %d events after shutdown: rejected", len(events))
            return ExportResult.FAILURE
        try:
            blocks, rejected = encode_blocks(events, self.tables)
        except Exception:
            logger.exception("cannot encode a batch of %d events: rejected", len(events))
            return ExportResult.FAILURE
        ok = not rejected
        if rejected:
            kinds = sorted({type(e).__name__ for e in rejected})
            logger.error(
                "%d events of unsupported type(s) %s skipped", len(rejected), ", ".join(kinds)
            )
        with self._lock:
            if self._shutdown:
                return ExportResult.FAILURE
            now = self.now()
            for table, new_blocks in blocks.items():
                buffer = self._buffers.setdefault(table, BlockBuffer())
                if not buffer:
                    self._since[table] = now
                for block in new_blocks:
                    buffer.add(block)
            ok = self._flush_due(now) and ok
        return ExportResult.SUCCESS if ok else ExportResult.FAILURE

    def force_flush(self) -> bool:
        """Insert every buffered and spilled row now; True if nothing is left."""
        with self._lock:
            return all([self._flush_table(table) for table in self._pending_tables()])

    def flush_or_spill(self) -> bool:
        """Insert what is pending unless a retry is not due yet; spill what stays in memory.

        True if everything is stored. What a snapshot calls: it never waits for a store
        that is down, and afterwards no row lives only in memory (when there is a spill).
        """
        with self._lock:
            now = self.now()
            ok = all(
                [
                    self._flush_table(table)
                    for table in self._pending_tables()
                    if self._retry_at.get(table, 0.0) <= now
                ]
            )
            ok = ok and not self._pending_tables()
            if not ok and self.spill is not None:
                for table in list(self._buffers):
                    self._spill(table)
            return ok

    def tables_seen(self) -> list[str]:
        """Tables that have had rows buffered since the writer started."""
        with self._lock:
            return list(self._buffers)

    def _pending_tables(self) -> list[str]:
        tables = [t for t, rows in self._buffers.items() if rows]
        if self.spill is not None:
            tables += [t for t in self.spill.tables() if t not in tables]
        return tables

    def shutdown(self) -> None:
        """Flush, stop the flusher thread, close the store if owned; a second call warns."""
        with self._lock:
            if self._shutdown:
                logger.warning("ClickHouseWriter.shutdown called again: ignored")
                return
            self._shutdown = True
        self._stop.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()
        with self._lock:
            if not self.force_flush():
                for table, rows in self._buffers.items():
                    if rows:
                        logger.error(
                            "shutdown: %d rows for table %s could not be written and are lost",
                            len(rows),
                            table,
                        )
                        self._drop(table, len(rows))
                self._buffers.clear()
                self._since.clear()
            if self.close_store:
                try:
                    self.store.close()
                except Exception:
                    logger.exception("closing the ClickHouse store failed")

    def _flush_due(self, now: float) -> bool:
        ok = True
        for table, rows in list(self._buffers.items()):
            if not rows:
                continue
            if self._retry_at.get(table, 0.0) > now:
                ok = False  # the store failed lately: wait for the backoff
                self._bound(table)
            elif len(rows) >= self.batch_rows or now - self._since[table] >= self.batch_seconds:
                ok = self._flush_table(table) and ok
        return ok

    def _flush_table(self, table: str) -> bool:
        # Spilled rows are older than the buffered ones: they go first.
        while self.spill is not None and (spilled := self.spill.oldest(table)) is not None:
            path, block = spilled
            if not self._insert(table, block, spilled=True):
                self._bound(table)
                return False
            self.spill.remove(path)
        buffer = self._buffers.get(table)
        if not buffer:
            return True
        data = buffer.take()
        if not self._insert(table, data):
            buffer.add(data)  # the buffer held just these rows: their order is kept
            self._bound(table)
            return False
        self._since.pop(table, None)
        return True

    def _insert(self, table: str, data: Block, spilled: bool = False) -> bool:
        rows = block_rows(data)
        try:
            self.store.insert_columns(table, self._columns[table], data)
        except Exception as exc:
            _insert_failures_total().labels(table=table).inc()
            failures = self._failures.get(table, 0) + 1
            self._failures[table] = failures
            delay = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (failures - 1))
            self._retry_at[table] = self.now() + delay
            where = "spilled " if spilled else ""
            logger.error(
                "insert of %d %srows into %s failed (kept; retry in %.1f s): %s",
                rows, where, table, delay, exc,
            )  # fmt: skip
            return False
        self._failures.pop(table, None)
        self._retry_at.pop(table, None)
        self.rows_written[table] = self.rows_written.get(table, 0) + rows
        _rows_total().labels(table=table).inc(rows)
        logger.debug("inserted %d rows into %s", rows, table)
        return True

    def _bound(self, table: str) -> None:
        """Keep at most ``max_buffered_rows`` of ``table`` in memory: spill or drop the rest."""
        buffer = self._buffers.get(table)
        overflow = len(buffer) - self.max_buffered_rows if buffer else 0
        if overflow <= 0 or buffer is None:
            return
        if self.spill is not None:
            self._spill(table)
            return
        buffer.drop_oldest(overflow)
        logger.error(
            "buffer for %s over %d rows: dropped the %d oldest",
            table,
            self.max_buffered_rows,
            overflow,
        )
        self._drop(table, overflow)

    def _spill(self, table: str) -> None:
        buffer = self._buffers.get(table)
        if not buffer or self.spill is None:
            return
        for dropped_table, count in self.spill.put(table, buffer.take()):
            self._drop(dropped_table, count)
        self._since.pop(table, None)

    def _drop(self, table: str, count: int) -> None:
        self.rows_dropped[table] = self.rows_dropped.get(table, 0) + count
        _rows_dropped_total().labels(table=table).inc(count)

    def _flush_periodically(self) -> None:
        interval = self.flush_interval or DEFAULT_BATCH_SECONDS
        while not self._stop.wait(interval):
            with self._lock:
                if not self._shutdown:
                    self._flush_due(self.now())


class InMemoryWriter:
    """`ClickHouseWriter`'s twin: keeps exported events (and their rows) in lists.

    Encodes like the real writer, so unsupported types fail the same way; ``rows`` holds the
    encoded rows per table and ``rows_written`` counts them.
    """

    def __init__(self, tables: Mapping[type, TableSpec] = TABLES) -> None:
        self.tables = tables
        self.events: list[BaseModel] = []
        self.rows: dict[str, list[Row]] = {spec.table: [] for spec in tables.values()}
        self.rows_written: dict[str, int] = {spec.table: 0 for spec in tables.values()}
        self._lock = threading.Lock()
        self._shutdown = False

    def export(self, events: Sequence[BaseModel]) -> ExportResult:
        """Keep ``events``; FAILURE after shutdown or for unsupported types (others kept)."""
        if self._shutdown:
            logger.warning("export of %d events after shutdown: rejected", len(events))
            return ExportResult.FAILURE
        rows, rejected = encode_batch(events, self.tables)
        with self._lock:
            self.events.extend(e for e in events if type(e) in self.tables)
            for table, new_rows in rows.items():
                self.rows[table].extend(new_rows)
                self.rows_written[table] += len(new_rows)
        return ExportResult.FAILURE if rejected else ExportResult.SUCCESS

    def force_flush(self) -> bool:
        """Nothing is buffered: always True."""
        return True

    def shutdown(self) -> None:
        """Stop accepting events; a second call warns."""
        if self._shutdown:
            logger.warning("InMemoryWriter.shutdown called again: ignored")
        self._shutdown = True

    def clear(self) -> None:
        """Forget everything exported so far."""
        with self._lock:
            self.events.clear()
            for rows in self.rows.values():
                rows.clear()


def _validate_arguments(
    batch_rows: int, batch_seconds: float, max_buffered_rows: int, flush_interval: float | None
) -> None:
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    if not batch_seconds > 0:
        raise ValueError(f"batch_seconds must be positive, got {batch_seconds}")
    if max_buffered_rows < batch_rows:
        raise ValueError(
            f"max_buffered_rows must be at least batch_rows ({batch_rows}), got {max_buffered_rows}"
        )
    if flush_interval is not None and not flush_interval > 0:
        raise ValueError(f"flush_interval must be positive, got {flush_interval}")


# --- Bytewax wrapper --------------------------------------------------------------------------


class ClickHouseSink(DynamicSink[BaseModel]):
    """Write a stream of events (any mix of `TABLES` types) to ClickHouse.

    Unit of parallelism: one `ClickHouseWriter` and one store connection per worker. With the
    embedded chdb backend all workers must run in one process (``-w N`` threads are fine;
    several processes are not: a chdb directory serves one process); with a ClickHouse server
    (``AIRIS_CLICKHOUSE_URL``) any layout works.

    Delivery: at-least-once for every row that left the writer's buffer, and idempotent:
    replays (Bytewax recovery) and insert retries write rows again, and ReplacingMergeTree
    keys keep one copy (dead letters, kept in a plain MergeTree, may appear twice). Rows wait
    in the buffer for up to ``sink_batch_seconds`` (a background thread flushes due rows even
    when no items arrive) and are flushed at `close` (end of a finite input). If the process
    dies abruptly, rows still buffered are lost: Bytewax considers them written once
    ``write_batch`` returns, so recovery does not replay them. ``flush_every_batch=True``
    inserts at the end of every ``write_batch`` instead, closing that window at the cost of
    one insert (one ClickHouse part) per batch: keep input batches large if you use it.

    Parameters
    ----------
    settings
        Where to write and how to batch; ``None`` reads ``AIRIS_*`` from the environment at
        build time.
    store_factory
        Opens the store for a worker instead of `open_store` (tests, custom backends).
    migrate_schema
        Apply `airis.sinks.migrations.MIGRATIONS` when a worker starts.
    flush_every_batch
        Insert everything at the end of each ``write_batch`` (see Delivery).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store_factory: Callable[[], ClickHouseStore] | None = None,
        migrate_schema: bool = True,
        flush_every_batch: bool = False,
    ) -> None:
        self.settings = settings
        self.store_factory = store_factory
        self.migrate_schema = migrate_schema
        self.flush_every_batch = flush_every_batch

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ClickHouseSinkPartition:
        """Open a store for this worker and wrap a writer around it."""
        writer = _open_writer(self.settings, self.store_factory, self.migrate_schema)
        logger.info(
            "%s: worker %d/%d writes to %s", step_id, worker_index, worker_count, writer.store
        )
        return _ClickHouseSinkPartition(writer, self.flush_every_batch)


def _open_writer(
    settings: Settings | None,
    store_factory: Callable[[], ClickHouseStore] | None,
    migrate_schema: bool,
) -> ClickHouseWriter:
    settings = settings if settings is not None else Settings()
    store = store_factory() if store_factory else open_store(settings)
    try:
        if migrate_schema:
            migrate(store)
    except Exception:
        store.close()
        raise
    return ClickHouseWriter(
        store,
        batch_rows=settings.sink_batch_rows,
        batch_seconds=settings.sink_batch_seconds,
        flush_interval=max(settings.sink_batch_seconds / 4, MIN_FLUSH_INTERVAL),
        close_store=True,
    )


class _ClickHouseSinkPartition(StatelessSinkPartition[BaseModel]):
    """One worker's writer: failures are logged by the writer and retried with the next batch."""

    def __init__(self, writer: ClickHouseWriter, flush_every_batch: bool) -> None:
        self._writer = writer
        self._flush_every_batch = flush_every_batch

    def write_batch(self, items: list[BaseModel]) -> None:
        self._writer.export(items)
        if self._flush_every_batch:
            self._writer.force_flush()

    def close(self) -> None:
        self._writer.shutdown()


class PartitionedClickHouseSink(FixedPartitionedSink[list[BaseModel], None]):
    """Write ``(key, [event, ...])`` pairs to ClickHouse through ``partitions`` writers.

    Bytewax builds each partition on exactly one worker of the cluster and routes every item
    to it, so with ``partitions=1`` all writes go through one process: the way to use the
    embedded store (a chdb directory serves one process) from a multi-process flow. With a
    ClickHouse server, more partitions spread the inserts.

    Delivery: at the end of every epoch Bytewax asks for a snapshot, and the snapshot first
    inserts everything buffered; so rows are in ClickHouse before the input offsets of their
    epoch are committed, and a crash (even ``kill -9``) loses nothing: the restart replays
    the epoch, and ReplacingMergeTree keys absorb the repeated rows.

    When ClickHouse is down the flow goes on (detection, the alert topics): at a snapshot the
    rows that could not be inserted are written to the partition's spill directory
    (``AIRIS_SINK_SPILL_DIR``/<partition>, a `RowSpill` bounded by
    ``AIRIS_SINK_SPILL_MAX_BYTES``) and sent, oldest first, once inserts succeed again (also
    after a restart). The spill directory, like the recovery directory, must outlive the
    process (a persistent volume in a cluster). With ``spill=False`` an insert that still
    fails after `SNAPSHOT_ATTEMPTS` tries fails the flow instead.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        partitions: int = 1,
        store_factory: Callable[[], ClickHouseStore] | None = None,
        migrate_schema: bool = True,
        spill: bool = True,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        self.settings = settings
        self.partitions = partitions
        self.store_factory = store_factory
        self.migrate_schema = migrate_schema
        self.spill = spill

    def list_parts(self) -> list[str]:
        return [f"clickhouse-{i}" for i in range(self.partitions)]

    def build_part(
        self, step_id: str, for_part: str, resume_state: None
    ) -> _SnapshotFlushingPartition:
        settings = self.settings if self.settings is not None else Settings()
        writer = _open_writer(settings, self.store_factory, self.migrate_schema)
        if self.spill:
            writer.spill = RowSpill(
                settings.resolved_sink_spill_dir / for_part, settings.sink_spill_max_bytes
            )
        logger.info("%s: partition %s writes to %s", step_id, for_part, writer.store)
        return _SnapshotFlushingPartition(writer)


#: Inserts tried at a snapshot before the flow is failed, when there is no spill directory.
SNAPSHOT_ATTEMPTS = 5


class _SnapshotFlushingPartition(StatefulSinkPartition[list[BaseModel], None]):
    def __init__(self, writer: ClickHouseWriter) -> None:
        self._writer = writer

    def write_batch(self, values: list[list[BaseModel]]) -> None:
        started = time.perf_counter()
        events = [event for batch in values for event in batch]
        self._writer.export(events)
        telemetry.SINK_SECONDS.labels(sink="clickhouse").observe(time.perf_counter() - started)
        telemetry.SINK_BATCH.labels(sink="clickhouse").observe(len(events))

    def snapshot(self) -> None:
        if self._writer.spill is not None:
            # A store that is down must not stop detection: what is not stored is on disk
            # before the epoch's offsets are committed, and goes first when the store is back.
            if not self._writer.flush_or_spill():
                spill = self._writer.spill
                logger.warning(
                    "ClickHouse unavailable at a snapshot: %d rows spilled to %s (%d bytes)",
                    sum(spill.rows(t) for t in spill.tables()), spill.directory, spill.bytes,
                )  # fmt: skip
            telemetry.SINK_SPILLED_BYTES.set(self._writer.spill.bytes)
            for table in self._writer.tables_seen():
                telemetry.SINK_BUFFERED_ROWS.labels(table=table).set(
                    self._writer.buffered_rows.get(table, 0)
                )
            return None
        for attempt in range(SNAPSHOT_ATTEMPTS):
            if self._writer.force_flush():
                return None
            time.sleep(min(2**attempt * 0.2, 5.0))
        raise RuntimeError(
            f"ClickHouse inserts failed {SNAPSHOT_ATTEMPTS} times at a snapshot; stopping the "
            f"flow so a restart replays the unwritten rows ({self._writer.buffered_rows})"
        )

    def close(self) -> None:
        self._writer.shutdown()
