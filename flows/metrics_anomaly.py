"""The metrics dataflow: validate → detect and window per service → alert → store.

Run it with ``python -m bytewax.run "airis.flows.metrics_anomaly:build_flow()"`` (the built-in
simulator into the ClickHouse store of ``AIRIS_*`` settings); tests, ``airis demo`` and
``airis run`` pass their own source and sink.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import Sink

from airis import telemetry
from airis.events import (
    AggregatePoint,
    Alert,
    Anomaly,
    DeadLetter,
    DependencyEdge,
    Incident,
    LogRecord,
    LogTemplate,
    MetricBatch,
    MetricPoint,
    RcaCandidate,
    Span,
)
from airis.flows.model_ops import plan_capacity, score_with_model
from airis.operators.alert_manager import AlertManager
from airis.operators.call_graph import CallGraph
from airis.operators.detector_bank import DetectorBank
from airis.operators.incidents import (
    AUXILIARY_PREFIXES,
    IncidentGrouper,
    MetricService,
    rank_open_incident,
    to_incident,
)
from airis.operators.log_signals import LOG_SIGNALS, LogWindow, ServiceLogSignals
from airis.operators.otlp_metrics import DERIVED_LABEL, OtlpMetricPoints
from airis.operators.trace_signals import TRACE_SIGNALS, ServiceTraceSignals, TraceWindow
from airis.operators.types import ServiceWindow
from airis.operators.windowed_detector import DEFAULT_IDLE_GRACE_SECONDS, ServiceWindowDetector
from airis.settings import Settings
from airis.sinks.clickhouse_sink import ClickHouseSink
from airis.sinks.incident_memory_sink import IncidentMemorySink
from airis.sources.decode import dead_letter, decode_metric
from airis.sources.iterable_source import (
    simulated_logs_source,
    simulated_traces_source,
    simulator_source,
)
from airis.sources.simulator import recent_simulation

logger = logging.getLogger(__name__)

SOURCE = "metrics"
#: Without a source the flow reads the built-in simulator: the last 24 h, seed 7.
DEFAULT_SIMULATED_HOURS = 24.0
DEFAULT_SIMULATOR_SEED = 7


def build_flow(
    source: Source | None = None,
    sink: Sink | None = None,
    settings: Settings | None = None,
    topology: Mapping[str, Iterable[str]] | None = None,
    changes: Sequence[tuple[str, datetime]] = (),
    logs: Source | None = None,
    traces: Source | None = None,
    memory: Sink | None = None,
) -> Dataflow:
    r"""The metrics anomaly dataflow; defaults come from ``AIRIS_*`` settings.

    ``topology`` and ``changes``: see `detect_and_alert` (the built-in simulator's are used
    when the source is the default one). ``logs``: a source of `LogRecord`\ s whose per-window
    log signals (`log_signals`) join the metric points. ``traces``: a source of `Span`\ s
    whose per-window RED signals (`trace_signals`) join them too, and whose dependency edges
    are stored. ``memory``: where resolved incidents are remembered (`IncidentMemorySink`;
    by default there when the sink is the default store, else nowhere).
    """
    settings = settings or Settings()
    if source is None:
        sim = recent_simulation(DEFAULT_SIMULATED_HOURS, DEFAULT_SIMULATOR_SEED)
        source = simulator_source(sim)
        logs = logs or simulated_logs_source(sim)
        traces = traces or simulated_traces_source(sim)
        topology = topology or sim.topology.call_graph()
        changes = changes or [(d.service, d.ts) for d in sim.deploys]
    if sink is None:
        sink = _default_sink(settings)
        memory = memory or IncidentMemorySink(settings)
    flow = Dataflow("airis_metrics")

    raw = op.input("read", flow, source)  # dict | bytes | AggregatePoint
    decoded = op.map("validate", raw, _validate)
    aggregate = op.branch("split_aggregates", decoded, lambda e: isinstance(e, AggregatePoint))
    valid = op.branch("split_invalid", aggregate.falses, lambda e: isinstance(e, MetricPoint))
    invalid = op.inspect("count_invalid", valid.falses, _count_dead("invalid"))  # DeadLetter
    derived = otlp_points(aggregate.trues, settings)
    points = op.merge("with_otlp_points", valid.trues, derived.points)  # MetricPoint

    extra: list[Stream[Any]] = [derived.refused]
    edges: Stream[DependencyEdge] | None = None
    templates: Stream[LogTemplate] | None = None
    if logs is not None:
        records = op.input("read_logs", flow, logs)  # LogRecord
        signals = log_signals(records, settings)
        points = op.merge("with_log_signals", points, signals.points)
        templates = signals.templates
        extra += [records, signals.templates, signals.late]
    if traces is not None:
        spans = op.input("read_traces", flow, traces)  # Span
        red = trace_signals(spans, settings)
        points = op.merge("with_trace_signals", points, red.points)
        edges = red.edges
        extra += [spans, red.edges, red.late]
    detected = detect_and_alert(points, settings, topology, changes, edges, templates)
    stored = op.merge(
        "collect",
        *extra,
        *detected.store_only,
        points,
        detected.anomalies,
        detected.alerts,
        invalid,
        detected.late,
        detected.incidents,
        detected.candidates,
    )
    op.output("store", stored, sink)
    if memory is not None:
        remember(detected.incidents, memory)
    return flow


def _validate(item: Any) -> MetricPoint | AggregatePoint | DeadLetter:
    """OTLP aggregates (already validated where they were decoded) pass as they are."""
    return item if isinstance(item, AggregatePoint) else decode_metric(item, SOURCE)


@dataclass(frozen=True)
class OtlpPoints:
    """The streams `otlp_points` adds to a flow."""

    points: Stream[MetricPoint]
    refused: Stream[DeadLetter]


def otlp_points(aggregates: Stream[AggregatePoint], settings: Settings) -> OtlpPoints:
    """Per service, turn OTLP Sums, Histograms and Summaries' counts into per-interval rates,
    means and percentiles (`OtlpMetricPoints`), one slot per window; refused points (out of
    order, over the series cap) become dead letters."""
    by_service = op.flat_map_batch("batch_otlp_by_service", aggregates, grouped_by_service)
    derived = op.stateful_batch("otlp_points", by_service, partial(DeriveOtlpPoints, settings))
    split = op.branch("split_refused_otlp", derived, lambda kv: isinstance(kv[1], MetricPoint))
    points = op.map("otlp_metric_points", split.trues, lambda kv: kv[1])
    refused = op.map("otlp_dead_letters", split.falses, lambda kv: kv[1])
    return OtlpPoints(points, refused)


class DeriveOtlpPoints(StatefulBatchLogic[AggregatePoint, Any, OtlpMetricPoints]):
    """Bytewax's side of `OtlpMetricPoints`: one service's aggregates in; derived points, and
    refused aggregates as dead letters, out. The open slot is emitted at EOF."""

    def __init__(self, settings: Settings, resume: OtlpMetricPoints | None) -> None:
        self.derive = resume or OtlpMetricPoints(slot_seconds=settings.window_seconds)

    def on_batch(self, values: list[list[AggregatePoint]]) -> tuple[list[Any], bool]:
        points, refused = self.derive.update_many(flatten(values))
        return [*points, *(_otlp_refused_dead_letter(p, why) for p, why in refused)], self.RETAIN

    def on_eof(self) -> tuple[list[Any], bool]:
        return self.derive.close_all(), self.RETAIN

    def snapshot(self) -> OtlpMetricPoints:
        return copy.deepcopy(self.derive)


def _otlp_refused_dead_letter(point: AggregatePoint, reason: str) -> DeadLetter:
    telemetry.DEAD_LETTERS.labels(source=SOURCE, reason="otlp_refused").inc()
    return dead_letter(point.model_dump(mode="json"), SOURCE, reason)


def grouped_by_service(events: list[Any]) -> list[tuple[str, list[Any]]]:
    """``(service, its events)`` per service of a batch of input, in arrival order: what a
    keyed step is given, so that an exchange moves one item per service and batch."""
    groups: dict[str, list[Any]] = {}
    for event in events:
        group = groups.get(event.service)
        if group is None:
            groups[event.service] = [event]
        else:
            group.append(event)
    return list(groups.items())


def flatten(groups: list[list[Any]]) -> list[Any]:
    """The events of the groups a keyed step was given, in order."""
    return groups[0] if len(groups) == 1 else [event for group in groups for event in group]


def remember(incidents: Stream[Incident], memory: Sink) -> None:
    """Write resolved incidents to the incident memory (one key: its sink has one partition)."""
    keyed = op.key_on("key_memory", incidents, lambda _incident: "incident_memory")
    op.output("remember", keyed, memory)


@dataclass(frozen=True)
class LogSignals:
    """The streams `log_signals` adds to a flow."""

    points: Stream[MetricPoint]
    templates: Stream[LogTemplate]
    late: Stream[DeadLetter]


def log_signals(records: Stream[LogRecord], settings: Settings) -> LogSignals:
    """Mine templates per service and turn each window of logs into log signal points."""

    def count(resume: ServiceLogSignals | None) -> ServiceLogSignals:
        return resume or ServiceLogSignals(
            window_seconds=settings.window_seconds,
            lateness_seconds=settings.allowed_lateness_seconds,
        )

    windows, late = _service_windows("logs", records, count, LogWindow, settings)
    points = op.flat_map("log_signal_points", windows, lambda w: w.points)
    templates = op.flat_map("log_templates", windows, lambda w: w.templates)
    return LogSignals(points, templates, late)


@dataclass(frozen=True)
class TraceSignals:
    """The streams `trace_signals` adds to a flow."""

    points: Stream[MetricPoint]
    edges: Stream[DependencyEdge]
    late: Stream[DeadLetter]


def trace_signals(spans: Stream[Span], settings: Settings) -> TraceSignals:
    """Turn each window of a service's spans into RED signal points and dependency edges."""

    def count(resume: ServiceTraceSignals | None) -> ServiceTraceSignals:
        return resume or ServiceTraceSignals(
            window_seconds=settings.trace_window_seconds,
            lateness_seconds=settings.allowed_lateness_seconds,
        )

    windows, late = _service_windows("traces", spans, count, TraceWindow, settings)
    points = op.flat_map("trace_signal_points", windows, lambda w: w.points)
    edges = op.flat_map("dependency_edges", windows, lambda w: w.edges)
    return TraceSignals(points, edges, late)


