"""Versioned, idempotent schema migrations for AIRIS-MON's ClickHouse tables.

`MIGRATIONS` is an ordered tuple of `Migration` (version, name, statements). `migrate` applies
those whose version is not yet in ``schema_migrations`` and records each one after all its
statements succeed; running it again is a no-op. Every statement must be safe to repeat
(``CREATE ... IF NOT EXISTS``, ``ADD COLUMN IF NOT EXISTS``): a migration that failed half-way
is simply run again from its first statement. Never edit a released migration; append one.

Tables (migration 1). Deduplicating tables are ReplacingMergeTree: a replay writes the same
rows again and ClickHouse keeps one per ``ORDER BY`` key (at merge time; read with ``FINAL``
for exact counts). TTLs drop old rows. Rows already older than their TTL when inserted
(e.g. simulated data dated months ago) disappear at once, or at the next merge.

========================  ======================================  ==========  ========
table                     ORDER BY (dedup key)                    partition   TTL
========================  ======================================  ==========  ========
``metrics``               service, signal, ts                     day         30 days
``anomalies``             service, signal, window_start, kind     month       90 days
``alerts``                fingerprint, starts_at, status          month       180 days
``dead_letters``          source, received_at (MergeTree: keep)   month       30 days
``forecasts``             service, signal, ts, horizon_seconds    day         30 days
``capacity_warnings``     service, signal, ts                     month       90 days
``drift_events``          model, version, feature, ts             month       90 days
``model_scores``          model, service, window_start, version   day         30 days
========================  ======================================  ==========  ========

``scaling_recommendations`` (migration 7, with ``forecasts`` and ``capacity_warnings``) is keyed
like ``capacity_warnings``: service, signal, ts; monthly partitions; 90 days.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import NamedTuple

from airis.sinks.clickhouse_store import ClickHouseStore

logger = logging.getLogger(__name__)

__all__ = ["MIGRATIONS", "MIGRATIONS_TABLE", "Migration", "applied_versions", "migrate"]

MIGRATIONS_TABLE = "schema_migrations"


class Migration(NamedTuple):
    """One schema change: a version (strictly increasing), a name, idempotent statements."""

    version: int
    name: str
    statements: tuple[str, ...]


_METRICS = """
CREATE TABLE IF NOT EXISTS metrics (
    ts DateTime64(3, 'UTC'),
    service LowCardinality(String),
    signal LowCardinality(String),
    value Float64,
    labels Map(LowCardinality(String), String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (service, signal, ts)
TTL toDateTime(ts) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1
"""

_ANOMALIES = """
CREATE TABLE IF NOT EXISTS anomalies (
    id String,
    service LowCardinality(String),
    signal LowCardinality(String),
    kind LowCardinality(String),
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    score Float64,
    observed Float64,
    expected Float64,
    lower Float64,
    upper Float64,
    state LowCardinality(String),
    detector LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (service, signal, window_start, kind)
TTL toDateTime(window_start) + INTERVAL 90 DAY
"""

_ALERTS = """
CREATE TABLE IF NOT EXISTS alerts (
    id String,
    fingerprint String,
    status LowCardinality(String),
    service LowCardinality(String),
    signal LowCardinality(String),
    kind LowCardinality(String),
    severity LowCardinality(String),
    starts_at DateTime64(3, 'UTC'),
    ends_at Nullable(DateTime64(3, 'UTC')),
    updated_at Nullable(DateTime64(3, 'UTC')),
    score Float64,
    summary String,
    labels Map(LowCardinality(String), String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(starts_at)
ORDER BY (fingerprint, starts_at, status)
TTL toDateTime(starts_at) + INTERVAL 180 DAY
"""

_DEAD_LETTERS = """
CREATE TABLE IF NOT EXISTS dead_letters (
    received_at DateTime64(3, 'UTC'),
    source LowCardinality(String),
    reason String,
    payload String,
    truncated UInt8
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (source, received_at)
TTL toDateTime(received_at) + INTERVAL 30 DAY
"""

_INCIDENTS = """
CREATE TABLE IF NOT EXISTS incidents (
    id String,
    status LowCardinality(String),
    started_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    ended_at Nullable(DateTime64(3, 'UTC')),
    services Array(LowCardinality(String)),
    signals Array(String),
    anomaly_count UInt32,
    root_cause LowCardinality(String),
    summary String
)
ENGINE = ReplacingMergeTree(updated_at)
PARTITION BY toYYYYMM(started_at)
ORDER BY id
TTL toDateTime(started_at) + INTERVAL 365 DAY
"""

_RCA_CANDIDATES = """
CREATE TABLE IF NOT EXISTS rca_candidates (
    incident_id String,
    rank UInt16,
    service LowCardinality(String),
    score Float64,
    evidence Array(String),
    features Map(LowCardinality(String), Float64)
)
ENGINE = ReplacingMergeTree
ORDER BY (incident_id, rank)
"""

# Shaped like the OpenTelemetry Collector ClickHouse exporter's table, so Grafana's ClickHouse
# plugin reads it as logs; ReplacingMergeTree on the line's identity keeps replays idempotent.
_OTEL_LOGS = """
CREATE TABLE IF NOT EXISTS otel_logs (
    Timestamp DateTime64(9, 'UTC'),
    TraceId String,
    SpanId String,
    SeverityText LowCardinality(String),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String),
    Body String,
    ResourceAttributes Map(LowCardinality(String), String),
    LogAttributes Map(LowCardinality(String), String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp, cityHash64(Body))
TTL toDateTime(Timestamp) + INTERVAL 30 DAY
"""

_LOG_TEMPLATES = """
CREATE TABLE IF NOT EXISTS log_templates (
    service LowCardinality(String),
    template_id String,
    template String,
    first_seen DateTime64(3, 'UTC'),
    last_seen DateTime64(3, 'UTC'),
    count UInt64
)
ENGINE = ReplacingMergeTree(last_seen)
ORDER BY (service, template_id)
"""

# Shaped like the OpenTelemetry Collector ClickHouse exporter's tables (the trace-id lookup
# table and its view included), so Grafana's ClickHouse plugin opens traces from it; the
# replacing engine keyed on the span's identity keeps replays after a restart idempotent.
_OTEL_TRACES = """
CREATE TABLE IF NOT EXISTS otel_traces (
    Timestamp DateTime64(9, 'UTC'),
    TraceId String,
    SpanId String,
    ParentSpanId String,
    TraceState String,
    SpanName LowCardinality(String),
    SpanKind LowCardinality(String),
    ServiceName LowCardinality(String),
    ResourceAttributes Map(LowCardinality(String), String),
    ScopeName String,
    ScopeVersion String,
    SpanAttributes Map(LowCardinality(String), String),
    Duration UInt64,
    StatusCode LowCardinality(String),
    StatusMessage String,
    Events Nested (
        Timestamp DateTime64(9, 'UTC'),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp, TraceId, SpanId)
TTL toDateTime(Timestamp) + INTERVAL 30 DAY
"""

_OTEL_TRACES_TRACE_ID_TS = """
CREATE TABLE IF NOT EXISTS otel_traces_trace_id_ts (
    TraceId String,
    Start DateTime64(9, 'UTC'),
    End DateTime64(9, 'UTC'),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
TTL toDateTime(Start) + INTERVAL 30 DAY
"""

_OTEL_TRACES_TRACE_ID_TS_MV = """
CREATE MATERIALIZED VIEW IF NOT EXISTS otel_traces_trace_id_ts_mv
TO otel_traces_trace_id_ts
AS SELECT TraceId, min(Timestamp) AS Start, max(Timestamp) AS End
FROM otel_traces
WHERE TraceId != ''
GROUP BY TraceId
"""

# One row per caller → callee per window: the service dependency graph over time.
_SERVICE_EDGES = """
CREATE TABLE IF NOT EXISTS service_edges (
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    caller LowCardinality(String),
    callee LowCardinality(String),
    calls UInt64,
    errors UInt64,
    error_rate Float64,
    p50_ms Float64,
    p95_ms Float64,
    p99_ms Float64
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(window_start)
ORDER BY (caller, callee, window_start)
"""

# One row per model feature per live window tested against the training reference (KS):
# p_value is the raw test, p_adjusted the Holm-corrected one that `drifted` compares with
# threshold (see airis.operators.drift.ks_drift). Replays rewrite the same key: one row after
# merges.
_DRIFT_EVENTS = """
CREATE TABLE IF NOT EXISTS drift_events (
    ts DateTime64(3, 'UTC'),
    model LowCardinality(String),
    version UInt32,
    feature LowCardinality(String),
    statistic Float64,
    p_value Float64,
    p_adjusted Float64,
    threshold Float64,
    drifted UInt8,
    window_rows UInt32
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (model, version, feature, ts)
TTL toDateTime(ts) + INTERVAL 90 DAY
"""

# Forecasts per series and step ahead (the row of `ts` + `horizon_seconds` is the forecast of
# that instant made at `ts`), exhaustion warnings, and replica recommendations: see
# airis.operators.planning.forecaster / capacity / scaling and airis.operators.planning.events.
_FORECASTS = """
CREATE TABLE IF NOT EXISTS forecasts (
    ts DateTime64(3, 'UTC'),
    service LowCardinality(String),
    signal LowCardinality(String),
    horizon_seconds UInt32,
    forecast Float64,
    lower Float64,
    upper Float64,
    model LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (service, signal, ts, horizon_seconds)
TTL toDateTime(ts) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1
"""

_CAPACITY_WARNINGS = """
CREATE TABLE IF NOT EXISTS capacity_warnings (
    ts DateTime64(3, 'UTC'),
    service LowCardinality(String),
    signal LowCardinality(String),
    value Float64,
    threshold Float64,
    eta_seconds Float64,
    eta_low_seconds Float64,
    eta_high_seconds Float64,
    confidence Float64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (service, signal, ts)
TTL toDateTime(ts) + INTERVAL 90 DAY
"""

_SCALING_RECOMMENDATIONS = """
CREATE TABLE IF NOT EXISTS scaling_recommendations (
    ts DateTime64(3, 'UTC'),
    service LowCardinality(String),
    signal LowCardinality(String),
    current_replicas UInt32,
    desired_replicas UInt32,
    factor Float64,
    metric Float64,
    target Float64,
    action LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (service, signal, ts)
TTL toDateTime(ts) + INTERVAL 90 DAY
"""

# One row per service window scored by a registered ONNX model (airis.models.serving): which
# version scored it is part of the key, so a hot reload's switch is visible window by window.
_MODEL_SCORES = """
CREATE TABLE IF NOT EXISTS model_scores (
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    service LowCardinality(String),
    model LowCardinality(String),
    version UInt32,
    score Float64,
    error Float64,
    providers Array(LowCardinality(String))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (model, service, window_start, version)
TTL toDateTime(window_start) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1
"""

#: Every migration, in order. Append only.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial_schema", (_METRICS, _ANOMALIES, _ALERTS, _DEAD_LETTERS)),
    Migration(
        2,
        "dead_letter_origin",
        ("ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS origin String DEFAULT ''",),
    ),
    Migration(3, "incidents_and_rca", (_INCIDENTS, _RCA_CANDIDATES)),
    Migration(4, "logs", (_OTEL_LOGS, _LOG_TEMPLATES)),
    Migration(
        5,
        "traces",
        (_OTEL_TRACES, _OTEL_TRACES_TRACE_ID_TS, _OTEL_TRACES_TRACE_ID_TS_MV, _SERVICE_EDGES),
    ),
    Migration(
        6,
        "incident_log_templates",
        ("ALTER TABLE incidents ADD COLUMN IF NOT EXISTS log_templates Array(String)",),
    ),
    Migration(
        7, "forecasts_and_capacity", (_FORECASTS, _CAPACITY_WARNINGS, _SCALING_RECOMMENDATIONS)
    ),
    Migration(8, "drift_events", (_DRIFT_EVENTS,)),
    Migration(9, "model_scores", (_MODEL_SCORES,)),
)

# Plain MergeTree and DateTime so that even old servers can hold the bookkeeping table.
_CREATE_MIGRATIONS_TABLE = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
    version UInt32,
    name String,
    applied_at DateTime
)
ENGINE = MergeTree
ORDER BY version
"""


def applied_versions(store: ClickHouseStore) -> set[int]:
    """Versions recorded in ``schema_migrations`` (creating the table if needed)."""
    store.execute(_CREATE_MIGRATIONS_TABLE)
    rows = store.query(f"SELECT DISTINCT version FROM {MIGRATIONS_TABLE}")
    return {int(row["version"]) for row in rows}


def migrate(store: ClickHouseStore, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the migrations ``store`` lacks, in version order; return the versions applied.

    A second run returns ``[]``. Raises whatever the store raises if a statement fails;
    that migration stays unrecorded and is retried (from its first statement) next time.
    """
    _validate(migrations)
    done = applied_versions(store)
    applied: list[int] = []
    for migration in migrations:
        if migration.version in done:
            continue
        logger.info("applying migration %d (%s)", migration.version, migration.name)
        for statement in migration.statements:
            store.execute(statement)
        store.insert(
            MIGRATIONS_TABLE,
            ["version", "name", "applied_at"],
            [(migration.version, migration.name, datetime.now(UTC))],
        )
        applied.append(migration.version)
    if applied:
        logger.info("schema migrated to version %d in %s", applied[-1], store.database)
    return applied


def _validate(migrations: tuple[Migration, ...]) -> None:
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)) or any(v < 1 for v in versions):
        raise ValueError(f"migrations: versions must be unique, positive and ascending: {versions}")
