"""Forecasts, exhaustion warnings and replica advice as the events the
sinks write.

Pure functions from the planning operators' records (`airis.operators.planning.forecaster`,
`capacity`, `scaling`) to `airis.events` models; `airis.sinks.clickhouse_encoding.TABLES` turns
those into rows of the ``forecasts``, ``capacity_warnings`` and ``scaling_recommendations``
tables (migration 7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from airis.events import CapacityWarning, ForecastPoint, ScalingAdvice, constructed
from airis.operators.planning.capacity import ExhaustionWarning
from airis.operators.planning.forecaster import Forecast
from airis.operators.planning.scaling import ScalingRecommendation
from airis.operators.planning.service_planner import Plan

__all__ = [
    "capacity_warning",
    "forecast_points",
    "plan_events",
    "scaling_advice",
]


FORECAST_MODEL = "interval_forecaster"


def forecast_points(
    ts: datetime,
    service: str,
    signal: str,
    forecast: Forecast,
    step_seconds: float,
    steps: Sequence[int] | None = None,
    model: str = FORECAST_MODEL,
) -> list[ForecastPoint]:
    """One point per step ahead (``steps``, from 1; default all): step ``i`` forecasts
    ``ts + i * step_seconds``.

    >>> from datetime import UTC, datetime
    >>> f = Forecast((1.0, 2.0), (0.5, 1.0), (1.5, 3.0), 0.9, True)
    >>> p = forecast_points(datetime(2026, 1, 1, tzinfo=UTC), "api", "cpu", f, 60)[1]
    >>> p.horizon_seconds, p.forecast, p.lower, p.upper
    (120, 2.0, 1.0, 3.0)
    """
    chosen = steps or range(1, len(forecast.mean) + 1)
    points: list[ForecastPoint] = []
    first: ForecastPoint | None = None
    for i in chosen:
        horizon, mean = round(i * step_seconds), forecast.mean[i - 1]
        lower, upper = forecast.lower[i - 1], forecast.upper[i - 1]
        if first is not None and _plainly_valid(horizon, mean, lower, upper):
            # The first point's validated fields, with this step's: validating the same
            # timestamp and names again cost two thirds of making a point.
            fields = {**first.__dict__, "horizon_seconds": horizon, "forecast": mean,
                      "lower": lower, "upper": upper}  # fmt: skip
            points.append(constructed(ForecastPoint, fields, first.__pydantic_fields_set__))
            continue
        point = ForecastPoint(
            ts=ts, service=service, signal=signal, horizon_seconds=horizon,
            forecast=mean, lower=lower, upper=upper, model=model,
        )  # fmt: skip
        if first is None:
            first = point
        points.append(point)
    return points


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


def plan_events(service: str, plan: Plan, steps: list[int]) -> list[Any]:
    """The events of one `ServicePlanner` update."""
    out: list[Any] = []
    if plan.ts is None:
        return out
    for signal, forecast in plan.forecasts.items():
        out += forecast_points(plan.ts, service, signal, forecast, plan.step_seconds, steps)
    out += [capacity_warning(service, s, w) for s, w in plan.warnings.items()]
    if plan.advice is not None:
        signal, recommendation = plan.advice
        out.append(scaling_advice(plan.ts, service, signal, recommendation))
    return out
