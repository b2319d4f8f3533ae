"""Event models at AIRIS-MON's boundaries: telemetry in, anomalies and alerts out.

Every event that enters a flow is validated here; whatever fails becomes a `DeadLetter`
with the reason and is counted, never dropped. Records the engine emits (`Anomaly`, `Alert`)
carry deterministic ids so that a replay after a restart writes the same rows again, and
ClickHouse's ReplacingMergeTree keeps one copy.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

__all__ = [
    "AggregatePoint",
    "Alert",
    "AlertStatus",
    "Anomaly",
    "CapacityWarning",
    "DeadLetter",
    "DependencyEdge",
    "DetectorState",
    "DriftEvent",
    "ForecastPoint",
    "Incident",
    "LogRecord",
    "LogTemplate",
    "MetricPoint",
    "ModelScore",
    "RcaCandidate",
    "ScalingAdvice",
    "Severity",
    "Span",
    "aggregate_problem",
    "constructed",
    "constructed_rows",
    "event_id",
    "trusted",
    "validation_reason",
]

#: Oldest and newest timestamps we accept; anything outside is a clock or encoding bug.
MIN_TS = datetime(2000, 1, 1, tzinfo=UTC)
MAX_TS = datetime(2100, 1, 1, tzinfo=UTC)
#: Longest free-text field (log body, status message) kept in an event.
MAX_TEXT = 64 * 1024
MAX_LABELS = 64


def _in_range(ts: datetime) -> datetime:
    if not MIN_TS <= ts < MAX_TS:
        raise ValueError(f"timestamp {ts.isoformat()} outside [{MIN_TS.year}, {MAX_TS.year})")
    return ts.astimezone(UTC)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("value must be finite (got NaN or infinity)")
    return value


Timestamp = Annotated[AwareDatetime, AfterValidator(_in_range)]
FiniteFloat = Annotated[float, AfterValidator(_finite)]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:/-]+$")]
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.:/-]{1,128}")  # `Name` to fullmatch, without the model
Labels = Annotated[dict[Name, Annotated[str, Field(max_length=1024)]], Field(max_length=MAX_LABELS)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]

DetectorState = Literal["warming", "prior", "recent", "seasonal"]
Severity = Literal["info", "warning", "critical"]
AlertStatus = Literal["firing", "resolved"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class MetricPoint(_Event):
    """One sample of one signal of one service (a gauge or a rate, already aggregated)."""

    ts: Timestamp
    service: Name
    signal: Name
    value: FiniteFloat
    labels: Labels = Field(default_factory=dict)

    @property
    def series(self) -> str:
        """The key of this point's time series: ``service/signal``."""
        return f"{self.service}/{self.signal}"


class AggregatePoint(_Event):
    """One OTLP aggregate data point as sent, before it becomes per-interval values.

    A monotonic Sum (``kind="sum"``: ``value`` is the counter), or a Histogram
    (``kind="histogram"``: ``count``, ``value`` = the sum of the observations when sent, and
    explicit buckets: ``buckets[i]`` counts values in ``(bounds[i-1], bounds[i]]``, the last one
    those above ``bounds[-1]``). ExponentialHistograms arrive here as explicit buckets, and a
    Summary's count and sum as a histogram without buckets. ``temporality``: ``cumulative``
    values run since ``start``; ``delta`` values cover ``(start, ts]``.
    `airis.operators.signals.otlp_metrics.OtlpMetricPoints` turns them into `MetricPoint`\\ s.
    """

    ts: Timestamp
    start: Timestamp | None = None
    service: Name
    signal: Name
    kind: Literal["sum", "histogram"]
    temporality: Literal["cumulative", "delta"]
    unit: Annotated[str, Field(max_length=64)] = ""
    value: FiniteFloat | None = None
    count: Annotated[int, Field(ge=0)] = 0
    bounds: tuple[FiniteFloat, ...] = ()
    buckets: tuple[Annotated[int, Field(ge=0)], ...] = ()
    labels: Labels = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> AggregatePoint:
        reason = aggregate_problem(self.kind, self.value, self.count, self.bounds, self.buckets)
        if reason:
            raise ValueError(reason)
        return self


