"""Forecasts, exhaustion warnings and replica advice as the events the sinks write.

Pure functions from the planning operators' records (`airis.operators.forecaster`,
`capacity`, `scaling`) to `airis.events` models; `airis.sinks.clickhouse_sink.TABLES` turns
those into rows of the ``forecasts``, ``capacity_warnings`` and ``scaling_recommendations``
tables (migration 7).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from airis.events import CapacityWarning, ForecastPoint, ScalingAdvice
from airis.operators.capacity import ExhaustionWarning
from airis.operators.forecaster import Forecast
from airis.operators.scaling import ScalingRecommendation

__all__ = ["capacity_warning", "forecast_points", "scaling_advice"]

logger = logging.getLogger(__name__)

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
    return [
        ForecastPoint(
            ts=ts,
            service=service,
            signal=signal,
            horizon_seconds=round(i * step_seconds),
            forecast=forecast.mean[i - 1],
            lower=forecast.lower[i - 1],
            upper=forecast.upper[i - 1],
            model=model,
        )
        for i in chosen
    ]


def capacity_warning(service: str, signal: str, warning: ExhaustionWarning) -> CapacityWarning:
    """The event of one exhaustion warning."""
    w = warning
    return CapacityWarning(
        ts=w.ts,
        service=service,
        signal=signal,
        value=w.value,
        threshold=w.threshold,
        eta_seconds=w.eta_seconds,
        eta_low_seconds=w.eta_low_seconds,
        eta_high_seconds=w.eta_high_seconds,
        confidence=w.confidence,
    )


def scaling_advice(
    ts: datetime, service: str, signal: str, recommendation: ScalingRecommendation
) -> ScalingAdvice:
    """The event of one replica recommendation."""
    r = recommendation
    return ScalingAdvice(
        ts=ts,
        service=service,
        signal=signal,
        current_replicas=r.current_replicas,
        desired_replicas=r.desired_replicas,
        factor=r.factor,
        metric=r.metric,
        target=r.target,
        action=r.action,
    )
