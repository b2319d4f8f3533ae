"""Detection, alerting, incidents and root causes: `detect_and_alert` and its Bytewax steps.

Points are grouped per service and batch of input (`batch_by_key`), scored and folded into
event-time windows (`DetectAndWindow`), alerted on per service, and grouped across services
into incidents with ranked root-cause candidates (`GroupIncidents`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import chain
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import Sink

from airis import telemetry
from airis.batches import MetricBatch, unbatched
from airis.events import (
    Alert,
    Anomaly,
    CapacityWarning,
    DeadLetter,
    DependencyEdge,
    Incident,
    LogTemplate,
    MetricPoint,
    RcaCandidate,
)
from airis.flows.batching import flatten, group_by, one_item
from airis.flows.model_ops import plan_capacity, score_with_model
from airis.flows.snapshots import TakeSnapshot, frozen, snapshotter, stateful_map, thawed
from airis.operators.alerting.alert_manager import AlertManager
from airis.operators.closed_windows import ClosedWindows
from airis.operators.detectors.detector_bank import DetectorBank
from airis.operators.incidents.call_graph import CallGraph
from airis.operators.incidents.grouping import (
    AUXILIARY_PREFIXES,
    IncidentGrouper,
    MetricService,
)
from airis.operators.incidents.ranking import rank_open_incident, to_incident
from airis.operators.signals.otlp_metrics import DERIVED_LABEL
from airis.operators.windowing.windowed_detector import ServiceWindowDetector
from airis.settings import (
    AlertingConfig,
    DetectionConfig,
    EventTimeConfig,
    ModelConfig,
    PlanningConfig,
    Settings,
)
from airis.signals import LOG_SIGNALS, TRACE_SIGNALS
from airis.sources.decode import dead_letter

#: Where dead letters of metric input say they came from.
SOURCE = "metrics"


@operator
def remember(step_id: str, incidents: Stream[Incident], memory: Sink) -> None:
    """Write resolved incidents to the incident memory (one key: its sink has one partition)."""
    keyed = op.key_on("key_memory", incidents, lambda _incident: "incident_memory")
    op.output("remember", keyed, memory)


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
    store_only: Stream[Any]
    """Events that are only stored: model scores, drift events, forecasts, capacity
    warnings and replica advice (none when the model and planning are off)."""


def detection_configs(settings: Settings) -> dict[str, Any]:
    """The config groups `detect_and_alert` takes, from ``settings``."""
    return {
        "event_time": settings.event_time,
        "detection": settings.detection,
        "alerting": settings.alerting,
        "model": settings.model,
        "planning": settings.planning,
    }


@operator
def detect_and_alert(
    step_id: str,
    points: Stream[MetricPoint],
    *,
    event_time: EventTimeConfig,
    detection: DetectionConfig,
    alerting: AlertingConfig,
    model: ModelConfig,
    planning: PlanningConfig,
    topology: Mapping[str, Iterable[str]] | None = None,
    changes: Sequence[tuple[str, datetime]] = (),
    edges: Stream[DependencyEdge] | None = None,
    templates: Stream[LogTemplate] | None = None,
) -> Detected:
    """Detect per series, window per service, alert, group into incidents and rank causes.

    The closed windows are also scored by the registered ONNX model (``model.name``, unless
    None; its anomalies join incidents, never open them) and planned for (forecasts,
    exhaustion warnings, replica advice; unless ``planning.signals`` is empty): see
    `airis.flows.model_ops`. The alert manager turns the exhaustion warnings into alerts, as
    it does the windows.

    ``topology`` (caller → callees) lets incidents follow the call graph and lets the ranking
    use it; without one, the call graph is learned from the dependency ``edges`` of traces
    (`CallGraph`), if any. ``changes`` are known ``(service, time)`` change events (deploys).
    ``templates``: log templates as mined; new ones become part of the incidents they fall in.
    """
    by_service = op.flat_map_batch("batch_by_service", points, batch_by_key)  # (key, MetricBatch)
    batches = op.map("metric_batches", by_service, lambda kv: kv[1])  # MetricBatch
    windowed = op.stateful_batch("detect_and_window", by_service, _windowing(event_time, detection))
    split = op.branch("split_late", windowed, lambda kv: type(kv[1]) is ClosedWindows)
    closed = split.trues  # (service, ClosedWindows)
    late = op.map("late_dead_letters", split.falses, lambda kv: kv[1])  # DeadLetter

    anomalies = op.flat_map("anomalies", closed, _anomalies)  # Anomaly
    store_only: list[Stream[Any]] = []
    if model.name:
        scored = score_with_model("model", closed, model, detection.anomaly_threshold)
        anomalies = op.merge("with_model_anomalies", anomalies, scored.anomalies)
        store_only += [scored.scores, scored.drift]
    to_alert: Stream[tuple[str, ClosedWindows | CapacityWarning]] = closed
    if planning.signals:
        plan = plan_capacity("planning", closed, planning)
        store_only += [plan.forecasts, plan.warnings, plan.advice]
        warned = op.map("key_capacity_warnings", plan.warnings, lambda w: (w.service, w))
        to_alert = op.merge("windows_and_capacity_warnings", closed, warned)
    alerts = stateful_map("alert", to_alert, _alert_manager(alerting))  # (service, [Alert])
    alerts = op.flat_map("flatten_alerts", alerts, lambda kv: kv[1])  # Alert
    alerts = op.inspect("count_alerts", alerts, _count_alert)
    anomalies = op.inspect("count_anomalies", anomalies, lambda _s, _a: telemetry.ANOMALIES.inc())

    # Incidents span services, so every anomaly goes to one key, one item per batch of input
    # (a pickle each). Log and trace anomalies go too: the grouper decides what they may do.
    incident_inputs: Stream[Anomaly | DependencyEdge | LogTemplate | MetricService] = anomalies
    # Which services have metrics (once each): the others' log and trace anomalies are primary.
    has_metrics = op.stateful_flat_map("metric_services", closed, _first_metric_window)
    has_metrics = op.map("metric_service_markers", has_metrics, lambda kv: kv[1])  # MetricService
    incident_inputs = op.merge("anomalies_and_metric_services", incident_inputs, has_metrics)
    if edges is not None and not topology:
        incident_inputs = op.merge("anomalies_and_edges", incident_inputs, edges)
    if templates is not None:
        incident_inputs = op.merge("anomalies_and_templates", incident_inputs, templates)
    one_key = op.flat_map_batch("key_incidents", incident_inputs, one_item("incidents"))
    grouped = op.stateful_batch("incidents", one_key, _incidents(alerting, topology, changes))
    incidents = op.map("incident_events", grouped, lambda kv: kv[1])  # Incident
    candidates = op.flat_map("rca_candidates", incidents, lambda i: i.candidates)
    if store_only:
        stored = op.merge("stored_only", *store_only)
    else:  # an empty stream: the model and planning are off
        stored = op.filter("stored_only", batches, lambda _batch: False)
    return Detected(anomalies, alerts, late, incidents, candidates, batches, stored)


def _anomalies(item: tuple[str, ClosedWindows]) -> list[Anomaly]:
    return item[1].anomalies()


def _first_metric_window(
    seen: bool | None, windows: ClosedWindows
) -> tuple[bool | None, list[MetricService]]:
    if seen or all(s.startswith(AUXILIARY_PREFIXES) for s in windows.signal_names()):
        return seen, []
    return True, [MetricService(windows.service)]


def _count_alert(_step: str, alert: Alert) -> None:
    telemetry.ALERTS.labels(status=alert.status, severity=alert.severity).inc()


def batch_by_key(items: list[MetricPoint | MetricBatch]) -> list[tuple[str, MetricBatch]]:
    """One `MetricBatch` per detection key of ``items``, keyed and in arrival order: the
    exchange then moves one item per service and batch of input instead of one per point.

    A decoder's batch of one service (keyed by the service) stays columns, labelled points
    too; should it hold a point with a key of its own (a log or trace signal, a point derived
    from an OTLP aggregate), its points are grouped one by one like the rest. A batch keyed
    apart from its service by its maker (the log and trace windows' signals,
    `detection_key`) stays columns too."""
    if any(type(item) is MetricBatch and not _keyed_as_a_whole(item) for item in items):
        items = [point for item in items for point in _regrouped(item)]
    groups = group_by(items, _item_key)
    keyed = [(key, _joined(key, group)) for key, group in groups.items()]
    telemetry.KEYED_BATCHES.inc(len(keyed))
    return keyed


def _keyed_as_a_whole(batch: MetricBatch) -> bool:
    """Whether every point of ``batch`` has its key as detection key: the service itself, or
    the key its maker gave it."""
    if batch.key != batch.service:
        return True
    if not _OWN_KEY_SIGNALS.isdisjoint(batch.signal):
        return False
    # Of the labels, only this one changes a point's key (`_detection_key`).
    return not any(labels.get(DERIVED_LABEL) for labels in batch.labels)


def _regrouped(item: MetricPoint | MetricBatch) -> Iterable[MetricPoint | MetricBatch]:
    if type(item) is MetricBatch and not _keyed_as_a_whole(item):
        return item.points()
    return (item,)


def _item_key(item: MetricPoint | MetricBatch) -> str:
    return item.key if type(item) is MetricBatch else _detection_key(item)


def _joined(key: str, group: list[MetricPoint | MetricBatch]) -> MetricBatch:
    """The group of one key as one batch; batches alone are joined column by column."""
    if all(type(item) is MetricBatch for item in group):
        if len(group) == 1:
            return group[0]
        labels = ()
        if any(batch.labels for batch in group):  # `{}` of its own for each unlabelled point
            each = (batch.labels or [{} for _ in batch.ts] for batch in group)
            labels = tuple(chain.from_iterable(each))
        return MetricBatch(
            key,
            group[0].service,
            tuple(chain.from_iterable(batch.ts for batch in group)),
            tuple(chain.from_iterable(batch.signal for batch in group)),
            tuple(chain.from_iterable(batch.value for batch in group)),
            labels if any(labels) else (),
        )
    return MetricBatch.from_points(key, unbatched(group))


def _detection_key(point: MetricPoint) -> str:
    """`detection_key`, and ``service/otlp`` for the points derived from OTLP aggregates: they
    come one collection interval after the points beside them."""
    key = detection_key(point.service, point.signal)
    if key == point.service and point.labels.get(DERIVED_LABEL):
        return f"{point.service}/otlp"
    return key


def detection_key(service: str, signal: str) -> str:
    """The service, or ``service/logs`` and ``service/traces`` for log and trace signals: they
    come from other inputs, whose event time runs apart from the metrics', so they get windows
    and detectors of their own."""
    if signal in LOG_SIGNAL_SET:
        return f"{service}/logs"
    if signal in TRACE_SIGNAL_SET:
        return f"{service}/traces"
    return service


LOG_SIGNAL_SET = frozenset(LOG_SIGNALS)
TRACE_SIGNAL_SET = frozenset(TRACE_SIGNALS)
_OWN_KEY_SIGNALS = LOG_SIGNAL_SET | TRACE_SIGNAL_SET


class DetectAndWindow(StatefulBatchLogic[MetricBatch, Any, bytes]):
    """Bytewax's side of `ServiceWindowDetector`: one service's batches in, windows out.

    System time comes from ``clock`` (``time.monotonic``; tests inject their own); Bytewax
    wakes the logic (``notify_at``) when
    the oldest open window is due, so a service that goes quiet still has it closed. A
    service with no point for ``idle_seconds`` of system time, once its windows are closed,
    has its whole state discarded (a later point starts it afresh): the flow's memory
    follows the active services, not every service ever seen.
    """

    def __init__(
        self,
        detector: ServiceWindowDetector,
        resumed: bool = False,
        idle_seconds: float = 1e18,
        clock: Callable[[], float] = time.monotonic,
        take_snapshot: TakeSnapshot = frozen,
    ) -> None:
        self.detector = detector
        self.take_snapshot = take_snapshot
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._last_batch = clock()
        if resumed:  # downtime must not count as waiting time (see `resume`)
            detector.resume(clock())

    def on_batch(self, values: list[MetricBatch]) -> tuple[list[Any], bool]:
        started = self._last_batch = self.clock()
        out: list[Any] = []  # ClosedWindows, then DeadLetter
        letters: list[DeadLetter] = []
        points = 0
        for batch in values:
            closed, late = self.detector.update_batch(batch, started)
            out += _closed_windows(closed)
            letters += map(_late_dead_letter, late)
            points += len(batch)
        telemetry.DETECT_SECONDS.observe((self.clock() - started) / max(points, 1))
        letters += map(_over_cap_dead_letter, self.detector.take_refused())
        return out + letters, self.RETAIN

    def on_notify(self) -> tuple[list[Any], bool]:
        now = self.clock()
        closed = _closed_windows(self.detector.close_due(now))
        idle = self.detector.next_close_in(now) is None
        if idle and now - self._last_batch >= self.idle_seconds:
            return closed, self.DISCARD
        return closed, self.RETAIN

    def on_eof(self) -> tuple[list[Any], bool]:
        return _closed_windows(self.detector.close_all()), self.RETAIN

    def notify_at(self) -> datetime | None:
        now = self.clock()
        wait = self.detector.next_close_in(now)
        if wait is None:  # nothing open: wake up when the service counts as gone
            wait = max(self._last_batch + self.idle_seconds - now, 0.0)
        return datetime.now(UTC) + timedelta(seconds=min(wait, _LONGEST_WAIT_S))

    def snapshot(self) -> bytes | None:
        return self.take_snapshot(self.detector)


def _closed_windows(windows: ClosedWindows) -> list[ClosedWindows]:
    """The windows one call closed, as one item (none if none closed)."""
    return [windows] if windows else []


#: Longest sleep asked of Bytewax (a wake-up time must stay a valid datetime).
_LONGEST_WAIT_S = 30 * 86400.0


def _bank(detection: DetectionConfig) -> Callable[[], DetectorBank]:
    return partial(
        DetectorBank,
        priors=None if detection.cold_start_priors else {},
        idle_after=timedelta(seconds=detection.state_idle_seconds),
        max_signals=detection.max_signals_per_service,
    )


def _windowing(event_time: EventTimeConfig, detection: DetectionConfig):
    take = snapshotter()

    def build(snapshot: ServiceWindowDetector | bytes | None) -> DetectAndWindow:
        idle = detection.state_idle_seconds
        resume = thawed(snapshot)
        if resume is not None:
            return DetectAndWindow(resume, resumed=True, idle_seconds=idle, take_snapshot=take)
        detector = service_detector(event_time, detection)
        return DetectAndWindow(detector, idle_seconds=idle, take_snapshot=take)

    return build


def service_detector(
    event_time: EventTimeConfig, detection: DetectionConfig
) -> ServiceWindowDetector:
    """A new service's detector and windows, as configured."""
    return ServiceWindowDetector(
        window_seconds=event_time.window_seconds,
        lateness_seconds=event_time.allowed_lateness_seconds,
        threshold=detection.anomaly_threshold,
        bank=_bank(detection),
        idle_grace_seconds=event_time.idle_grace_seconds,
    )