def _service_windows(
    source: str,
    events: Stream[Any],
    count: Callable[[Any], Any],
    window_type: type,
    settings: Settings,
) -> tuple[Stream[Any], Stream[DeadLetter]]:
    """Per service, ``count(resume)``'s windowing operator over ``events``: its closed
    windows, and its late events as dead letters."""
    by_service = op.flat_map_batch(f"batch_{source}_by_service", events, grouped_by_service)
    logic = partial(CountWindows, source=source, idle_grace=settings.idle_grace_seconds)
    windowed = op.stateful_batch(f"{source}_windows", by_service, lambda r: logic(count(r)))
    split = op.branch(f"split_late_{source}", windowed, lambda kv: isinstance(kv[1], window_type))
    windows = op.map(f"{source}_window", split.trues, lambda kv: kv[1])
    late = op.map(f"late_{source}_dead_letters", split.falses, lambda kv: kv[1])
    return windows, late


class CountWindows(StatefulBatchLogic[Any, Any, Any]):
    """Bytewax's side of a service's windowing operator (`ServiceLogSignals`,
    `ServiceTraceSignals`): events in; closed windows, and late events as dead letters, out.
    Windows close on event time, at EOF, and, once the service has sent nothing for
    ``idle_grace`` seconds of system time, as that time passes (empty windows included: a
    service that stops logging shows a log rate of 0)."""

    def __init__(
        self, windows: Any, source: str, idle_grace: float = DEFAULT_IDLE_GRACE_SECONDS
    ) -> None:
        self.windows = windows
        self.source = source
        self.idle_grace = idle_grace
        self._last_batch = time.monotonic()

    def on_batch(self, values: list[list[Any]]) -> tuple[list[Any], bool]:
        self._last_batch = time.monotonic()
        closed, late = self.windows.update_many(flatten(values))
        return [*closed, *(self._late(event) for event in late)], self.RETAIN

    def on_notify(self) -> tuple[list[Any], bool]:
        waited = max(time.monotonic() - self._last_batch - self.idle_grace, 0.0)
        return self.windows.advance(self.windows.watermark(waited)), self.RETAIN

    def notify_at(self) -> datetime | None:
        end, watermark = self.windows.next_due_end(), self.windows.watermark()
        if end is None or watermark is None:
            return None
        needed = max((end - watermark).total_seconds(), 0.0)  # system time past the grace
        wait = self._last_batch + self.idle_grace + needed - time.monotonic()
        return datetime.now(UTC) + timedelta(seconds=max(wait, 0.0))

    def on_eof(self) -> tuple[list[Any], bool]:
        return self.windows.close_all(), self.RETAIN

    def snapshot(self) -> Any:
        return copy.deepcopy(self.windows)

    def _late(self, event: Any) -> DeadLetter:
        telemetry.DEAD_LETTERS.labels(source=self.source, reason="late").inc()
        payload = event.model_dump(mode="json")
        return dead_letter(payload, self.source, "late: its window had closed")