def aggregate_problem(
    kind: str, value: float | None, count: int, bounds: tuple[float, ...], buckets: tuple[int, ...]
) -> str:
    """Why these fields make no `AggregatePoint`, or ``""`` when they are consistent.

    >>> aggregate_problem("histogram", 1.5, 3, (0.1,), (1, 1))
    'count 3 is not the sum of the bucket counts (2)'
    """
    if kind == "sum":
        if value is None:
            return "no value"
        if count or bounds or buckets:
            return "a sum has no count or buckets"
        return ""
    if buckets and len(buckets) != len(bounds) + 1:
        return f"{len(buckets)} bucket counts for {len(bounds)} bounds (expected bounds + 1)"
    if not buckets and bounds:
        return f"{len(bounds)} bounds without bucket counts"
    if any(b >= a for a, b in zip(bounds[1:], bounds, strict=False)):
        return "bucket bounds are not strictly increasing"
    if buckets and sum(buckets) != count:
        return f"count {count} is not the sum of the bucket counts ({sum(buckets)})"
    return ""


class LogRecord(_Event):
    """One log line of one service."""

    ts: Timestamp
    service: Name
    severity: Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] = "INFO"
    body: Text
    trace_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = None
    span_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None = None
    attributes: Labels = Field(default_factory=dict)


class Span(_Event):
    """One span of a distributed trace."""

    trace_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    span_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    parent_span_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None = None
    service: Name
    name: Annotated[str, Field(min_length=1, max_length=256)]
    start: Timestamp
    duration_ms: Annotated[FiniteFloat, Field(ge=0)]
    status: Literal["ok", "error", "unset"] = "unset"
    peer_service: Name | None = None
    attributes: Labels = Field(default_factory=dict)


class DependencyEdge(_Event):
    """Calls from one service to another during one window, as the caller's spans saw them."""

    window_start: Timestamp
    window_end: Timestamp
    caller: Name
    callee: Name
    calls: Annotated[int, Field(ge=1)]
    errors: Annotated[int, Field(ge=0)]
    p50_ms: Annotated[FiniteFloat, Field(ge=0)]
    p95_ms: Annotated[FiniteFloat, Field(ge=0)]
    p99_ms: Annotated[FiniteFloat, Field(ge=0)]

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls


class Anomaly(_Event):
    """A signal of a service that deviated from its expected band during one window."""

    id: str
    service: Name
    signal: Name
    kind: Literal["spike", "dip"]
    window_start: Timestamp
    window_end: Timestamp
    score: Annotated[float, Field(ge=0, le=1)]
    observed: FiniteFloat
    expected: FiniteFloat
    lower: FiniteFloat
    upper: FiniteFloat
    state: DetectorState
    detector: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.service, self.signal, self.kind)


class Alert(_Event):
    """A firing or resolved alert: one per fingerprint (service, signal, kind) and episode.

    The same episode emits one ``firing`` and one ``resolved`` event with the same
    ``starts_at``; ``id`` tells them apart and makes each event idempotent.
    """

    id: str
    fingerprint: str
    status: AlertStatus
    service: Name
    signal: Name
    kind: str
    severity: Severity
    starts_at: Timestamp
    ends_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    """Event time at which this event was emitted (the end of the deciding window)."""
    score: Annotated[float, Field(ge=0, le=1)]
    summary: Text
    labels: Labels = Field(default_factory=dict)


class LogTemplate(_Event):
    """A log template of one service, as mined so far (stored; the latest ``last_seen`` wins)."""

    service: Name
    template_id: str
    template: Text
    first_seen: Timestamp
    last_seen: Timestamp
    count: Annotated[int, Field(ge=0)]


class RcaCandidate(_Event):
    """One ranked root-cause candidate of an incident, with the evidence behind its score."""

    incident_id: str
    rank: Annotated[int, Field(ge=1)]
    service: Name
    score: Annotated[float, Field(ge=0, le=1)]
    evidence: list[Text] = Field(default_factory=list)
    """Human-readable reasons, strongest first (e.g. "first anomalous: 40 s before checkout")."""
    features: dict[str, float] = Field(default_factory=dict)
    """Per-feature scores the rank combines: topology, onset, magnitude, correlation, change."""


