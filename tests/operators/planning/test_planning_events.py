"""Forecast, warning and advice events go through the ClickHouse sink's encoders into the real
migration-7 tables and back."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from airis.events import CapacityWarning, ForecastPoint, ScalingAdvice
from airis.operators.planning.capacity import ExhaustionPredictor
from airis.operators.planning.events import capacity_warning, forecast_points, scaling_advice
from airis.operators.planning.forecaster import IntervalForecaster
from airis.operators.planning.scaling import ScalingAdvisor
from airis.sinks.chdb_store import ChdbStore
from airis.sinks.clickhouse_encoding import TABLES, encode_batch
from airis.sinks.migrations import migrate

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _columns(store: ChdbStore, table: str) -> tuple[str, ...]:
    rows = store.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase()"
        f" AND table = '{table}' ORDER BY position"
    )
    return tuple(r["name"] for r in rows)


def _insert(store: ChdbStore, events) -> None:
    rows, rejected = encode_batch(events)
    assert not rejected
    for table, table_rows in rows.items():
        spec = next(s for s in TABLES.values() if s.table == table)
        store.insert(table, spec.columns, table_rows)


def test_event_fields_match_the_migrated_tables(store: ChdbStore) -> None:
    migrate(store)
    assert _columns(store, "forecasts") == TABLES[ForecastPoint].columns
    assert _columns(store, "capacity_warnings") == TABLES[CapacityWarning].columns
    assert _columns(store, "scaling_recommendations") == TABLES[ScalingAdvice].columns


def test_forecast_rows_round_trip(store: ChdbStore) -> None:
    migrate(store)
    model = IntervalForecaster(horizon=3, season=None)
    for i in range(100):
        model.learn_one(40.0 + i % 5)
    forecast = model.forecast()
    points = forecast_points(T0, "api", "cpu", forecast, step_seconds=60.0)
    _insert(store, points)
    back = store.query(
        "SELECT horizon_seconds, forecast, lower, upper, model, service, signal, ts"
        " FROM forecasts FINAL ORDER BY horizon_seconds"
    )
    assert [r["horizon_seconds"] for r in back] == [60, 120, 180]
    assert [r["forecast"] for r in back] == list(forecast.mean)
    assert [r["lower"] for r in back] == list(forecast.lower)
    assert [r["upper"] for r in back] == list(forecast.upper)
    assert {(r["service"], r["signal"], r["model"]) for r in back} == {
        ("api", "cpu", "interval_forecaster")
    }
    # A replay writes the same keys: one row per key after FINAL.
    _insert(store, points)
    assert store.query("SELECT count() AS n FROM forecasts FINAL")[0]["n"] == 3


def test_warning_and_scaling_rows_round_trip(store: ChdbStore) -> None:
    migrate(store)
    predictor = ExhaustionPredictor(threshold=90.0)
    warning = None
    for i in range(1500):  # flat for an hour, then one point a minute
        value = 50.0 + max(0, i - 360) / 6 + 0.1 * math.sin(i)
        warning = predictor.update_one(T0 + timedelta(seconds=10 * i), value) or warning
    assert warning is not None
    _insert(store, [capacity_warning("db", "disk", warning)])
    row = store.query("SELECT * FROM capacity_warnings")[0]
    assert (row["service"], row["signal"], row["threshold"]) == ("db", "disk", 90.0)
    assert row["eta_seconds"] == warning.eta_seconds
    assert row["eta_low_seconds"] <= row["eta_seconds"] <= row["eta_high_seconds"]
    assert row["confidence"] == warning.confidence

    rec = ScalingAdvisor(target=70.0).recommend(4, 91.0)
    _insert(store, [scaling_advice(T0, "api", "cpu", rec)])
    row = store.query("SELECT * FROM scaling_recommendations")[0]
    assert (row["current_replicas"], row["desired_replicas"], row["action"]) == (4, 6, "scale_up")
