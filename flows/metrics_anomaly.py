"""The metrics dataflow: validate → detect and window per service → alert → store.

Run it with ``python -m bytewax.run "airis.flows.metrics_anomaly:build_flow()"`` (the built-in
simulator into the ClickHouse store of ``AIRIS_*`` settings); tests, ``airis demo`` and
``airis run`` pass their own source and sink.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import Sink

from airis import telemetry
from airis.events import Alert, Anomaly, DeadLetter, MetricPoint
from airis.operators.alert_manager import AlertManager
from airis.operators.types import ServiceWindow
from airis.operators.windowed_detector import ServiceWindowDetector
from airis.settings import Settings
from airis.sinks.clickhouse_sink import ClickHouseSink
from airis.sources.decode import dead_letter, decode_metric
from airis.sources.iterable_source import simulator_source
from airis.sources.simulator import recent_simulation

logger = logging.getLogger(__name__)

SOURCE = "metrics"
#: Without a source the flow reads the built-in simulator: the last 24 h, seed 7.
DEFAULT_SIMULATED_HOURS = 24.0
DEFAULT_SIMULATOR_SEED = 7


def build_flow(
    source: Source | None = None, sink: Sink | None = None, settings: Settings | None = None
) -> Dataflow:
    """The metrics anomaly dataflow; defaults come from ``AIRIS_*`` settings."""
    settings = settings or Settings()
    source = source or _default_source(settings)
    sink = sink or _default_sink(settings)
    flow = Dataflow("airis_metrics")

    raw = op.input("read", flow, source)  # dict | bytes
    decoded = op.map("validate", raw, lambda item: decode_metric(item, SOURCE))
    valid = op.branch("split_invalid", decoded, lambda e: isinstance(e, MetricPoint))
    points = valid.trues  # MetricPoint
    invalid = op.inspect("count_invalid", valid.falses, _count_dead("invalid"))  # DeadLetter

    detected = detect_and_alert(points, settings)
    stored = op.merge(
        "collect", points, detected.anomalies, detected.alerts, invalid, detected.late
    )
    op.output("store", stored, sink)
    return flow


@dataclass(frozen=True)
class Detected:
    """The streams `detect_and_alert` adds to a flow."""

    anomalies: Stream[Anomaly]
    alerts: Stream[Alert]
    late: Stream[DeadLetter]


def detect_and_alert(points: Stream[MetricPoint], settings: Settings) -> Detected:
    """Detect per series, window per service, alert: the steps every metrics flow shares."""
    by_service = op.key_on("key_by_service", points, lambda p: p.service)  # (svc, MetricPoint)
    windowed = op.stateful_batch("detect_and_window", by_service, _windowing(settings))
    split = op.branch("split_late", windowed, lambda kv: isinstance(kv[1], ServiceWindow))
    closed = split.trues  # (service, ServiceWindow)
    late = op.map("late_dead_letters", split.falses, lambda kv: kv[1])  # DeadLetter

    alerts = op.stateful_map("alert", closed, _alert_manager(settings))  # (service, [Alert])
    alerts = op.flat_map("flatten_alerts", alerts, lambda kv: kv[1])  # Alert
    alerts = op.inspect("count_alerts", alerts, _count_alert)
    anomalies = op.flat_map("anomalies", closed, lambda kv: kv[1].anomalies)  # Anomaly
    anomalies = op.inspect("count_anomalies", anomalies, lambda _s, _a: telemetry.ANOMALIES.inc())
    return Detected(anomalies, alerts, late)


def _count_alert(_step: str, alert: Alert) -> None:
    telemetry.ALERTS.labels(status=alert.status, severity=alert.severity).inc()


class DetectAndWindow(StatefulBatchLogic[MetricPoint, Any, ServiceWindowDetector]):
    """Bytewax's side of `ServiceWindowDetector`: one service's batches in, windows out.

    System time comes from ``time.monotonic``; Bytewax wakes the logic (``notify_at``) when
    the oldest open window is due, so a service that goes quiet still has it closed.
    """

    def __init__(self, detector: ServiceWindowDetector, resumed: bool = False) -> None:
        self.detector = detector
        if resumed:  # downtime must not count as waiting time (see `resume`)
            detector.resume(time.monotonic())

    def on_batch(self, values: list[MetricPoint]) -> tuple[list[Any], bool]:
        started = time.monotonic()
        closed, late = self.detector.update_many(values, started)
        telemetry.DETECT_SECONDS.observe((time.monotonic() - started) / len(values))
        return [*closed, *map(_late_dead_letter, late)], self.RETAIN

    def on_notify(self) -> tuple[list[Any], bool]:
        return self.detector.close_due(time.monotonic()), self.RETAIN

    def on_eof(self) -> tuple[list[Any], bool]:
        return self.detector.close_all(), self.RETAIN

    def notify_at(self) -> datetime | None:
        wait = self.detector.next_close_in(time.monotonic())
        return None if wait is None else datetime.now(UTC) + timedelta(seconds=wait)

    def snapshot(self) -> ServiceWindowDetector:
        return copy.deepcopy(self.detector)


def _windowing(settings: Settings):
    def build(resume: ServiceWindowDetector | None) -> DetectAndWindow:
        if resume is not None:
            return DetectAndWindow(resume, resumed=True)
        return DetectAndWindow(
            ServiceWindowDetector(
                window_seconds=settings.window_seconds,
                lateness_seconds=settings.allowed_lateness_seconds,
                threshold=settings.anomaly_threshold,
            )
        )

    return build


def _alert_manager(settings: Settings):
    def alert(manager: AlertManager | None, window) -> tuple[AlertManager, list]:
        manager = manager or AlertManager(
            open_after=settings.alert_open_after, resolve_after=settings.alert_resolve_after
        )
        return manager, manager.update_one(window)

    return alert


def _late_dead_letter(point: MetricPoint) -> DeadLetter:
    telemetry.DEAD_LETTERS.labels(source=SOURCE, reason="late").inc()
    telemetry.LATE_EVENTS.inc()
    return dead_letter(point.model_dump(mode="json"), SOURCE, "late: its window had closed")


def _count_dead(kind: str):
    counter = telemetry.DEAD_LETTERS.labels(source=SOURCE, reason=kind)
    return lambda _step, _item: counter.inc()


def _default_source(settings: Settings) -> Source:
    return simulator_source(recent_simulation(DEFAULT_SIMULATED_HOURS, DEFAULT_SIMULATOR_SEED))


def _default_sink(settings: Settings) -> Sink:
    return ClickHouseSink(settings)
