"""Sub-pipelines that turn telemetry into metric points: OTLP aggregates into rates and
percentiles (`otlp_points`), log lines into per-window log signals and templates
(`log_signals`), spans into per-window RED signals and dependency edges (`trace_signals`).

Each keys its input by service with `grouped_by_service`, so that an exchange moves one item
per service and batch of input, and wraps a pure windowing operator from `airis.operators`.
Log lines and spans come as objects (decoded from Kafka) or as columns (`LogBatch`,
`SpanBatch`: the simulator's); the windows count columns either way, and the signals of the
windows closed in a batch leave as one `MetricBatch` per service (`signal_batches`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulBatchLogic

from airis import telemetry
from airis.batches import LogBatch, MetricBatch, SpanBatch
from airis.events import (
    AggregatePoint,
    DeadLetter,
    DependencyEdge,
    LogRecord,
    LogTemplate,
    MetricPoint,
    Span,
)
from airis.flows.batching import flatten, group_by, grouped_by_service
from airis.flows.detection import SOURCE, detection_key
from airis.flows.snapshots import TakeSnapshot, frozen, snapshotter, thawed
from airis.operators.signals.log_signals import LogWindow, ServiceLogSignals
from airis.operators.signals.otlp_metrics import OtlpMetricPoints
from airis.operators.signals.trace_signals import ServiceTraceSignals, TraceWindow
from airis.operators.windowing.windowed_detector import DEFAULT_IDLE_GRACE_SECONDS
from airis.settings import EventTimeConfig
from airis.sources.decode import dead_letter


@dataclass(frozen=True)
class OtlpPoints:
    """The streams `otlp_points` adds to a flow."""

    points: Stream[MetricPoint]
    refused: Stream[DeadLetter]


@operator
def otlp_points(
    step_id: str, aggregates: Stream[AggregatePoint], event_time: EventTimeConfig
) -> OtlpPoints:
    """Per service, turn OTLP Sums, Histograms and Summaries' counts into per-interval rates,
    means and percentiles (`OtlpMetricPoints`), one slot per window; refused points (out of
    order, over the series cap) become dead letters."""
    by_service = op.flat_map_batch("batch_otlp_by_service", aggregates, grouped_by_service)
    derived = op.stateful_batch(
        "otlp_points",
        by_service,
        partial(DeriveOtlpPoints, event_time.window_seconds, take_snapshot=snapshotter()),
    )
    split = op.branch("split_refused_otlp", derived, lambda kv: isinstance(kv[1], MetricPoint))
    points = op.map("otlp_metric_points", split.trues, lambda kv: kv[1])
    refused = op.map("otlp_dead_letters", split.falses, lambda kv: kv[1])
    return OtlpPoints(points, refused)


class DeriveOtlpPoints(StatefulBatchLogic[AggregatePoint, Any, bytes]):
    """Bytewax's side of `OtlpMetricPoints`: one service's aggregates in; derived points, and
    refused aggregates as dead letters, out. The open slot is emitted at EOF."""

    def __init__(
        self,
        slot_seconds: float,
        resume: OtlpMetricPoints | bytes | None,
        take_snapshot: TakeSnapshot = frozen,
    ) -> None:
        self.derive = thawed(resume) or OtlpMetricPoints(slot_seconds=slot_seconds)
        self.take_snapshot = take_snapshot

    def on_batch(self, values: list[list[AggregatePoint]]) -> tuple[list[Any], bool]:
        points, refused = self.derive.update_many(flatten(values))
        return [*points, *(_otlp_refused_dead_letter(p, why) for p, why in refused)], self.RETAIN

    def on_eof(self) -> tuple[list[Any], bool]:
        return self.derive.close_all(), self.RETAIN

    def snapshot(self) -> bytes | None:
        return self.take_snapshot(self.derive)


def _otlp_refused_dead_letter(point: AggregatePoint, reason: str) -> DeadLetter:
    telemetry.DEAD_LETTERS.labels(source=SOURCE, reason="otlp_refused").inc()
    return dead_letter(point.model_dump(mode="json"), SOURCE, reason)


@dataclass(frozen=True)
class LogSignals:
    """The streams `log_signals` adds to a flow."""

    points: Stream[MetricBatch]
    templates: Stream[LogTemplate]
    late: Stream[DeadLetter]


@operator
def log_signals(
    step_id: str, records: Stream[LogRecord | LogBatch], event_time: EventTimeConfig
) -> LogSignals:
    """Mine templates per service and turn each window of logs into log signal points."""

    def count(resume: ServiceLogSignals | None) -> ServiceLogSignals:
        return resume or ServiceLogSignals(
            window_seconds=event_time.window_seconds,
            lateness_seconds=event_time.allowed_lateness_seconds,
        )

    windows, late = _service_windows("logs", records, count, LogWindow, event_time)
    points = op.flat_map_batch("log_signal_points", windows, signal_batches)
    templates = op.flat_map_batch("log_templates", windows, reported_templates)
    return LogSignals(points, templates, late)


@dataclass(frozen=True)
class TraceSignals:
    """The streams `trace_signals` adds to a flow."""

    points: Stream[MetricBatch]
    edges: Stream[DependencyEdge]
    late: Stream[DeadLetter]


@operator
def trace_signals(
    step_id: str, spans: Stream[Span | SpanBatch], event_time: EventTimeConfig
) -> TraceSignals:
    """Turn each window of a service's spans into RED signal points and dependency edges."""

    def count(resume: ServiceTraceSignals | None) -> ServiceTraceSignals:
        return resume or ServiceTraceSignals(
            window_seconds=event_time.trace_window_seconds,
            lateness_seconds=event_time.allowed_lateness_seconds,
        )

    windows, late = _service_windows("traces", spans, count, TraceWindow, event_time)
    points = op.flat_map_batch("trace_signal_points", windows, signal_batches)
    edges = op.flat_map("dependency_edges", windows, lambda w: w.edges)
    return TraceSignals(points, edges, late)


