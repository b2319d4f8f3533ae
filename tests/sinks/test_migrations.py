"""Migrations against the real embedded chdb: idempotent, tables as designed.

One chdb directory for the module (chdb serves one directory per process), one database per
test.
"""

from __future__ import annotations

import pytest

from airis.sinks.chdb_store import ChdbStore
from airis.sinks.migrations import (
    MIGRATIONS,
    MIGRATIONS_TABLE,
    Migration,
    applied_versions,
    migrate,
)


def _tables(store: ChdbStore) -> dict[str, dict[str, str]]:
    rows = store.query(
        "SELECT name, engine, sorting_key, partition_key, create_table_query"
        " FROM system.tables WHERE database = currentDatabase()"
    )
    return {row.pop("name"): row for row in rows}


def _columns(store: ChdbStore, table: str) -> dict[str, str]:
    rows = store.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase()"
        f" AND table = '{table}' ORDER BY position"
    )
    return {row["name"]: row["type"] for row in rows}


def test_migrating_twice_is_a_no_op(store: ChdbStore) -> None:
    assert migrate(store) == [m.version for m in MIGRATIONS]
    assert migrate(store) == []
    rows = store.query(f"SELECT version, name, applied_at FROM {MIGRATIONS_TABLE} ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [
        (1, "initial_schema"),
        (2, "dead_letter_origin"),
        (3, "incidents_and_rca"),
        (4, "logs"),
        (5, "traces"),
        (6, "incident_log_templates"),
        (7, "forecasts_and_capacity"),
        (8, "drift_events"),
        (9, "model_scores"),
    ]
    assert applied_versions(store) == set(range(1, 10))


def test_tables_have_the_designed_engines_keys_and_ttls(store: ChdbStore) -> None:
    migrate(store)
    tables = _tables(store)
    expected = {
        "metrics": ("ReplacingMergeTree", "service, signal, ts", "toYYYYMMDD(ts)", "30 DAY"),
        "anomalies": (
            "ReplacingMergeTree",
            "service, signal, window_start, kind",
            "toYYYYMM(window_start)",
            "90 DAY",
        ),
        "alerts": (
            "ReplacingMergeTree",
            "fingerprint, starts_at, status",
            "toYYYYMM(starts_at)",
            "180 DAY",
        ),
        "dead_letters": ("MergeTree", "source, received_at", "toYYYYMM(received_at)", "30 DAY"),
        "incidents": ("ReplacingMergeTree", "id", "toYYYYMM(started_at)", "365 DAY"),
        "rca_candidates": ("ReplacingMergeTree", "incident_id, rank", "", None),
        "otel_logs": (
            "ReplacingMergeTree",
            "toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp, cityHash64(Body)",
            "toDate(Timestamp)",
            "30 DAY",
        ),
        "log_templates": ("ReplacingMergeTree", "service, template_id", "", None),
        "otel_traces": (
            "ReplacingMergeTree",
            "ServiceName, SpanName, toDateTime(Timestamp), Timestamp, TraceId, SpanId",
            "toDate(Timestamp)",
            "30 DAY",
        ),
        "otel_traces_trace_id_ts": ("MergeTree", "TraceId, Start", "toDate(Start)", "30 DAY"),
        "otel_traces_trace_id_ts_mv": ("MaterializedView", "", "", None),
        "service_edges": (
            "ReplacingMergeTree",
            "caller, callee, window_start",
            "toDate(window_start)",
            None,
        ),
        "forecasts": (
            "ReplacingMergeTree",
            "service, signal, ts, horizon_seconds",
            "toYYYYMMDD(ts)",
            "30 DAY",
        ),
        "capacity_warnings": (
            "ReplacingMergeTree",
            "service, signal, ts",
            "toYYYYMM(ts)",
            "90 DAY",
        ),
        "scaling_recommendations": (
            "ReplacingMergeTree",
            "service, signal, ts",
            "toYYYYMM(ts)",
            "90 DAY",
        ),
        "drift_events": (
            "ReplacingMergeTree",
            "model, version, feature, ts",
            "toYYYYMM(ts)",
            "90 DAY",
        ),
        "model_scores": (
            "ReplacingMergeTree",
            "model, service, window_start, version",
            "toYYYYMMDD(window_start)",
            "30 DAY",
        ),
        MIGRATIONS_TABLE: ("MergeTree", "version", "", None),
    }
    assert set(tables) == set(expected)
    for name, (engine, sorting_key, partition_key, ttl) in expected.items():
        table = tables[name]
        assert (table["engine"], table["sorting_key"], table["partition_key"]) == (
            engine,
            sorting_key,
            partition_key,
        ), name
        if ttl is not None:
            assert "TTL toDateTime(" in table["create_table_query"], name
            assert f"toIntervalDay({ttl.split()[0]})" in table["create_table_query"], name


def test_column_types(store: ChdbStore) -> None:
    migrate(store)
    lc = "LowCardinality(String)"
    ts = "DateTime64(3, 'UTC')"
    labels = f"Map({lc}, String)"
    assert _columns(store, "metrics") == {
        "ts": ts, "service": lc, "signal": lc, "value": "Float64", "labels": labels,
    }  # fmt: skip
    assert _columns(store, "anomalies") == {
        "id": "String", "service": lc, "signal": lc, "kind": lc, "window_start": ts,
        "window_end": ts, "score": "Float64", "observed": "Float64", "expected": "Float64",
        "lower": "Float64", "upper": "Float64", "state": lc, "detector": lc,
    }  # fmt: skip
    assert _columns(store, "alerts") == {
        "id": "String", "fingerprint": "String", "status": lc, "service": lc, "signal": lc,
        "kind": lc, "severity": lc, "starts_at": ts, "ends_at": f"Nullable({ts})",
        "updated_at": f"Nullable({ts})", "score": "Float64", "summary": "String",
        "labels": labels,
    }  # fmt: skip
    assert _columns(store, "dead_letters") == {
        "received_at": ts, "source": lc, "reason": "String", "payload": "String",
        "truncated": "UInt8", "origin": "String",
    }  # fmt: skip


def test_a_new_migration_applies_alone(store: ChdbStore) -> None:
    migrate(store)
    extra = Migration(
        len(MIGRATIONS) + 1,
        "add_host",
        ("ALTER TABLE metrics ADD COLUMN IF NOT EXISTS host LowCardinality(String) DEFAULT ''",),
    )
    assert migrate(store, (*MIGRATIONS, extra)) == [len(MIGRATIONS) + 1]
    assert migrate(store, (*MIGRATIONS, extra)) == []
    assert "host" in _columns(store, "metrics")


def test_a_failed_migration_is_not_recorded_and_is_retried(store: ChdbStore) -> None:
    broken = Migration(1, "broken", ("CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Nope",))
    with pytest.raises(RuntimeError):
        migrate(store, (broken,))
    assert applied_versions(store) == set()
    assert migrate(store) == [m.version for m in MIGRATIONS]


@pytest.mark.parametrize(
    "versions", [(2, 1), (1, 1), (0,)], ids=["descending", "duplicate", "zero"]
)
def test_versions_must_be_unique_positive_ascending(
    store: ChdbStore, versions: tuple[int, ...]
) -> None:
    migrations = tuple(Migration(v, f"m{v}", ()) for v in versions)
    with pytest.raises(ValueError, match="versions"):
        migrate(store, migrations)