@dataclass
class IncidentState:
    """What the incident step keeps: its grouper and the call graph learned from traces."""

    grouper: IncidentGrouper
    call_graph: CallGraph = field(default_factory=CallGraph)


class GroupIncidents(StatefulBatchLogic[list[Any], Incident, bytes]):
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
        take_snapshot: TakeSnapshot = frozen,
    ) -> None:
        self.state = state
        self.take_snapshot = take_snapshot
        self.grouper = state.grouper
        self.topology = topology
        self.changes = changes
        self._quiet_since = time.monotonic()

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[Incident], bool]:
        values = flatten(groups)
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

    def snapshot(self) -> bytes | None:
        return self.take_snapshot(self.state)

    def _ranked(self, closed: list) -> list[Incident]:
        topology = self.topology or self.state.call_graph.topology()
        out = []
        for incident in closed:
            confirm = self.grouper.confirm_after
            candidates = rank_open_incident(incident, topology, self.changes, min_windows=confirm)
            out.append(to_incident(incident, candidates, auxiliary_windows=confirm))
        return out


def _incidents(
    alerting: AlertingConfig,
    topology: Mapping[str, Iterable[str]] | None,
    changes: Sequence[tuple[str, datetime]],
):
    take = snapshotter()

    def build(snapshot: IncidentState | bytes | None) -> GroupIncidents:
        state = thawed(snapshot) or IncidentState(
            # The flow tells it which services have metrics (`MetricService`), from none.
            IncidentGrouper(topology, confirm_after=alerting.open_after, metric_services=())
        )
        return GroupIncidents(state, topology, changes, take)

    return build


def _alert_manager(alerting: AlertingConfig):
    def alert(
        manager: AlertManager | None, item: ClosedWindows | CapacityWarning
    ) -> tuple[AlertManager, list[Alert]]:
        manager = manager or AlertManager(
            open_after=alerting.open_after, resolve_after=alerting.resolve_after
        )
        if isinstance(item, CapacityWarning):
            return manager, manager.update_warning(item)
        return manager, manager.update_many(item)

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
