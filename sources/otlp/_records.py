"""Data points, log records and spans, validated into events or rejections."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from pydantic import ValidationError

from airis.events import (
    MAX_LABELS,
    MAX_TEXT,
    MAX_TS,
    MIN_TS,
    AggregatePoint,
    LogRecord,
    MetricPoint,
    Span,
    aggregate_problem,
    validation_reason,
)
from airis.otel_codes import SPAN_KINDS, STATUS_OF_CODE, severity_of
from airis.sources.fast_point import FAST_CONSTRUCT, construct_point, valid_point_fields
from airis.sources.otlp._mapping import (
    _NO_TS,
    _NO_VALUE_FLAG,
    _datetime_to_ns,
    _finite_or_text,
    _limit,
    _Out,
    _peer_service,
    _sanitise,
    _with_suffix,
)
from airis.sources.otlp._types import MAX_ITEM_BUCKETS, MAX_LABEL_VALUE, MAX_SPAN_NAME, MAX_UNIT

#: The times (ns since the epoch) a point may have: [MIN_TS, MAX_TS).
_MIN_NS, _MAX_NS = _datetime_to_ns(MIN_TS), _datetime_to_ns(MAX_TS)


# Points whose fields pass `valid_point_fields` are built without pydantic's validation (see
# airis.sources.fast_point); anything it declines goes through `MetricPoint.model_validate`.
class _Metric:
    """One OTLP metric being turned into points: what its data points share."""

    __slots__ = ("base", "name", "out", "service", "signal", "unit")

    def __init__(
        self, out: _Out, service: str, base: dict[str, str], name: str, unit: str = ""
    ) -> None:
        self.out = out
        self.service = service
        self.base = base  # resource labels
        self.name = name
        self.signal = _sanitise(name)
        self.unit = unit[:MAX_UNIT]

    def data_point(
        self,
        attrs: dict[str, str],
        ts_ns: int,
        start_ns: int,
        flags: int,
        values: Sequence[tuple[str, float | None]],
    ) -> None:
        """The metric points of one data point: one per ``(suffix, value)`` in ``values``."""
        labels = {**self.base, **attrs} if self.base else attrs
        if len(labels) > MAX_LABELS:
            labels = _limit(labels)
        ns = ts_ns or start_ns
        if flags & _NO_VALUE_FLAG:
            self.reject("no recorded value", self.signal, ns, None, labels)
            return
        if not ns:
            self.reject(_NO_TS, self.signal, ns, None, labels)
            return
        ts = self.out.times.get(ns)
        if ts is None:
            try:
                ts = self.out.ts(ns)
            except OverflowError:
                reason = f"ts: timestamp of {ns} ns outside [2000, 2100)"
                self.reject(reason, self.signal, ns, None, labels)
                return
        suffix, value = values[0]
        self.emit(ts, ns, suffix, value, labels)
        if len(values) > 1:
            for suffix, value in values[1:]:
                self.emit(ts, ns, suffix, value, dict(labels))  # points must not share a dict

    def plain_points(self, times_ns: Sequence[int] | np.ndarray, values: list[float]) -> bool:
        """`data_point` for each of many data points that hold a time and a double and
        nothing else (no attributes, no flags), in one go: True when each would have added its
        point to the columns, and they were added; False, with nothing added, when the caller
        must go point by point (no columns, a value or time that needs a reason, a name or
        resource label that needs validating). Times given as an array of ``uint64`` are
        looked up once for every metric of the message that lists the same ones."""
        columns = self.out.columns
        if columns is None or not FAST_CONSTRUCT or not len(times_ns):
            return False
        out = self.out
        key = times_ns.tobytes() if type(times_ns) is np.ndarray else None
        stamps = out.last_stamps[1] if key is not None and key == out.last_stamps[0] else None
        if stamps is None:
            if key is not None:
                times_ns = times_ns.tolist()
            if not (min(times_ns) >= _MIN_NS and max(times_ns) < _MAX_NS):
                return False
        if not all(map(math.isfinite, values)):
            return False
        labels = dict(self.base)
        if len(labels) > MAX_LABELS:
            labels = _limit(labels)
        if stamps is None:
            times = out.times
            stamps = list(map(times.get, times_ns))
            if not all(stamps):  # a time not seen before (datetimes are all true)
                stamps = [ts or out.ts(ns) for ts, ns in zip(stamps, times_ns, strict=True)]
            if key is not None:
                out.last_stamps = (key, stamps)
        # The service, the signal and the labels are the same for every point: checked once.
        if not valid_point_fields(stamps[0], self.service, self.signal, values[0], labels):
            return False
        columns.extend(self.service, stamps, self.signal, values, labels)
        return True

    def emit(
        self, ts: datetime, ns: int, suffix: str, value: float | None, labels: dict[str, str]
    ) -> None:
        signal = _with_suffix(self.signal, suffix) if suffix else self.signal
        if value is None:
            self.reject("no value", signal, ns, None, labels)
            return
        columns = self.out.columns
        if FAST_CONSTRUCT and valid_point_fields(ts, self.service, signal, value, labels):
            if columns is not None:
                columns.add(ts, self.service, signal, value, labels)
                return
            fields = {"ts": ts, "service": self.service, "signal": signal, "value": value,
                      "labels": labels}  # fmt: skip
            self.out.events.append(construct_point(fields))
            return
        fields = {"ts": ts, "service": self.service, "signal": signal, "value": value,
                  "labels": labels}  # fmt: skip
        try:
            point = MetricPoint.model_validate(fields)
        except ValidationError as exc:
            self.reject(validation_reason(exc), signal, ns, value, labels)
            return
        if columns is not None:
            columns.add(point.ts, point.service, point.signal, point.value, point.labels)
        else:
            self.out.events.append(point)

    def aggregate(
        self, attrs: dict[str, str], ts_ns: int, start_ns: int, flags: int, raw: _RawAggregate
    ) -> None:
        """One `AggregatePoint` (a monotonic Sum, a histogram, a Summary's count and sum)."""
        labels = {**self.base, **attrs} if self.base else attrs
        if len(labels) > MAX_LABELS:
            labels = _limit(labels)
        ns = ts_ns or start_ns
        reason = ""
        if flags & _NO_VALUE_FLAG:
            reason = "no recorded value"
        elif not ns:
            reason = _NO_TS
        elif ts_ns and start_ns > ts_ns:
            reason = f"start_time_unix_nano {start_ns} is after time_unix_nano {ts_ns}"
        else:
            reason = aggregate_problem(raw.kind, raw.value, raw.count, raw.bounds, raw.buckets)
        if reason:
            self.reject(reason, self.signal, ns, raw.value, labels, raw)
            return
        try:
            ts = self.out.ts(ns)
            start = self.out.ts(start_ns) if start_ns and ts_ns else None
        except OverflowError:
            reason = f"ts: timestamp of {ns} ns outside [2000, 2100)"
            self.reject(reason, self.signal, ns, raw.value, labels, raw)
            return
        fields = {
            "ts": ts,
            "start": start,
            "service": self.service,
            "signal": self.signal,
            "kind": raw.kind,
            "temporality": raw.temporality,
            "unit": self.unit,
            "value": raw.value,
            "count": raw.count,
            "bounds": raw.bounds,
            "buckets": raw.buckets,
            "labels": labels,
        }
        if _valid_aggregate_fields(ts, start, self.service, self.signal, raw, labels):
            self.out.events.append(AggregatePoint.model_construct(**fields))
            return
        try:
            point = AggregatePoint.model_validate(fields)
        except ValidationError as exc:
            self.reject(validation_reason(exc), self.signal, ns, raw.value, labels, raw)
        else:
            self.out.events.append(point)

    def reject(
        self,
        reason: str,
        signal: str,
        ns: int,
        value: float | None,
        labels: dict[str, str],
        raw: _RawAggregate | None = None,
    ) -> None:
        item = {
            "service": self.service,
            "metric": self.name,
            "signal": signal,
            "time_unix_nano": str(ns),
            "value": None if value is None else _finite_or_text(value),
            "labels": labels,
        }
        if raw is not None:
            item["kind"] = raw.kind
            item["count"] = raw.count
            item["bounds"] = [_finite_or_text(b) for b in raw.bounds[:MAX_ITEM_BUCKETS]]
            item["buckets"] = list(raw.buckets[:MAX_ITEM_BUCKETS])
        self.out.reject(reason, item)


class _RawAggregate(NamedTuple):
    """An aggregate data point's fields as read from either encoding (see `AggregatePoint`)."""

    kind: str  # "sum" or "histogram"
    temporality: str  # "cumulative" or "delta"
    value: float | None
    count: int = 0
    bounds: tuple[float, ...] = ()
    buckets: tuple[int, ...] = ()


def _valid_aggregate_fields(
    ts: datetime,
    start: datetime | None,
    service: str,
    signal: str,
    raw: _RawAggregate,
    labels: dict[str, str],
) -> bool:
    """Whether `AggregatePoint.model_validate` accepts these fields unchanged (the point's
    consistency is checked before: `aggregate_problem`); otherwise pydantic decides."""
    value = 0.0 if raw.value is None else raw.value
    if not (FAST_CONSTRUCT and valid_point_fields(ts, service, signal, value, labels)):
        return False
    if start is not None and not (type(start) is datetime and MIN_TS <= start < MAX_TS):
        return False
    if not all(type(b) is float and math.isfinite(b) for b in raw.bounds):
        return False
    return all(type(c) is int and c >= 0 for c in raw.buckets) and raw.count >= 0


#: AggregationTemporality: 1 delta, 2 cumulative; 0 (unspecified, invalid) read as cumulative,
#: the default of every SDK.
_TEMPORALITY = {1: "delta"}
_MAX_BUCKETS = 4096


def _temporality(number: int) -> str:
    return _TEMPORALITY.get(number, "cumulative")


def _exponential_buckets(
    scale: int,
    zero_count: int,
    positive: tuple[int, Sequence[int]],
    negative: tuple[int, Sequence[int]],
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """An ExponentialHistogram's buckets as explicit ones (``ValueError``: why not).

    With ``base = 2 ** 2 ** -scale``, positive bucket ``i`` covers
    ``(base ** (offset + i), base ** (offset + i + 1)]`` and negative bucket ``i`` the same
    range below zero. The explicit buckets keep every bound: an empty bucket below the lowest
    and above the highest, and the zero bucket (with the negative ones when there are none
    of those) between the negative and the positive ranges.

    >>> _exponential_buckets(0, 1, (1, [2, 3]), (0, []))
    ((2.0, 4.0, 8.0), (1, 2, 3, 0))
    """
    if not -10 <= scale <= 20:
        raise ValueError(f"scale {scale} outside [-10, 20]")
    pos_offset, pos = positive
    neg_offset, neg = negative
    if len(pos) + len(neg) > _MAX_BUCKETS:
        raise ValueError(f"more than {_MAX_BUCKETS} buckets")
    step = 2.0**-scale

    def bound(index: int) -> float:
        exponent = index * step
        if not -1000 < exponent < 1000:
            raise ValueError(f"bucket bound 2**{exponent} out of range")
        return 2.0**exponent

    bounds: list[float] = []
    counts: list[int] = []
    if any(neg):
        bounds += [-bound(neg_offset + i + 1) for i in reversed(range(len(neg)))]
        bounds.append(-bound(neg_offset))
        counts += [0, *reversed(neg)]
    if pos:
        bounds += [bound(pos_offset + i) for i in range(len(pos) + 1)]
        counts += [zero_count, *pos, 0]
    else:
        counts += [zero_count]
        if not bounds:
            return (), ()  # only a zero bucket: count and sum, no distribution
        counts.append(0)
        bounds.append(0.0)
    return tuple(bounds), tuple(counts)


def _quantile_suffix(quantile: float) -> str:
    text = repr(float(quantile))
    return ".q" + _sanitise(text[:-2] if text.endswith(".0") else text)


class _RawLog(NamedTuple):
    """A log record's fields as read from either encoding, before mapping."""

    time_ns: int
    observed_ns: int
    severity_number: int
    severity_text: str
    body: str
    trace_id: str | None
    span_id: str | None
    attributes: dict[str, str]


def _emit_log(out: _Out, service: str, raw: _RawLog) -> None:
    fields: dict[str, Any] = {
        "service": service,
        "severity": severity_of(raw.severity_number, raw.severity_text),
        "body": raw.body[:MAX_TEXT],
        "trace_id": raw.trace_id,
        "span_id": raw.span_id,
        "attributes": _limit(raw.attributes),
    }
    ns = raw.time_ns or raw.observed_ns
    try:
        if not ns:
            raise _NoTimestamp(
                "ts: no timestamp (time_unix_nano and observed_time_unix_nano are 0)"
            )
        out.events.append(LogRecord(ts=_timestamp(out, ns, "ts"), **fields))
        return
    except _NoTimestamp as exc:
        reason = str(exc)
    except ValidationError as exc:
        reason = validation_reason(exc)
    fields["body"] = fields["body"][:MAX_LABEL_VALUE]  # enough to recognise it
    out.reject(reason, dict(fields, time_unix_nano=str(raw.time_ns)))


class _RawSpan(NamedTuple):
    """A span's fields as read from either encoding, before mapping."""

    trace_id: str | None
    span_id: str | None
    parent_span_id: str | None
    name: str
    start_ns: int
    end_ns: int
    status: int
    attributes: dict[str, str]
    kind: int = 0


def _emit_span(out: _Out, service: str, raw: _RawSpan) -> None:
    attributes = raw.attributes
    kind = SPAN_KINDS.get(raw.kind)
    if kind is not None and "span.kind" not in attributes:
        attributes = {**attributes, "span.kind": kind}
    fields: dict[str, Any] = {
        "trace_id": raw.trace_id,
        "span_id": raw.span_id,
        "parent_span_id": raw.parent_span_id,
        "service": service,
        "name": raw.name[:MAX_SPAN_NAME],
        "duration_ms": (raw.end_ns - raw.start_ns) / 1e6,
        "status": STATUS_OF_CODE.get(raw.status, "unset"),
        "peer_service": _peer_service(attributes),
        "attributes": _limit(attributes),
    }
    try:
        out.events.append(Span(start=_timestamp(out, raw.start_ns, "start"), **fields))
        return
    except _NoTimestamp as exc:
        reason = str(exc)
    except ValidationError as exc:
        reason = validation_reason(exc)
    del fields["duration_ms"]
    fields["start_time_unix_nano"] = str(raw.start_ns)
    fields["end_time_unix_nano"] = str(raw.end_ns)
    out.reject(reason, fields)


class _NoTimestamp(Exception):
    """A record without a usable timestamp; the message is the reason."""


def _timestamp(out: _Out, ns: int, field: str) -> datetime:
    try:
        return out.ts(ns)
    except OverflowError:
        raise _NoTimestamp(f"{field}: timestamp of {ns} ns outside [2000, 2100)") from None
