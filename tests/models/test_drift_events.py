"""Drift reports into the real embedded ClickHouse (chdb) through migration 8, and metrics."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
from prometheus_client import REGISTRY

from airis.events import DriftEvent
from airis.models.drift_events import drift_events, record_drift_metrics
from airis.operators.drift.ks_drift import KSDrift
from airis.sinks.chdb_store import ChdbStore
from airis.sinks.clickhouse_encoding import TABLES, encode_batch
from airis.sinks.migrations import migrate

FEATURES = ("cpu", "latency", "errors")


def _report(shift: float, seed: int = 3):
    rng = np.random.default_rng(seed)
    drift = KSDrift(rng.normal(size=(2000, 3)), FEATURES, window=400)
    live = rng.normal(size=(400, 3))
    live[:, 1] += shift
    report = drift.update_batch(live)
    assert report is not None
    return report


def test_rows_follow_the_table_columns_and_round_trip_through_chdb(store: ChdbStore) -> None:
    migrate(store)
    table_columns = [
        r["name"]
        for r in store.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase()"
            " AND table = 'drift_events' ORDER BY position"
        )
    ]
    spec = TABLES[DriftEvent]
    assert tuple(table_columns) == spec.columns

    report = _report(shift=1.0)
    ts = datetime(2026, 11, 25, 12, 0, 0, 250_000, tzinfo=UTC)
    events = drift_events(report, ts=ts, model="autoencoder", version=4, threshold=0.01)
    assert len(events) == len(FEATURES)
    rows, rejected = encode_batch(events)
    assert not rejected
    store.insert("drift_events", spec.columns, rows["drift_events"])
    # Replaying the same window writes the same keys: one row each after FINAL.
    store.insert("drift_events", spec.columns, rows["drift_events"])

    back = store.query("SELECT * FROM drift_events FINAL ORDER BY feature")
    assert [r["feature"] for r in back] == sorted(FEATURES)
    by_feature = {r["feature"]: r for r in back}
    assert by_feature["latency"]["drifted"] == 1
    assert by_feature["cpu"]["drifted"] == 0 and by_feature["errors"]["drifted"] == 0
    for feature in FEATURES:
        row = by_feature[feature]
        assert row["model"] == "autoencoder" and row["version"] == 4
        assert row["window_rows"] == 400 and row["threshold"] == 0.01
        assert math.isclose(row["p_value"], report.p_values[feature], rel_tol=1e-12)
        assert math.isclose(row["p_adjusted"], report.adjusted_p_values[feature], rel_tol=1e-12)
        assert math.isclose(row["statistic"], report.statistic[feature], rel_tol=1e-12)
        assert row["ts"].startswith("2026-11-25 12:00:00.250")


def test_metrics_show_p_values_and_count_drifted_windows() -> None:
    def events() -> float:
        value = REGISTRY.get_sample_value(
            "airis_model_drift_events_total", {"model": "metrics-test"}
        )
        return value or 0.0

    before = events()
    calm = _report(shift=0.0, seed=5)
    assert calm.drifted == ()
    record_drift_metrics(calm, model="metrics-test")
    assert events() == before
    gauge = REGISTRY.get_sample_value(
        "airis_model_drift_p_value", {"model": "metrics-test", "feature": "latency"}
    )
    assert gauge == calm.p_values["latency"]

    shifted = _report(shift=1.0)
    record_drift_metrics(shifted, model="metrics-test")
    assert events() == before + 1
    gauge = REGISTRY.get_sample_value(
        "airis_model_drift_p_value", {"model": "metrics-test", "feature": "latency"}
    )
    assert gauge == shifted.p_values["latency"] < 1e-6