@dataclass(frozen=True)
class Detected:
    """The streams `detect_and_alert` adds to a flow."""

    anomalies: Stream[Anomaly]
    alerts: Stream[Alert]
    late: Stream[DeadLetter]
    incidents: Stream[Incident]
    candidates: Stream[RcaCandidate]
    batches: Stream[MetricBatch]
    """The input points, grouped by service per batch of input (what the flow exchanges)."""
    store_only: list[Stream[Any]]
    """Events that are only stored: model scores, drift events, forecasts, capacity
    warnings and replica advice (empty when the model and planning are off)."""


def detect_and_alert(
    points: Stream[MetricPoint],
    settings: Settings,
    topology: Mapping[str, Iterable[str]] | None = None,
    changes: Sequence[tuple[str, datetime]] = (),
    edges: Stream[DependencyEdge] | None = None,
    templates: Stream[LogTemplate] | None = None,
) -> Detected:
    """Detect per series, window per service, alert, group into incidents and rank causes.

    The closed windows are also scored by the registered ONNX model (``AIRIS_ONNX_MODEL``;
    its anomalies join incidents, never open them) and planned for (forecasts, exhaustion
    warnings raised as alerts, replica advice; ``AIRIS_FORECAST_SIGNALS``): see
    `airis.flows.model_ops`.

    ``topology`` (caller → callees) lets incidents follow the call graph and lets the ranking
    use it; without one, the call graph is learned from the dependency ``edges`` of traces
    (`CallGraph`), if any. ``changes`` are known ``(service, time)`` change events (deploys).
    ``templates``: log templates as mined; new ones become part of the incidents they fall in.
    """
    by_service = op.flat_map_batch("batch_by_service", points, batch_by_key)  # (key, MetricBatch)
    batches = op.map("metric_batches", by_service, lambda kv: kv[1])  # MetricBatch
    windowed = op.stateful_batch("detect_and_window", by_service, _windowing(settings))
    split = op.branch("split_late", windowed, lambda kv: isinstance(kv[1], ServiceWindow))
    closed = split.trues  # (service, ServiceWindow)
    late = op.map("late_dead_letters", split.falses, lambda kv: kv[1])  # DeadLetter

    alerts = op.stateful_map("alert", closed, _alert_manager(settings))  # (service, [Alert])
    alerts = op.flat_map("flatten_alerts", alerts, lambda kv: kv[1])  # Alert
    anomalies = op.flat_map("anomalies", closed, lambda kv: kv[1].anomalies)  # Anomaly
    store_only: list[Stream[Any]] = []
    if settings.onnx_model:
        model = score_with_model(closed, settings)
        anomalies = op.merge("with_model_anomalies", anomalies, model.anomalies)
        store_only += [model.scores, model.drift]
    if settings.forecast_signals:
        plan = plan_capacity(closed, settings)
        alerts = op.merge("with_capacity_alerts", alerts, plan.alerts)
        store_only += [plan.forecasts, plan.warnings, plan.advice]
    alerts = op.inspect("count_alerts", alerts, _count_alert)
    anomalies = op.inspect("count_anomalies", anomalies, lambda _s, _a: telemetry.ANOMALIES.inc())

    # Incidents span services, so every anomaly goes to one key (anomalies are few). Log and
    # trace anomalies go too: the grouper decides what they may do (join, never open).
    incident_inputs: Stream[Anomaly | DependencyEdge | LogTemplate | MetricService] = anomalies
    # Which services have metrics (once each): the others' log and trace anomalies are primary.
    has_metrics = op.stateful_flat_map("metric_services", closed, _first_metric_window)
    has_metrics = op.map("metric_service_markers", has_metrics, lambda kv: kv[1])  # MetricService
    incident_inputs = op.merge("anomalies_and_metric_services", incident_inputs, has_metrics)
    if edges is not None and not topology:
        incident_inputs = op.merge("anomalies_and_edges", incident_inputs, edges)
    if templates is not None:
        incident_inputs = op.merge("anomalies_and_templates", incident_inputs, templates)
    one_key = op.key_on("key_incidents", incident_inputs, lambda _a: "incidents")
    grouped = op.stateful_batch("incidents", one_key, _incidents(settings, topology, changes))
    incidents = op.map("incident_events", grouped, lambda kv: kv[1])  # Incident
    candidates = op.flat_map("rca_candidates", incidents, lambda i: i.candidates)
    return Detected(anomalies, alerts, late, incidents, candidates, batches, store_only)


