"""One service's OTLP aggregates in, per-interval rates, means and percentiles out.

`OtlpMetricPoints` turns the `AggregatePoint`\\ s of one service (monotonic Sums, Histograms and
ExponentialHistograms as explicit buckets, Summaries' count and sum) into `MetricPoint`\\ s a
detector can score: what happened *during* each interval, never a running total.

**Per series** (service, metric, attribute set):

- *cumulative* points: the change since the series' previous point. A value, count or bucket
  that went down, or a start time that changed, is a reset: the new value is the change since
  the new start (over the time since the new start when it lies after the previous point, else
  since the previous point). The first point of a series only sets the baseline, unless it has
  a start time at most ``first_interval_seconds`` before it: then it is the change since that
  start (a process that just started), as its delta over that time.
- *delta* points: taken as they are, over ``(start, ts]`` (without a start time: since the
  series' previous point; the first such point only sets the baseline).
- a point not newer than its series' last one (a duplicate, or out of order) is refused with a
  reason, as is a new series beyond ``max_series`` (the caller dead-letters both).
- a histogram whose bucket bounds changed (an exponential histogram rescaled) has the previous
  buckets moved onto the new bounds (each to the bucket holding its upper bound, exact when
  the new bounds are a subset of the old ones); if that gives a negative bucket, the interval
  keeps its count and sum (rate and mean) but gives no percentiles.

**Per service and slot**: points are grouped into slots of ``slot_seconds`` (aligned as the
detection windows are), and a slot is emitted when a point of a later slot arrives (or at
`close_all`): that adds one collection interval of delay (10-60 s for an SDK's default export
interval). A signal is emitted for a slot when one of its series changed in it; every series of
it that is still fresh (its last point less than two of its own intervals old) contributes its
latest interval, so the instances of a service that report at different moments add up instead
of taking turns. Points of an earlier slot that arrive after it was emitted (messages of one
service read from several partitions) still update their series and count in the next slot.
Points are stamped at the slot's start. Series unseen for ``idle_seconds`` of the service's event
time are dropped.

**What comes out** (attribute sets merged; every point labelled ``airis.derived_from=otlp``):

- a Sum ``x`` → ``x.rate`` (per second);
- a histogram ``x`` → ``x.rate`` (observations per second), ``x.mean``, ``x.p50``, ``x.p95``,
  ``x.p99`` (in the metric's own unit; no mean without a sum, no percentiles without buckets,
  only the rate when the interval had no observations);
- the OpenTelemetry semantic conventions for served requests, ``http.server.request.duration``
  (seconds unless its unit says otherwise), ``rpc.server.duration`` and the older
  ``http.server.duration`` (milliseconds unless said otherwise), all merged → the simulator's
  signals: ``request_rate`` (per second), ``latency_p50``/``latency_p95``/``latency_p99``
  (milliseconds) and ``error_rate`` (the share of requests whose attributes say
  ``http.response.status_code`` (or ``http.status_code``) ≥ 500, ``error.type`` present, or
  ``rpc.grpc.status_code`` ≠ 0).

Percentiles interpolate linearly inside the bucket that holds the rank, as Prometheus'
``histogram_quantile`` does: the lowest bucket starts at 0 when its upper bound is positive,
and a rank in the +Inf bucket gives the highest finite bound.

Examples
--------
>>> import random
>>> from datetime import UTC, datetime, timedelta
>>> from airis.events import AggregatePoint
>>> rng = random.Random(42)
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> bounds = (0.0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0)
>>> buckets, total, out = [0] * (len(bounds) + 1), 0.0, []
>>> otlp = OtlpMetricPoints(slot_seconds=10)
>>> for tick in range(4):
...     for _ in range(200):
...         x = rng.lognormvariate(-3.2, 0.3)
...         buckets[next((i for i, b in enumerate(bounds) if x <= b), len(bounds))] += 1
...         total += x
...     point = AggregatePoint(
...         ts=t0 + timedelta(seconds=10 * tick), start=t0 - timedelta(seconds=10),
...         service="api", signal="http.server.request.duration", kind="histogram",
...         temporality="cumulative", unit="s", value=total, count=sum(buckets),
...         bounds=bounds, buckets=tuple(buckets))
...     points, refused = otlp.update_many([point])
...     out += points
>>> out += otlp.close_all()
>>> [(p.ts.second, p.signal, round(p.value, 1)) for p in out if p.ts.second == 10]
[(10, 'request_rate', 20.0), (10, 'latency_p50', 41.9), (10, 'latency_p95', 73.5),
 (10, 'latency_p99', 95.8), (10, 'error_rate', 0.0)]
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from airis.events import AggregatePoint, MetricPoint
from airis.operators.windowing.event_windows import ALIGN_TO

__all__ = [
    "DERIVED_LABEL",
    "DURATION_CONVENTIONS",
    "QUANTILES",
    "OtlpMetricPoints",
    "histogram_quantile",
    "is_error",
]

DEFAULT_SLOT_SECONDS = 10.0
DEFAULT_FIRST_INTERVAL_SECONDS = 300.0
DEFAULT_IDLE_SECONDS = 3600.0
DEFAULT_MAX_SERIES = 10_000
#: Percentiles derived from histograms, and their suffixes.
QUANTILES = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))
#: Served-request durations of the semantic conventions, with their default unit.
DURATION_CONVENTIONS = {
    "http.server.request.duration": "s",
    "rpc.server.duration": "ms",
    "http.server.duration": "ms",
}
#: The label every derived point carries (value ``otlp``): flows tell them apart by it.
DERIVED_LABEL = "airis.derived_from"
_MILLISECONDS_PER = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "µs": 1e-3, "ns": 1e-6, "min": 60_000.0}
_MAX_NAME = 128
_LABELS = {DERIVED_LABEL: "otlp"}
#: A series is fresh for this many of its own intervals after its last point.
_FRESH_INTERVALS = 2.0


def is_error(labels: dict[str, str]) -> bool:
    """Whether a served-request attribute set is a failure, by the semantic conventions.

    >>> is_error({"http.response.status_code": "503"}), is_error({"rpc.grpc.status_code": "0"})
    (True, False)
    """
    for key in ("http.response.status_code", "http.status_code"):
        code = labels.get(key)
        if code is not None:
            try:
                if int(code) >= 500:
                    return True
            except ValueError:
                pass
    if labels.get("error.type"):
        return True
    code = labels.get("rpc.grpc.status_code")
    return code is not None and code.strip() not in ("0", "OK", "")


def histogram_quantile(q: float, bounds: tuple[float, ...], counts: list[float]) -> float | None:
    """The ``q`` quantile of explicit buckets, as Prometheus' ``histogram_quantile`` gives it
    (None without observations).

    >>> histogram_quantile(0.5, (1.0, 2.0), [0, 10, 0])
    1.5
    >>> histogram_quantile(0.99, (1.0, 2.0), [0, 0, 10])  # +Inf: the highest finite bound
    2.0
    """
    total = sum(counts)
    if total <= 0 or not bounds:
        return None
    rank = q * total
    seen = 0.0
    for i, count in enumerate(counts):
        if count > 0 and seen + count >= rank:
            if i == len(bounds):
                return bounds[-1]
            upper = bounds[i]
            if i == 0:
                if upper <= 0:
                    return upper
                lower = 0.0
            else:
                lower = bounds[i - 1]
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return bounds[-1]


def _rebin(bounds: tuple[float, ...], counts: Iterable[float], onto: tuple[float, ...]) -> list:
    """Bucket counts moved onto other bounds: each to the bucket that holds its upper bound."""
    out = [0.0] * (len(onto) + 1)
    for i, count in enumerate(counts):
        upper = bounds[i] if i < len(bounds) else math.inf
        out[bisect_left(onto, upper) if upper != math.inf else len(onto)] += count
    return out


@dataclass(slots=True)
class _Series:
    """One series' baseline (its last point) and its latest interval (what it contributes)."""

    kind: str
    group: str  # the derived signal (a Sum's name + ".rate", a histogram's name, or "requests")
    scale: float  # multiplies bounds, sums and means (milliseconds for the conventions)
    error: bool
    last_ts: datetime
    start: datetime | None
    value: float | None
    count: int
    bounds: tuple[float, ...]
    buckets: tuple[int, ...]
    seconds: float = 0.0  # length of the latest interval; 0: none yet
    d_value: float | None = None
    d_count: float = 0.0
    d_bounds: tuple[float, ...] = ()
    d_buckets: tuple[float, ...] | None = None
    changed: bool = False  # since the last emitted slot


