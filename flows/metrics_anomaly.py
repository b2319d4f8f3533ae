"""The metrics dataflow: validate → detect per series → window per service → alert → store.

Run it with ``python -m bytewax.run "airis.flows.metrics_anomaly:build_flow()"`` (the built-in
simulator into the ClickHouse store of ``AIRIS_*`` settings); tests, ``airis demo`` and
``airis run`` pass their own source and sink.
"""

from __future__ import annotations

import copy
import itertools
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.operators.windowing import EventClock, TumblingWindower, fold_window
from bytewax.outputs import Sink

from airis import telemetry
from airis.events import Alert, Anomaly, DeadLetter, MetricPoint
from airis.operators.alert_manager import AlertManager
from airis.operators.detector_bank import DetectorBank
from airis.operators.service_window import add_point, close_window, merge_summaries, new_summaries
from airis.operators.types import ScoredPoint
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
ALIGN_TO = datetime(2000, 1, 1, tzinfo=UTC)


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


class ResumingEventClock(EventClock):
    """An `EventClock` whose watermark does not advance while the dataflow is down.

    Bytewax's clock adds the system time elapsed since the last event to the watermark; after
    a restart that includes the downtime, so a resumed flow would close the open windows at
    once and send the replayed events to the late path. Resuming restarts that system-time
    allowance at the moment of the restart instead.
    """

    def build(self, resume_state: Any) -> Any:  # the state type is private to Bytewax
        if resume_state is not None:
            resume_state = copy.copy(resume_state)
            resume_state.system_time_of_max_event = self.now_getter()
        return super().build(resume_state)


@dataclass(frozen=True)
class Detected:
    """The streams `detect_and_alert` adds to a flow."""

    anomalies: Stream[Anomaly]
    alerts: Stream[Alert]
    late: Stream[DeadLetter]


def detect_and_alert(points: Stream[MetricPoint], settings: Settings) -> Detected:
    """Detect per series, window per service, alert: the steps every metrics flow shares."""
    window = timedelta(seconds=settings.window_seconds)
    by_service = op.key_on("key_by_service", points, lambda p: p.service)  # (svc, MetricPoint)
    scored = op.stateful_map("detect", by_service, _detect)  # (service, ScoredPoint)

    clock = ResumingEventClock(
        lambda s: s.point.ts,
        wait_for_system_duration=timedelta(seconds=settings.allowed_lateness_seconds),
    )
    windows = fold_window(
        "window",
        scored,
        clock,
        TumblingWindower(length=window, align_to=ALIGN_TO),
        builder=new_summaries,
        folder=add_point,
        merger=merge_summaries,
    )  # (service, (window_id, {signal: SignalSummary}))
    closed = op.map(
        "close_window",
        windows.down,
        lambda kv: (kv[0], _close(kv[0], kv[1], window, settings)),
    )  # (service, ServiceWindow)
    late = op.map("late_to_dead_letter", windows.late, _late_dead_letter)  # DeadLetter
    late = op.inspect("count_late", late, _count_dead("late"))

    alerts = op.stateful_map("alert", closed, _alert_manager(settings))  # (service, [Alert])
    alerts = op.flat_map("flatten_alerts", alerts, lambda kv: kv[1])  # Alert
    anomalies = op.flat_map("anomalies", closed, lambda kv: kv[1].anomalies)  # Anomaly
    return Detected(anomalies, alerts, late)


_detect_calls = itertools.count()


def _detect(bank: DetectorBank | None, point: MetricPoint) -> tuple[DetectorBank, ScoredPoint]:
    bank = bank or DetectorBank()
    if next(_detect_calls) % telemetry.DETECT_SAMPLE_EVERY:
        return bank, bank.update_one(point)
    started = time.perf_counter()
    scored = bank.update_one(point)
    telemetry.DETECT_SECONDS.observe(time.perf_counter() - started)
    return bank, scored


def _close(service: str, item: tuple[int, dict], window: timedelta, settings: Settings) -> Any:
    window_id, summaries = item
    start = ALIGN_TO + window * window_id
    return close_window(
        service, start, start + window, summaries, settings.anomaly_threshold, detector="robust"
    )


def _alert_manager(settings: Settings):
    def alert(manager: AlertManager | None, window) -> tuple[AlertManager, list]:
        manager = manager or AlertManager(
            open_after=settings.alert_open_after, resolve_after=settings.alert_resolve_after
        )
        return manager, manager.update_one(window)

    return alert


def _late_dead_letter(kv: tuple[str, tuple[int, ScoredPoint]]) -> DeadLetter:
    point = kv[1][1].point
    return dead_letter(point.model_dump(mode="json"), SOURCE, "late: its window had closed")


def _count_dead(kind: str):
    counter = telemetry.DEAD_LETTERS.labels(source=SOURCE, reason=kind)
    return lambda _step, _item: counter.inc()


def _default_source(settings: Settings) -> Source:
    return simulator_source(recent_simulation(DEFAULT_SIMULATED_HOURS, DEFAULT_SIMULATOR_SEED))


def _default_sink(settings: Settings) -> Sink:
    return ClickHouseSink(settings)