def _first_metric_window(
    seen: bool | None, window: ServiceWindow
) -> tuple[bool | None, list[MetricService]]:
    if seen or all(s.startswith(AUXILIARY_PREFIXES) for s in window.signals):
        return seen, []
    return True, [MetricService(window.service)]


def _count_alert(_step: str, alert: Alert) -> None:
    telemetry.ALERTS.labels(status=alert.status, severity=alert.severity).inc()


def batch_by_key(points: list[MetricPoint]) -> list[tuple[str, MetricBatch]]:
    """One `MetricBatch` per detection key of ``points``, keyed: the exchange then moves one
    item per service and batch of input instead of one per point."""
    groups: dict[str, list[MetricPoint]] = {}
    for point in points:
        key = _detection_key(point)
        group = groups.get(key)
        if group is None:
            groups[key] = [point]
        else:
            group.append(point)
    return [(key, MetricBatch.from_points(key, group)) for key, group in groups.items()]


def _detection_key(point: MetricPoint) -> str:
    """The service, or ``service/logs`` and ``service/traces`` for log and trace signals: they
    come from other inputs, whose event time runs apart from the metrics', so they get windows
    and detectors of their own; so do the points derived from OTLP aggregates
    (``service/otlp``), which come one collection interval after the points beside them."""
    if point.signal in LOG_SIGNAL_SET:
        return f"{point.service}/logs"
    if point.signal in TRACE_SIGNAL_SET:
        return f"{point.service}/traces"
    if point.labels.get(DERIVED_LABEL):
        return f"{point.service}/otlp"
    return point.service