class OtlpMetricPoints:
    """Per-interval `MetricPoint`\\ s from one service's `AggregatePoint`\\ s (module docstring).

    Parameters
    ----------
    slot_seconds
        Length of the slots points are grouped into (the flow passes its window length).
    first_interval_seconds
        A series' first cumulative point counts from its start time when that is at most
        this long before it; otherwise it only sets the baseline.
    idle_seconds
        Series without a point for this long (event time) are dropped.
    max_series
        Series kept per service; points of further new series are refused.
    """

    def __init__(
        self,
        slot_seconds: float = DEFAULT_SLOT_SECONDS,
        first_interval_seconds: float = DEFAULT_FIRST_INTERVAL_SECONDS,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> None:
        if slot_seconds <= 0 or first_interval_seconds < 0 or idle_seconds <= 0:
            raise ValueError("slot_seconds and idle_seconds must be > 0, first_interval >= 0")
        if max_series < 1:
            raise ValueError("max_series must be at least 1")
        self.slot_seconds = slot_seconds
        self.first_interval_seconds = first_interval_seconds
        self.idle_seconds = idle_seconds
        self.max_series = max_series
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], _Series] = {}
        self._service: str | None = None
        self._slot: datetime | None = None
        self.refused = 0
        self.evicted = 0

    def update_many(
        self, points: Iterable[AggregatePoint]
    ) -> tuple[list[MetricPoint], list[tuple[AggregatePoint, str]]]:
        """Take points (of one service); return the points of the slots they closed, and the
        refused points with the reason."""
        out: list[MetricPoint] = []
        refused: list[tuple[AggregatePoint, str]] = []
        for point in points:
            self._service = point.service
            slot = self._slot_of(point.ts)
            if self._slot is None or slot > self._slot:
                if self._slot is not None:
                    out += self._emit(self._slot)
                self._slot = slot
            reason = self._apply(point)
            if reason:
                self.refused += 1
                refused.append((point, reason))
        return out, refused

    def close_all(self) -> list[MetricPoint]:
        """Emit the open slot (at the end of the input)."""
        if self._slot is None:
            return []
        return self._emit(self._slot)

    def _slot_of(self, ts: datetime) -> datetime:
        offset = (ts - ALIGN_TO).total_seconds()
        return ALIGN_TO + timedelta(
            seconds=math.floor(offset / self.slot_seconds) * self.slot_seconds
        )

    def _apply(self, p: AggregatePoint) -> str:
        key = (p.signal, tuple(sorted(p.labels.items())))
        s = self._series.get(key)
        if s is None:
            if len(self._series) >= self.max_series:
                return f"series cap reached: {self.max_series} series for service {p.service}"
            s = self._series[key] = self._new_series(p)
            since = (p.ts - p.start).total_seconds() if p.start is not None else math.inf
            fresh = 0 < since <= self.first_interval_seconds
            if fresh or (p.temporality == "delta" and since < math.inf):
                self._take(s, p, p.value, p.count, p.bounds, p.buckets, since)
            return ""
        if p.ts <= s.last_ts:
            return f"not newer than the series' last point ({s.last_ts.isoformat()})"
        since_last = (p.ts - s.last_ts).total_seconds()
        if p.temporality == "delta":
            after = p.start is not None and s.last_ts <= p.start < p.ts
            seconds = (p.ts - p.start).total_seconds() if after else since_last  # type: ignore[operator]
            self._take(s, p, p.value, p.count, p.bounds, p.buckets, seconds)
            return ""
        if self._is_reset(s, p):
            after = p.start is not None and s.last_ts < p.start < p.ts
            seconds = (p.ts - p.start).total_seconds() if after else since_last  # type: ignore[operator]
            self._take(s, p, p.value, p.count, p.bounds, p.buckets, seconds)
            return ""
        d_value = None if p.value is None or s.value is None else p.value - s.value
        d_buckets: tuple[float, ...] | None = None
        if p.buckets:
            before = s.buckets if s.bounds == p.bounds else _rebin(s.bounds, s.buckets, p.bounds)
            if len(before) == len(p.buckets):
                d_buckets = tuple(a - b for a, b in zip(p.buckets, before, strict=True))
                if min(d_buckets) < 0:
                    d_buckets = None
        self._take(s, p, d_value, p.count - s.count, p.bounds, d_buckets, since_last)
        return ""

    def _new_series(self, p: AggregatePoint) -> _Series:
        default_unit = DURATION_CONVENTIONS.get(p.signal)
        if p.kind == "histogram" and default_unit is not None:
            scale = _MILLISECONDS_PER.get(p.unit or default_unit, _MILLISECONDS_PER[default_unit])
            group, error = "requests", is_error(p.labels)
        else:
            group = p.signal + ".rate" if p.kind == "sum" else p.signal
            scale, error = 1.0, False
        return _Series(
            p.kind, group, scale, error, p.ts, p.start, p.value, p.count, p.bounds, p.buckets
        )

    @staticmethod
    def _is_reset(s: _Series, p: AggregatePoint) -> bool:
        if p.start is not None and s.start is not None and p.start != s.start:
            return True
        if p.value is not None and s.value is not None and p.kind == "sum" and p.value < s.value:
            return True
        if p.count < s.count:
            return True
        return p.bounds == s.bounds and any(
            a < b for a, b in zip(p.buckets, s.buckets, strict=False)
        )

    @staticmethod
    def _take(
        s: _Series,
        p: AggregatePoint,
        d_value: float | None,
        d_count: float,
        bounds: tuple[float, ...],
        d_buckets: tuple[float, ...] | None,
        seconds: float,
    ) -> None:
        """Record an interval's change (added to the slot's earlier one) and the new baseline."""
        if s.changed and seconds > 0:  # a second interval in one slot: add them up
            s.seconds += seconds
            s.d_count += d_count
            s.d_value = None if d_value is None or s.d_value is None else s.d_value + d_value
            if d_buckets is None or s.d_buckets is None or bounds != s.d_bounds:
                s.d_buckets = None  # no percentiles for this slot
            else:
                s.d_buckets = tuple(a + b for a, b in zip(s.d_buckets, d_buckets, strict=True))
            s.d_bounds = bounds
        elif seconds > 0:
            s.seconds, s.d_value, s.d_count = seconds, d_value, d_count
            s.d_bounds, s.d_buckets, s.changed = bounds, d_buckets, True
        s.last_ts, s.start, s.value, s.count = p.ts, p.start, p.value, p.count
        s.bounds, s.buckets = p.bounds, p.buckets

    def _emit(self, slot: datetime) -> list[MetricPoint]:
        end = slot + timedelta(seconds=self.slot_seconds)
        groups: dict[str, list[_Series]] = {}
        changed: set[str] = set()
        idle: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        for key, s in self._series.items():
            age = (end - s.last_ts).total_seconds()
            if age > self.idle_seconds:
                idle.append(key)
                continue
            if s.changed:
                changed.add(s.group)
            if s.seconds > 0 and (s.changed or age <= _FRESH_INTERVALS * s.seconds):
                groups.setdefault(s.group, []).append(s)
        for key in idle:
            del self._series[key]
        self.evicted += len(idle)
        out: list[MetricPoint] = []
        for group in sorted(changed):
            members = groups.get(group, [])
            if members:
                out += self._derive(slot, group, members)
        for s in self._series.values():
            s.changed = False
        return out

    def _derive(self, slot: datetime, group: str, members: list[_Series]) -> list[MetricPoint]:
        values: list[tuple[str, float]] = []
        if members[0].kind == "sum":
            rate = sum((s.d_value or 0.0) / s.seconds for s in members)
            return self._points(slot, [(group, rate)])
        convention = group == "requests"
        names = {
            "rate": "request_rate" if convention else group + ".rate",
            "mean": "" if convention else group + ".mean",
        }
        values.append((names["rate"], sum(s.d_count / s.seconds for s in members)))
        total = sum(s.d_count for s in members)
        if total > 0:
            with_sum = [s for s in members if s.d_value is not None]
            counted = sum(s.d_count for s in with_sum)
            if names["mean"] and counted > 0:
                mean = sum(s.d_value * s.scale for s in with_sum) / counted  # type: ignore[operator]
                values.append((names["mean"], mean))
            values += self._quantiles(group, members, convention)
            if convention:
                values.append(("error_rate", sum(s.d_count for s in members if s.error) / total))
        return self._points(slot, values)

    @staticmethod
    def _quantiles(group: str, members: list[_Series], convention: bool) -> list[tuple[str, float]]:
        with_buckets = [s for s in members if s.d_buckets is not None and s.d_bounds]
        if not with_buckets:
            return []
        onto = max((tuple(b * s.scale for b in s.d_bounds) for s in with_buckets), key=len)
        merged = [0.0] * (len(onto) + 1)
        for s in with_buckets:
            bounds = tuple(b * s.scale for b in s.d_bounds)
            counts = s.d_buckets if bounds == onto else _rebin(bounds, s.d_buckets, onto)  # type: ignore[arg-type]
            merged = [a + b for a, b in zip(merged, counts, strict=True)]
        out = []
        for q, suffix in QUANTILES:
            value = histogram_quantile(q, onto, merged)
            if value is not None:
                out.append((f"latency_{suffix}" if convention else f"{group}.{suffix}", value))
        return out

    def _points(self, slot: datetime, values: list[tuple[str, float]]) -> list[MetricPoint]:
        service = self._service or "unknown_service"
        return [
            MetricPoint(
                ts=slot, service=service, signal=_cut(name), value=value, labels=_LABELS.copy()
            )
            for name, value in values
            if math.isfinite(value)
        ]


def _cut(name: str) -> str:
    """A derived name within 128 characters, its suffix kept."""
    if len(name) <= _MAX_NAME:
        return name
    head, _, suffix = name.rpartition(".")
    return head[: _MAX_NAME - len(suffix) - 1] + "." + suffix