class Incident(_Event):
    """Anomalies of several services and signals that belong to one problem."""

    id: str
    status: Literal["open", "resolved"]
    started_at: Timestamp
    updated_at: Timestamp
    ended_at: Timestamp | None = None
    services: list[Name]
    signals: list[str]
    """``service/signal`` of every anomalous series in the incident."""
    anomaly_count: Annotated[int, Field(ge=0)]
    root_cause: Name | None = None
    """The top-ranked candidate's service."""
    summary: Text = ""
    candidates: list[RcaCandidate] = Field(default_factory=list)
    log_templates: list[Text] = Field(default_factory=list)
    """Log templates first seen on the incident's services while it was open: new messages."""


class ModelScore(_Event):
    """One service window scored by a registered ONNX model.

    Every window is scored once, by the production version of the moment: a promotion or a
    rollback takes effect between two batches of windows.
    """

    window_start: Timestamp
    window_end: Timestamp
    service: Name
    model: Name
    version: Annotated[int, Field(ge=1)]
    score: Annotated[float, Field(ge=0, le=1)]
    error: Annotated[float, Field(ge=0)]
    """The reconstruction error (infinite when the row overflowed the model's float32)."""
    providers: list[str] = Field(default_factory=list)
    """onnxruntime execution providers in use, e.g. ``["CPUExecutionProvider"]``."""


class DriftEvent(_Event):
    """One feature of a model's live window tested against its training reference (KS)."""

    ts: Timestamp
    model: Name
    version: Annotated[int, Field(ge=1)]
    feature: Name
    statistic: Annotated[float, Field(ge=0, le=1)]
    p_value: Annotated[float, Field(ge=0, le=1)]
    p_adjusted: Annotated[float, Field(ge=0, le=1)]
    """Holm-corrected over the window's features: what ``threshold`` is compared with."""
    threshold: Annotated[float, Field(gt=0, lt=1)]
    drifted: bool
    window_rows: Annotated[int, Field(ge=1)]


class ForecastPoint(_Event):
    """A forecast made at ``ts`` of a series' value ``horizon_seconds`` later, and its band."""

    ts: Timestamp
    service: Name
    signal: Name
    horizon_seconds: Annotated[int, Field(ge=1)]
    forecast: FiniteFloat
    lower: FiniteFloat
    upper: FiniteFloat
    model: str


class CapacityWarning(_Event):
    """A resource (memory, disk) expected to reach ``threshold`` percent in ``eta_seconds``."""

    ts: Timestamp
    service: Name
    signal: Name
    value: FiniteFloat
    threshold: FiniteFloat
    eta_seconds: Annotated[float, Field(ge=0)]
    eta_low_seconds: Annotated[float, Field(ge=0)]
    eta_high_seconds: Annotated[float, Field(ge=0)]
    """Infinite when a flat trend is inside the slope's confidence band."""
    confidence: Annotated[float, Field(ge=0, le=1)]


class ScalingAdvice(_Event):
    """Replicas a service should run for its forecast load (the Kubernetes HPA rule)."""

    ts: Timestamp
    service: Name
    signal: Name
    current_replicas: Annotated[int, Field(ge=1)]
    desired_replicas: Annotated[int, Field(ge=1)]
    factor: FiniteFloat
    metric: FiniteFloat
    target: FiniteFloat
    action: str


class DeadLetter(_Event):
    """Input that could not be used, with why; written to the dead-letter path and counted."""

    received_at: Timestamp
    source: str
    reason: Text
    payload: Text
    truncated: bool = False
    origin: str = ""
    """Where it came from, when known: ``topic/partition@offset`` for a Kafka message."""


@functools.lru_cache(maxsize=65_536)  # a series' alerts ask again and again
def fingerprint(service: str, signal: str, kind: str) -> str:
    """The identity of an alert: the same problem on the same series is one alert."""
    return event_id(service, signal, kind)


def event_id(*parts: Any) -> str:
    """A deterministic 128-bit hex id from the given parts (stable across processes)."""
    raw = "\x1f".join(p.isoformat() if isinstance(p, datetime) else str(p) for p in parts)
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