LOG_SIGNAL_SET = frozenset(LOG_SIGNALS)
TRACE_SIGNAL_SET = frozenset(TRACE_SIGNALS)


class DetectAndWindow(StatefulBatchLogic[MetricBatch, Any, ServiceWindowDetector]):
    """Bytewax's side of `ServiceWindowDetector`: one service's batches in, windows out.

    System time comes from ``time.monotonic``; Bytewax wakes the logic (``notify_at``) when
    the oldest open window is due, so a service that goes quiet still has it closed. A
    service with no point for ``idle_seconds`` of system time, once its windows are closed,
    has its whole state discarded (a later point starts it afresh): the flow's memory
    follows the active services, not every service ever seen.
    """

    def __init__(
        self, detector: ServiceWindowDetector, resumed: bool = False, idle_seconds: float = 1e18
    ) -> None:
        self.detector = detector
        self.idle_seconds = idle_seconds
        self._last_batch = time.monotonic()
        if resumed:  # downtime must not count as waiting time (see `resume`)
            detector.resume(time.monotonic())

    def on_batch(self, values: list[MetricBatch]) -> tuple[list[Any], bool]:
        started = self._last_batch = time.monotonic()
        out: list[Any] = []
        points = 0
        for batch in values:
            closed, late = self.detector.update_batch(batch, started)
            out += closed
            out += map(_late_dead_letter, late)
            points += len(batch)
        telemetry.DETECT_SECONDS.observe((time.monotonic() - started) / max(points, 1))
        out += map(_over_cap_dead_letter, self.detector.take_refused())
        return out, self.RETAIN

    def on_notify(self) -> tuple[list[Any], bool]:
        now = time.monotonic()
        closed = self.detector.close_due(now)
        idle = self.detector.next_close_in(now) is None
        if idle and now - self._last_batch >= self.idle_seconds:
            return closed, self.DISCARD
        return closed, self.RETAIN

    def on_eof(self) -> tuple[list[Any], bool]:
        return self.detector.close_all(), self.RETAIN

    def notify_at(self) -> datetime | None:
        now = time.monotonic()
        wait = self.detector.next_close_in(now)
        if wait is None:  # nothing open: wake up when the service counts as gone
            wait = max(self._last_batch + self.idle_seconds - now, 0.0)
        return datetime.now(UTC) + timedelta(seconds=min(wait, _LONGEST_WAIT_S))

    def snapshot(self) -> ServiceWindowDetector:
        return copy.deepcopy(self.detector)


