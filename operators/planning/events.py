"""Forecasts, exhaustion warnings and replica advice as the events the
sinks write.

Pure functions from the planning operators' records (`airis.operators.planning.forecaster`,
`capacity`, `scaling`) to `airis.events` models, and the forecast points to a
`ForecastBatch` of columns; `airis.sinks.clickhouse_encoding.TABLES` turns those into rows of
the ``forecasts``, ``capacity_warnings`` and ``scaling_recommendations`` tables (migration 7).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from airis.batches import ForecastBatch, plain_name, plain_time
from airis.events import CapacityWarning, ScalingAdvice
from airis.operators.planning.capacity import ExhaustionWarning
from airis.operators.planning.scaling import ScalingRecommendation
from airis.operators.planning.service_planner import Plan

__all__ = [
    "capacity_warning",
    "forecast_batch",
    "plan_events",
    "scaling_advice",
]


FORECAST_MODEL = "interval_forecaster"


def forecast_batch(
    service: str,
    plans: Iterable[Plan],
    steps: Sequence[int] | None = None,
    model: str = FORECAST_MODEL,
) -> ForecastBatch | None:
    """The points of every forecast the ``plans`` carry, as one batch of ``service`` (None:
    no forecast): one point per step ahead (``steps``, from 1; default all), step ``i`` of a
    forecast made at ``ts`` forecasting ``ts + i * step_seconds``.

    Each point is what `ForecastPoint` validates (raising what it raises), without a model
    per point: a point whose fields the checks here vouch for is taken as it is, any other
    one is validated. Made, routed and encoded one by one as events, the points cost the
    OTLP flow 4–10 % of its rate (`benchmarks/bench_kafka.py`, 2026-12-07).

    >>> from datetime import UTC
    >>> from airis.operators.planning.forecaster import Forecast
    >>> f = Forecast((1.0, 2.0), (0.5, 1.0), (1.5, 3.0), 0.9, True)
    >>> plan = Plan(datetime(2026, 1, 1, tzinfo=UTC), 60, {"cpu": f})
    >>> batch = forecast_batch("api", [plan])
    >>> batch.column("horizon_seconds"), batch.column("upper")
    ((60, 120), (1.5, 3.0))
    >>> p = batch.events()[1]
    >>> p.signal, p.horizon_seconds, p.forecast, p.lower, p.upper
    ('cpu', 120, 2.0, 1.0, 3.0)
    """
    rows: list[tuple[Any, ...]] = []
    named = plain_name(service) and type(model) is str
    for plan in plans:
        ts, step_seconds = plan.ts, plan.step_seconds
        if ts is None:
            continue
        timely = named and plain_time(ts)
        for signal, forecast in plan.forecasts.items():
            vouched = timely and plain_name(signal)
            mean, lower, upper = forecast.mean, forecast.lower, forecast.upper
            for i in steps or range(1, len(mean) + 1):
                row = (ts, service, signal, round(i * step_seconds), mean[i - 1],
                       lower[i - 1], upper[i - 1], model)  # fmt: skip
                if not (vouched and _plainly_valid(*row[3:7])):
                    row = ForecastBatch.validated(row)
                rows.append(row)
    return ForecastBatch(service, tuple(zip(*rows, strict=True))) if rows else None


def _plainly_valid(horizon: object, mean: object, lower: object, upper: object) -> bool:
    """Whether a point's own fields are what validation keeps as they are: a whole horizon
    of at least 1 and finite floats (`ForecastPoint`). A finite sum means finite terms; a
    sum that overflows only sends the point through validation."""
    return (
        type(horizon) is int and horizon >= 1
        and type(mean) is float and type(lower) is float and type(upper) is float
        and math.isfinite(mean + lower + upper)
    )  # fmt: skip


def capacity_warning(service: str, signal: str, warning: ExhaustionWarning) -> CapacityWarning:
    """The event of one exhaustion warning."""
    fields = asdict(warning)
    del fields["slope_per_hour"]  # in the warning's text, not a column
    return CapacityWarning(service=service, signal=signal, **fields)


def scaling_advice(
    ts: datetime, service: str, signal: str, recommendation: ScalingRecommendation
) -> ScalingAdvice:
    """The event of one replica recommendation."""
    return ScalingAdvice(ts=ts, service=service, signal=signal, **asdict(recommendation))


def plan_events(service: str, plans: Sequence[Plan], steps: list[int]) -> list[Any]:
    """The events of a `ServicePlanner` update's ``plans``: their forecasts as one
    `ForecastBatch`, then each plan's warnings and advice."""
    batch = forecast_batch(service, plans, steps)
    out: list[Any] = [] if batch is None else [batch]
    for plan in plans:
        if plan.ts is None:
            continue
        out += [capacity_warning(service, s, w) for s, w in plan.warnings.items()]
        if plan.advice is not None:
            signal, recommendation = plan.advice
            out.append(scaling_advice(plan.ts, service, signal, recommendation))
    return out
