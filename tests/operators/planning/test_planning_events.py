"""Forecast, warning and advice events go through the ClickHouse sink's encoders into the real
migration-7 tables and back."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from airis.batches import ForecastBatch
from airis.events import CapacityWarning, ForecastPoint, ScalingAdvice
from airis.operators.planning.capacity import ExhaustionPredictor
from airis.operators.planning.events import capacity_warning, forecast_batch, scaling_advice
from airis.operators.planning.forecaster import Forecast, IntervalForecaster
from airis.operators.planning.scaling import ScalingAdvisor
from airis.operators.planning.service_planner import Plan
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
    assert _columns(store, "forecasts") == TABLES[ForecastBatch].columns
    assert _columns(store, "capacity_warnings") == TABLES[CapacityWarning].columns
    assert _columns(store, "scaling_recommendations") == TABLES[ScalingAdvice].columns


def test_forecast_rows_round_trip(store: ChdbStore) -> None:
    migrate(store)
    model = IntervalForecaster(horizon=3, season=None)
    for i in range(100):
        model.learn_one(40.0 + i % 5)
    forecast = model.forecast()
    points = [forecast_batch("api", [Plan(T0, 60.0, {"cpu": forecast})])]
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


_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 5),
    st.floats(-1e6, 1e6).map(np.float64),
)
# Times and names the checks vouch for, and ones validation converts or refuses.
_TIMES = st.sampled_from(
    [T0, T0 + timedelta(minutes=5), T0.astimezone(timezone(timedelta(hours=2))),
     T0.replace(tzinfo=None), datetime(2100, 1, 1, tzinfo=UTC)]
)  # fmt: skip
_NAMES = st.sampled_from(["cpu", "memory", "disk io", ""])
_FORECASTS = st.lists(st.tuples(_VALUES, _VALUES, _VALUES), min_size=1, max_size=6)
_PLANS = st.lists(
    st.tuples(st.none() | _TIMES, st.dictionaries(_NAMES, _FORECASTS, max_size=3)), max_size=4
)


@settings(max_examples=500, deadline=None)
@example(
    plans=[(T0, {"cpu": [(1.0, 0.5, 1.5)] * 3})], step_seconds=0.2, steps=[3, 1], service="api"
)  # a later horizon of 0
@example(
    plans=[(T0, {"cpu": [(1.0, 0.5, 1.5), (1.0, math.inf, 1.5)]})],
    step_seconds=60.0,
    steps=None,
    service="api",
)
# Each check alone refusing what it must (the points valid but for it).
@example(plans=[(T0, {"disk io": [(1.0, 0.5, 1.5)]})], step_seconds=60.0, steps=None, service="api")
@example(
    plans=[(T0, {"cpu": [(1.0, 0.5, 1.5)]})], step_seconds=60.0, steps=None, service="bad service"
)
@example(
    plans=[(datetime(2100, 1, 1, tzinfo=UTC), {"cpu": [(1.0, 0.5, 1.5)]})],
    step_seconds=60.0,
    steps=None,
    service="api",
)
@given(
    plans=_PLANS,
    step_seconds=st.sampled_from([0.2, 0.6, 1.0, 60.0, 300.0]),
    steps=st.none() | st.lists(st.integers(1, 6), min_size=1, max_size=4),
    service=st.sampled_from(["api", "bad service"]),
)
def test_a_forecast_batch_holds_the_validated_points(
    plans: list[tuple[datetime | None, dict[str, list[tuple[Any, Any, Any]]]]],
    step_seconds: float,
    steps: list[int] | None,
    service: str,
) -> None:
    made = []
    for ts, forecasts in plans:
        columns = {s: tuple(zip(*v, strict=True)) for s, v in forecasts.items()}
        made.append(
            Plan(ts, step_seconds, {s: Forecast(*c, 0.9, True) for s, c in columns.items()})
        )
    shortest = min((len(v) for _, f in plans for v in f.values()), default=6)
    steps = [s for s in steps if s <= shortest] if steps else None

    def validated() -> list[ForecastPoint]:
        return [
            ForecastPoint(
                ts=plan.ts,
                service=service,
                signal=signal,
                horizon_seconds=round(i * step_seconds),
                forecast=forecast.mean[i - 1],
                lower=forecast.lower[i - 1],
                upper=forecast.upper[i - 1],
                model="interval_forecaster",
            )
            for plan in made
            if plan.ts is not None
            for signal, forecast in plan.forecasts.items()
            for i in (steps or range(1, len(forecast.mean) + 1))
        ]

    try:
        expected = validated()
    except ValidationError:
        with pytest.raises(ValidationError):
            forecast_batch(service, made, steps)
        return
    batch = forecast_batch(service, made, steps)
    if not expected:
        assert batch is None
        return
    assert batch is not None and batch.service == service
    got = batch.events()
    assert got == expected
    for a, b in zip(got, expected, strict=True):
        assert list(a.__dict__.items()) == list(b.__dict__.items())
        assert [type(v) for v in a.__dict__.values()] == [type(v) for v in b.__dict__.values()]
        assert a.model_fields_set == b.model_fields_set
        assert a.model_dump_json() == b.model_dump_json()