_E = TypeVar("_E", bound=BaseModel)
_SET_ATTRIBUTE = object.__setattr__


def trusted(cls: type[_E], **fields: Any) -> _E:
    """An event of fields known valid, built without validation (what ``model_construct``
    builds, at a third of its cost): for events our own code makes from validated ones,
    such as a simulator's spans or a window's log signals, never for input.

    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> trusted(Span, trace_id="0" * 32, span_id="1" * 16, service="api", name="GET /",
    ...         start=t, duration_ms=1.0) == Span(trace_id="0" * 32, span_id="1" * 16,
    ...         service="api", name="GET /", start=t, duration_ms=1.0)
    True
    """
    template, required, factories = _shape(cls)
    if not fields.keys() <= template.keys():
        raise TypeError(f"{cls.__name__} has no field(s) {sorted(fields.keys() - template.keys())}")
    if not fields.keys() >= required:
        raise TypeError(f"{cls.__name__} needs field(s) {sorted(required - fields.keys())}")
    values = {**template, **fields}  # the model's field order, the given values
    for name, factory in factories:
        if name not in fields:
            values[name] = factory()
    return constructed(cls, values, set(fields))


def constructed(cls: type[_E], values: dict[str, Any], fields_set: set[str]) -> _E:
    """An event whose ``values`` (every field, in the model's order) are known valid, as
    ``model_construct`` leaves it but without its per-field bookkeeping; ``fields_set``
    names the fields given explicitly."""
    event = cls.__new__(cls)
    _SET_ATTRIBUTE(event, "__dict__", values)
    _SET_ATTRIBUTE(event, "__pydantic_fields_set__", fields_set)
    _SET_ATTRIBUTE(event, "__pydantic_extra__", None)
    _SET_ATTRIBUTE(event, "__pydantic_private__", None)
    return event


def constructed_rows(cls: type[_E], rows: Iterable[Sequence[Any]]) -> list[_E]:
    """`constructed` for many events of a frozen model: each row holds every field's value,
    in the model's order, known valid (what our own producer process sent).

    The events share one ``__pydantic_fields_set__`` (every field): a frozen model never
    changes it, and pydantic's copies copy it. A set per event would cost half as much again.

    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> row = ("0" * 32, "1" * 16, None, "api", "GET /", t, 1.0, "ok", None, {})
    >>> constructed_rows(Span, [row])[0] == Span(**dict(zip(Span.model_fields, row)))
    True
    """
    if not cls.model_config.get("frozen"):
        raise TypeError(f"{cls.__name__} is not frozen: its events may not share a field set")
    names = tuple(cls.model_fields)
    fields_set = set(names)
    new, set_attribute = cls.__new__, _SET_ATTRIBUTE
    events = []
    for row in rows:
        event = new(cls)
        set_attribute(event, "__dict__", dict(zip(names, row, strict=True)))
        set_attribute(event, "__pydantic_fields_set__", fields_set)
        set_attribute(event, "__pydantic_extra__", None)
        set_attribute(event, "__pydantic_private__", None)
        events.append(event)
    return events


@functools.cache
def _shape(
    cls: type[BaseModel],
) -> tuple[dict[str, Any], frozenset[str], tuple[tuple[str, Callable[[], Any]], ...]]:
    """Every field with its default (in the model's order), the required fields, and the
    fields with a default factory."""
    fields = cls.model_fields
    return (
        {name: field.default for name, field in fields.items()},
        frozenset(name for name, field in fields.items() if field.is_required()),
        tuple((n, f.default_factory) for n, f in fields.items() if f.default_factory),  # type: ignore[misc]
    )


def validation_reason(error: ValidationError, limit: int = 5) -> str:
    """A short, readable reason from a pydantic error: ``field: message; ...``."""
    parts = []
    for err in error.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{where}: {err['msg']}")
    more = error.error_count() - limit
    if more > 0:
        parts.append(f"(+{more} more)")
    return "; ".join(parts)


def __getattr__(name: str) -> Any:
    # Snapshots pickled before the batches moved to `airis.batches` name them here.
    if name in ("MetricBatch", "PointRow"):
        from airis import batches

        return getattr(batches, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