#: Longest sleep asked of Bytewax (a wake-up time must stay a valid datetime).
_LONGEST_WAIT_S = 30 * 86400.0


def _bank(settings: Settings) -> Callable[[], DetectorBank]:
    return partial(
        DetectorBank,
        priors=None if settings.cold_start_priors else {},
        idle_after=timedelta(seconds=settings.state_idle_seconds),
        max_signals=settings.max_signals_per_service,
    )


def _windowing(settings: Settings):
    def build(resume: ServiceWindowDetector | None) -> DetectAndWindow:
        idle = settings.state_idle_seconds
        if resume is not None:
            return DetectAndWindow(resume, resumed=True, idle_seconds=idle)
        return DetectAndWindow(
            ServiceWindowDetector(
                window_seconds=settings.window_seconds,
                lateness_seconds=settings.allowed_lateness_seconds,
                threshold=settings.anomaly_threshold,
                bank=_bank(settings),
                idle_grace_seconds=settings.idle_grace_seconds,
            ),
            idle_seconds=idle,
        )

    return build


@dataclass
class IncidentState:
    """What the incident step keeps: its grouper and the call graph learned from traces."""

    grouper: IncidentGrouper
    call_graph: CallGraph = field(default_factory=CallGraph)


class GroupIncidents(StatefulBatchLogic[Any, Incident, IncidentState]):
    """Bytewax's side of `IncidentGrouper`: anomalies in, resolved, ranked incidents out.

    Incidents close on event time (a later anomaly shows the quiet gap has passed) or, when
    no anomaly comes, once the gap has passed in system time, and at the end of the input.
    Dependency edges (only without a given topology) teach the call graph; log templates
    join the open incidents they belong to.
    """

    def __init__(
        self,
        state: IncidentState,
        topology: Mapping[str, Iterable[str]] | None,
        changes: Sequence[tuple[str, datetime]],
    ) -> None:
        self.state = state
        self.grouper = state.grouper
        self.topology = topology
        self.changes = changes
        self._quiet_since = time.monotonic()

    def on_batch(self, values: list[Any]) -> tuple[list[Incident], bool]:
        for value in values:
            if isinstance(value, MetricService):
                self.grouper.add_metric_service(value.service)
        anomalies = [v for v in values if isinstance(v, Anomaly)]
        for value in values:
            if isinstance(value, DependencyEdge) and self.state.call_graph.learn_one(value):
                self.grouper.add_edge(value.caller, value.callee)
        closed = self.grouper.add_many(anomalies)
        # After the anomalies: a template may belong to an incident they just opened.
        for value in values:
            if isinstance(value, LogTemplate):
                self.grouper.add_template(value)
        # Log and trace anomalies never keep an incident open, so they don't restart the wait.
        if any(map(self.grouper.may_open, anomalies)):
            self._quiet_since = time.monotonic()
        return self._ranked(closed), self.RETAIN

    def on_notify(self) -> tuple[list[Incident], bool]:
        return self._ranked(self.grouper.close_all()), self.RETAIN

    def on_eof(self) -> tuple[list[Incident], bool]:
        return self._ranked(self.grouper.close_all()), self.RETAIN

    def notify_at(self) -> datetime | None:
        if not self.grouper.open_incidents():
            return None
        waited = time.monotonic() - self._quiet_since
        return datetime.now(UTC) + self.grouper.gap - timedelta(seconds=waited)

    def snapshot(self) -> IncidentState:
        return copy.deepcopy(self.state)

    def _ranked(self, closed: list) -> list[Incident]:
        topology = self.topology or self.state.call_graph.topology()
        out = []
        for incident in closed:
            confirm = self.grouper.confirm_after
            candidates = rank_open_incident(incident, topology, self.changes, min_windows=confirm)
            out.append(to_incident(incident, candidates, auxiliary_windows=confirm))
        return out


