"""Events as columns: what crosses between workers and partitions in bulk.

A `MetricBatch` holds many already-validated points of one detection key as one tuple per
field; a `PointRow` is one point's validated fields without the model. A `SpanBatch`, a
`LogBatch`, a `ForecastBatch` and a `ModelScoreBatch` hold one service's spans, log lines,
forecast points and model scores the same way (`EventBatch`). They exist so that the data
path moves, pickles and stores plain values instead of a model per event.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from operator import itemgetter
from typing import Any, ClassVar, NamedTuple, Self

from airis.events import (
    MAX_TS,
    MIN_TS,
    NAME_PATTERN,
    ForecastPoint,
    LogRecord,
    MetricPoint,
    ModelScore,
    Span,
    constructed_rows,
)

__all__ = [
    "EventBatch",
    "ForecastBatch",
    "LogBatch",
    "MetricBatch",
    "ModelScoreBatch",
    "PickledOnce",
    "PointRow",
    "SpanBatch",
    "event_count",
    "plain_name",
    "plain_time",
    "plain_window",
    "unbatched",
]


@dataclass(frozen=True, slots=True)
class MetricBatch:
    """Many already-validated points of one detection key, as columns.

    What crosses between workers: a flow groups the points of one batch of input by key
    (`from_points`), so an exchange moves one item per key and batch, and pickles lists of
    plain values instead of a model per point. ``key`` is the service, or the service with a
    ``/logs``, ``/traces`` or ``/otlp`` suffix for points that keep windows of their own.
    ``labels`` is empty when no point has labels (the common case), else one dict per point.

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> batch = MetricBatch.from_points("api", [
    ...     MetricPoint(ts=t, service="api", signal="cpu", value=1.0),
    ...     MetricPoint(ts=t, service="api", signal="mem", value=2.0)])
    >>> len(batch), batch.signal, batch.labels
    (2, ('cpu', 'mem'), ())
    >>> batch.point(1) == MetricPoint(ts=t, service="api", signal="mem", value=2.0)
    True
    """

    key: str
    service: str
    ts: tuple[datetime, ...]
    signal: tuple[str, ...]
    value: tuple[float, ...]
    labels: tuple[dict[str, str], ...] = ()
    #: The columns as pickled the first time (`__reduce__`).
    _pickled: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        """Pickle the columns once, however often the batch is pickled: Bytewax pickles an
        item that crosses processes twice (once to size it, once to send it), and a batch
        may cross again to the store. The batch is immutable, so the bytes stay true; they
        live as long as the batch."""
        columns = (self.key, self.service, self.ts, self.signal, self.value, self.labels)
        return _unpickled_batch, (_pickled_once(self, columns),)

    @classmethod
    def from_points(cls, key: str, points: Sequence[MetricPoint | PointRow]) -> MetricBatch:
        """The points (all of one service, in arrival order) as one batch."""
        labels = tuple(p.labels for p in points)
        return cls(
            key,
            points[0].service,
            tuple(p.ts for p in points),
            tuple(p.signal for p in points),
            tuple(p.value for p in points),
            labels if any(labels) else (),
        )

    def __len__(self) -> int:
        return len(self.ts)

    def point(self, i: int) -> MetricPoint:
        """Point ``i`` again (its fields were validated when it was first built)."""
        return MetricPoint.model_construct(
            ts=self.ts[i],
            service=self.service,
            signal=self.signal[i],
            value=self.value[i],
            labels=self.labels[i] if self.labels else {},
        )

    def points(self) -> Iterator[MetricPoint]:
        """Every point, in order."""
        return (self.point(i) for i in range(len(self.ts)))


def _unpickled_batch(columns: bytes) -> MetricBatch:
    return MetricBatch(*pickle.loads(columns))


def _pickled_once(holder: Any, state: Any) -> bytes:
    """``state`` pickled, kept in ``holder._pickled`` from its first pickling on (unset in a
    holder loaded from an older pickle, or not yet pickled)."""
    pickled = getattr(holder, "_pickled", None)
    if pickled is None:
        pickled = pickle.dumps(state, pickle.HIGHEST_PROTOCOL)
        object.__setattr__(holder, "_pickled", pickled)
    return pickled


class PickledOnce(list):
    """A list that pickles its items once, however often it is pickled, and arrives as a plain
    list: a batch of events handed to an exchange (Bytewax pickles an item that crosses
    processes twice, once to size it and once to send it). Not to be changed once handed on.

    >>> batch = PickledOnce(["a", "b"])
    >>> pickle.dumps(batch) == pickle.dumps(batch), type(pickle.loads(pickle.dumps(batch)))
    (True, <class 'list'>)
    """

    __slots__ = ("_pickled",)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return pickle.loads, (_pickled_once(self, list(self)),)


class PointRow(NamedTuple):
    """A metric point's fields, validated as a `MetricPoint`'s would be, without the model:
    what an unkeyed partition's decoder holds for the alignment, which gives it on as part of
    a `MetricBatch` (`MetricBatch.from_points` reads either)."""

    ts: datetime
    service: str
    signal: str
    value: float
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Many already-validated events of one model (``model``) and one service, as one tuple
    per field of the model, in its order (the service's column included, so a row is an
    event's fields). Subclasses name the model: `SpanBatch`, `LogBatch`, `ForecastBatch`,
    `ModelScoreBatch`."""

    model: ClassVar[type[Any]]
    service: str
    columns: tuple[tuple[Any, ...], ...]

    @classmethod
    def from_events(cls, events: Sequence[Any]) -> Self:
        """``events`` (validated, all of one service, at least one) as one batch."""
        fields = itemgetter(*cls.model.model_fields)
        return cls(
            events[0].service, tuple(zip(*(fields(e.__dict__) for e in events), strict=True))
        )

    @classmethod
    def per_service_rows(cls, rows: Iterable[tuple[Any, ...]]) -> list[Self]:
        """Events given as rows (every field's value, in the model's order, known valid: what
        our own producer made), of any services, as one batch per service, in the order of
        each service's first row."""
        at = _field_index(cls.model)["service"]
        runs: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            run = runs.get(row[at])
            if run is None:
                runs[row[at]] = [row]
            else:
                run.append(row)
        return [cls(service, tuple(zip(*run, strict=True))) for service, run in runs.items()]

    @classmethod
    def joined(cls, batches: Sequence[Self]) -> Self:
        """Batches of one service as one, in order."""
        if len(batches) == 1:
            return batches[0]
        columns = zip(*(b.columns for b in batches), strict=True)
        return cls(
            batches[0].service, tuple(tuple(c for part in col for c in part) for col in columns)
        )

    @classmethod
    def of(cls, items: Sequence[Any]) -> Self:
        """Events and batches of this model and one service (at least one), in order, as one
        batch: what a keyed step was given, from a simulator's batches or decoded events."""
        batches: list[Self] = []
        run: list[Any] = []
        for item in items:
            if isinstance(item, cls):
                if run:
                    batches.append(cls.from_events(run))
                    run = []
                batches.append(item)
            else:
                run.append(item)
        if run:
            batches.append(cls.from_events(run))
        return cls.joined(batches)

    @classmethod
    def validated(cls, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """An event's fields (``row``, in the model's order) as the model validates them:
        for a row the maker's own checks could not vouch for (raises what the model raises)."""
        event = cls.model(**dict(zip(cls.model.model_fields, row, strict=True)))
        return tuple(event.__dict__.values())

    def __len__(self) -> int:
        return len(self.columns[0])

    def column(self, name: str) -> tuple[Any, ...]:
        """The values of field ``name``."""
        return self.columns[_field_index(self.model)[name]]

    def events(self, indices: Iterable[int] | None = None) -> list[Any]:
        """The events again (those at ``indices``, or all), without validating them anew."""
        rows = zip(*self.columns, strict=True)
        if indices is not None:
            rows = (tuple(c[i] for c in self.columns) for i in indices)
        return constructed_rows(self.model, rows)


@dataclass(frozen=True, slots=True)
class SpanBatch(EventBatch):
    """Spans of one service as columns (`EventBatch`).

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> spans = [Span(trace_id="0" * 32, span_id=f"{i:016x}", service="api", name="GET /",
    ...               start=t, duration_ms=float(i)) for i in (1, 2)]
    >>> batch = SpanBatch.from_events(spans)
    >>> len(batch), batch.column("duration_ms"), batch.events() == spans
    (2, (1.0, 2.0), True)
    """

    model = Span


@dataclass(frozen=True, slots=True)
class LogBatch(EventBatch):
    """Log lines of one service as columns (`EventBatch`)."""

    model = LogRecord


@dataclass(frozen=True, slots=True)
class ForecastBatch(EventBatch):
    """Forecast points of one service as columns (`EventBatch`): what a planning step made
    over a batch of windows (`airis.operators.planning.events.forecast_batch`)."""

    model = ForecastPoint


@dataclass(frozen=True, slots=True)
class ModelScoreBatch(EventBatch):
    """Model scores of one service's windows as columns (`EventBatch`): what the model step
    made of a batch of windows (`airis.models.model_events.model_events`)."""

    model = ModelScore


def plain_time(ts: object) -> bool:
    """Whether an event's timestamp validation keeps ``ts`` as it is: a datetime in UTC
    within the accepted years (`airis.events.Timestamp`)."""
    return type(ts) is datetime and ts.tzinfo is UTC and MIN_TS <= ts < MAX_TS


def plain_name(value: object) -> bool:
    """Whether an event's name validation keeps ``value`` as it is (`airis.events.Name`)."""
    return type(value) is str and NAME_PATTERN.fullmatch(value) is not None


def plain_window(service: object, start: object, end: object) -> bool:
    """Whether a window's service and bounds are what validation keeps as they are."""
    return plain_time(start) and plain_time(end) and plain_name(service)


@cache
def _field_index(model: type[Any]) -> dict[str, int]:
    return {name: i for i, name in enumerate(model.model_fields)}


def unbatched(items: Iterable[Any]) -> list[Any]:
    """``items`` with each batch (`MetricBatch`, `EventBatch`) replaced by its events, in
    order (what a flow stored, read event by event)."""
    out: list[Any] = []
    for item in items:
        if type(item) is MetricBatch:
            out.extend(item.points())
        elif isinstance(item, EventBatch):
            out.extend(item.events())
        else:
            out.append(item)
    return out


def event_count(items: Iterable[Any]) -> int:
    """How many events ``items`` hold: a batch (`MetricBatch`, `EventBatch`) its own, any
    other item one."""
    return sum(len(item) if isinstance(item, MetricBatch | EventBatch) else 1 for item in items)
