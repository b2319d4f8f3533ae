"""Drift reports out: events for the ``drift_events`` table, and Prometheus metrics.

`drift_events` turns a report into events (the ClickHouse sink writes them, migration 8);
`record_drift_metrics` sets the ``airis_model_drift_p_value`` gauges and counts a drifted
window in ``airis_model_drift_events_total``.
"""

from __future__ import annotations

import math
from datetime import datetime

from airis.events import DriftEvent
from airis.operators.drift.ks_drift import DriftReport
from airis.telemetry import DRIFT_EVENTS, DRIFT_P_VALUE

__all__ = ["drift_events", "record_drift_metrics"]


def drift_events(
    report: DriftReport, *, ts: datetime, model: str, version: int, threshold: float
) -> list[DriftEvent]:
    """One `DriftEvent` per tested feature of ``report`` (drifted or not, so the table also
    holds the p-value history); a feature that could not be tested (no finite values) has
    none.

    ``ts`` identifies the window (use an event time, e.g. that of its last row, so that a
    replay writes the same key); ``threshold`` is the detector's ``p_threshold``.

    >>> from datetime import UTC
    >>> report = DriftReport(p_values={"a": 0.001, "b": float("nan")}, statistic={"a": 0.2,
    ...     "b": float("nan")}, adjusted_p_values={"a": 0.002, "b": float("nan")},
    ...     drifted=("a",), min_p=0.001, rows=500)
    >>> [(e.feature, e.drifted) for e in drift_events(
    ...     report, ts=datetime(2026, 1, 1, tzinfo=UTC), model="ae", version=3, threshold=0.01)]
    [('a', True)]
    """
    return [
        DriftEvent(
            ts=ts,
            model=model,
            version=version,
            feature=feature,
            statistic=report.statistic[feature],
            p_value=p_value,
            p_adjusted=report.adjusted_p_values[feature],
            threshold=threshold,
            drifted=feature in report.drifted,
            window_rows=report.rows,
        )
        for feature, p_value in report.p_values.items()
        if math.isfinite(p_value)
    ]


def record_drift_metrics(report: DriftReport, *, model: str) -> None:
    """Set each feature's p-value gauge; count the window as a drift event if it drifted."""
    for feature, p_value in report.p_values.items():
        DRIFT_P_VALUE.labels(model=model, feature=feature).set(p_value)
    if report.drift:
        DRIFT_EVENTS.labels(model=model).inc()