def _incidents(
    settings: Settings,
    topology: Mapping[str, Iterable[str]] | None,
    changes: Sequence[tuple[str, datetime]],
):
    def build(resume: IncidentState | None) -> GroupIncidents:
        state = resume or IncidentState(
            # The flow tells it which services have metrics (`MetricService`), from none.
            IncidentGrouper(topology, confirm_after=settings.alert_open_after, metric_services=())
        )
        return GroupIncidents(state, topology, changes)

    return build


def _alert_manager(settings: Settings):
    def alert(manager: AlertManager | None, window) -> tuple[AlertManager, list]:
        manager = manager or AlertManager(
            open_after=settings.alert_open_after, resolve_after=settings.alert_resolve_after
        )
        return manager, manager.update_one(window)

    return alert


def _over_cap_dead_letter(point: MetricPoint) -> DeadLetter:
    telemetry.DEAD_LETTERS.labels(source=SOURCE, reason="refused").inc()
    reason = (
        f"refused: service {point.service} already has the most signals one service may have "
        "(AIRIS_MAX_SIGNALS_PER_SERVICE)"
    )
    return dead_letter(point.model_dump(mode="json"), SOURCE, reason)


def _late_dead_letter(point: MetricPoint) -> DeadLetter:
    telemetry.DEAD_LETTERS.labels(source=SOURCE, reason="late").inc()
    telemetry.LATE_EVENTS.inc()
    return dead_letter(point.model_dump(mode="json"), SOURCE, "late: its window had closed")


def _count_dead(kind: str):
    counter = telemetry.DEAD_LETTERS.labels(source=SOURCE, reason=kind)
    return lambda _step, _item: counter.inc()


def _default_sink(settings: Settings) -> Sink:
    return ClickHouseSink(settings)