def _service_windows(
    source: str,
    events: Stream[Any],
    count: Callable[[Any], Any],
    window_type: type,
    event_time: EventTimeConfig,
) -> tuple[Stream[Any], Stream[DeadLetter]]:
    """Per service, ``count(resume)``'s windowing operator over ``events`` (objects, or
    batches of them as columns): its closed windows, and its late events as dead letters."""
    by_service = op.flat_map_batch(f"batch_{source}_by_service", events, grouped_by_service)
    logic = partial(
        CountWindows,
        source=source,
        idle_grace=event_time.idle_grace_seconds,
        take_snapshot=snapshotter(),
    )
    windowed = op.stateful_batch(f"{source}_windows", by_service, lambda r: logic(count(thawed(r))))
    split = op.branch(f"split_late_{source}", windowed, lambda kv: isinstance(kv[1], window_type))
    windows = op.map(f"{source}_window", split.trues, lambda kv: kv[1])
    late = op.map(f"late_{source}_dead_letters", split.falses, lambda kv: kv[1])
    return windows, late


def signal_batches(windows: list[LogWindow] | list[TraceWindow]) -> list[MetricBatch]:
    """The closed windows' signals as one `MetricBatch` per service (keyed for detection, see
    `detection_key`), in order: no point is made one by one."""
    batches = []
    for service, group in group_by(windows, _service).items():
        stamps, signals, values = [], [], []
        for window in group:
            for signal, value in window.values:
                stamps.append(window.start)
                signals.append(signal)
                values.append(value)
        if signals:
            key = detection_key(service, signals[0])
            batches.append(MetricBatch(key, service, tuple(stamps), tuple(signals), tuple(values)))
    return batches


def reported_templates(windows: list[LogWindow]) -> list[LogTemplate]:
    """The templates the windows report, in order, each event once: windows closed together
    report one event of a template that did not change between them."""
    seen: set[int] = set()
    out = []
    for window in windows:
        for template in window.templates:
            if id(template) not in seen:
                seen.add(id(template))
                out.append(template)
    return out


def _service(window: LogWindow | TraceWindow) -> str:
    return window.service


class CountWindows(StatefulBatchLogic[Any, Any, bytes]):
    """Bytewax's side of a service's windowing operator (`ServiceLogSignals`,
    `ServiceTraceSignals`): events in, as batches of columns (the operator's ``batch_type``)
    or one by one; closed windows, and late events as dead letters, out.
    Windows close on event time, at EOF, and, once the service has sent nothing for
    ``idle_grace`` seconds of system time, as that time passes (empty windows included: a
    service that stops logging shows a log rate of 0). System time comes from ``clock``
    (``time.monotonic``; tests inject their own)."""

    def __init__(
        self,
        windows: Any,
        source: str,
        idle_grace: float = DEFAULT_IDLE_GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        take_snapshot: TakeSnapshot = frozen,
    ) -> None:
        self.windows = windows
        self.take_snapshot = take_snapshot
        self.source = source
        self.idle_grace = idle_grace
        self.clock = clock
        self._last_batch = clock()

    def on_batch(self, values: list[list[Any]]) -> tuple[list[Any], bool]:
        self._last_batch = self.clock()
        closed, late = self.windows.update(self.windows.batch_type.of(flatten(values)))
        return [*closed, *(self._late(event) for event in late)], self.RETAIN

    def on_notify(self) -> tuple[list[Any], bool]:
        waited = max(self.clock() - self._last_batch - self.idle_grace, 0.0)
        return self.windows.advance(self.windows.watermark(waited)), self.RETAIN

    def notify_at(self) -> datetime | None:
        end, watermark = self.windows.next_due_end(), self.windows.watermark()
        if end is None or watermark is None:
            return None
        needed = max((end - watermark).total_seconds(), 0.0)  # system time past the grace
        wait = self._last_batch + self.idle_grace + needed - self.clock()
        return datetime.now(UTC) + timedelta(seconds=max(wait, 0.0))

    def on_eof(self) -> tuple[list[Any], bool]:
        return self.windows.close_all(), self.RETAIN

    def snapshot(self) -> bytes | None:
        return self.take_snapshot(self.windows)

    def _late(self, event: Any) -> DeadLetter:
        telemetry.DEAD_LETTERS.labels(source=self.source, reason="late").inc()
        payload = event.model_dump(mode="json")
        return dead_letter(payload, self.source, "late: its window had closed")
