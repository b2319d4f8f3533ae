"""One service's spans in, per-window RED signals and dependency edges out.

`ServiceTraceSignals` sorts each span of one service into a tumbling event-time window (by its
start) and, when the window closes, reports:

- **RED points**, as `MetricPoint`\\ s stamped at the window's start, so trace behaviour goes
  through the same detectors, windows and alerts as any metric. They are read from the
  service's *server* spans (the requests it served):

  - ``trace_rate``: server spans per second (of the sampled traces);
  - ``trace_error_ratio``: the share of them with status ``error``;
  - ``trace_p95_ms``: their 95th-percentile duration.

  A window without server spans reports only ``trace_rate`` (0): a ratio or a percentile of
  nothing is not a value.
- **Dependency edges**, one `DependencyEdge` per callee, from the service's *client* spans
  (the calls it made): calls, errors, and p50/p95/p99 of the latency the caller saw.

Span kinds follow OpenTelemetry: the attribute ``span.kind`` (``server``, ``consumer``,
``client``, ``producer``; the OTLP decoder sets it from the span's kind). Without it, a span
with a ``peer_service`` is a call and any other span a served request.

Windows close by the rule of `airis.operators.windowing.event_windows`: when a span starting at
least ``lateness_seconds`` past a window's end arrives, when the caller's system-time watermark
passes it (`advance`), or at `close_all`; spans for a closed window are returned as late. A
window without spans, between spans or after the last ones (for ``quiet_seconds``), reports
``trace_rate`` 0: a service that stops serving shows as a drop to 0.

Examples
--------
>>> from datetime import UTC, datetime, timedelta
>>> from airis.events import Span
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> def span(sec, ms, status="ok", peer=None):
...     kind = "client" if peer else "server"
...     return Span(trace_id="a" * 32, span_id=f"{sec:016x}", service="api", name="GET /",
...                 start=t0 + timedelta(seconds=sec), duration_ms=ms, status=status,
...                 peer_service=peer, attributes={"span.kind": kind})
>>> traces = ServiceTraceSignals(window_seconds=10, lateness_seconds=2)
>>> windows, late = traces.update_many(
...     [span(1, 20), span(2, 40, "error"), span(3, 5, peer="db"), span(4, 9, "error", "db"),
...      span(13, 30)])
>>> [(p.signal, p.value) for p in windows[0].points]
[('trace_rate', 0.2), ('trace_error_ratio', 0.5), ('trace_p95_ms', 39.0)]
>>> edge = windows[0].edges[0]
>>> edge.caller, edge.callee, edge.calls, edge.errors, edge.p50_ms
('api', 'db', 2, 1, 7.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from airis.batches import SpanBatch
from airis.events import DependencyEdge, MetricPoint, Span, trusted
from airis.operators.windowing.event_windows import TumblingWindows, signal_points
from airis.signals import TRACE_SIGNALS

__all__ = [
    "TRACE_SIGNALS",
    "ServiceTraceSignals",
    "TraceWindow",
    "is_call",
    "quantile",
]

_CALL_KINDS = frozenset({"client", "producer"})
_SERVED_KINDS = frozenset({"server", "consumer"})


def is_call(span: Span) -> bool | None:
    """True for a call to another service, False for a served request, None for neither
    (an ``internal`` span: work inside the service, not a request)."""
    return _is_call(span.attributes.get("span.kind"), span.peer_service)


def _is_call(kind: str | None, peer_service: str | None) -> bool | None:
    if kind in _CALL_KINDS:
        return peer_service is not None
    if kind in _SERVED_KINDS:
        return False
    if kind is None:
        return peer_service is not None
    return None


@dataclass(slots=True)
class _Window:
    served: list[float] = field(default_factory=list)  # durations (ms)
    served_errors: int = 0
    calls: dict[str, list[float]] = field(default_factory=dict)  # callee → durations
    call_errors: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TraceWindow:
    """A closed window of one service's spans: its RED signals, as ``(signal, value)``
    pairs stamped at the window's start (`points` as events), and its outgoing edges."""

    service: str
    start: datetime
    values: tuple[tuple[str, float], ...]
    edges: tuple[DependencyEdge, ...]

    @property
    def points(self) -> tuple[MetricPoint, ...]:
        """The RED signals as metric points."""
        return signal_points(self.service, self.start, self.values)


class ServiceTraceSignals(TumblingWindows[_Window, TraceWindow]):
    """Spans of one service → per-window RED points and edges (see the module docstring)."""

    batch_type = SpanBatch

    def __init__(
        self,
        window_seconds: float = 60.0,
        lateness_seconds: float = 2.0,
        quiet_seconds: float = 3600.0,
    ) -> None:
        super().__init__(window_seconds, lateness_seconds, quiet_seconds)
        self.service: str | None = None

    def update(self, batch: SpanBatch) -> tuple[list[TraceWindow], list[Span]]:
        """Count ``batch``'s spans (arrival order); return ``(closed windows, late spans)``:
        only late spans become `Span` objects."""
        self.service = self.service or batch.service
        column = batch.column
        late = []
        rows = zip(
            self._accumulators(column("start")), column("duration_ms"), column("status"),
            column("peer_service"), column("attributes"), strict=True,
        )  # fmt: skip
        for i, ((_, window), duration, status, peer, attributes) in enumerate(rows):
            if window is None:
                late.append(i)
                continue
            call = _is_call(attributes.get("span.kind"), peer)
            failed = status == "error"
            if call is False:
                window.served.append(duration)
                window.served_errors += failed
            elif call:
                callee = peer or ""
                window.calls.setdefault(callee, []).append(duration)
                window.call_errors[callee] = window.call_errors.get(callee, 0) + failed
        return self.advance(self.watermark()), batch.events(late) if late else []

    def _empty(self) -> _Window:
        return _Window()

    def _report(self, start: datetime, window: _Window) -> TraceWindow:
        service = self.service or "unknown_service"
        end = start + self.window
        served = sorted(window.served)
        values = [("trace_rate", len(served) / self.window.total_seconds())]
        if served:
            values.append(("trace_error_ratio", window.served_errors / len(served)))
            values.append(("trace_p95_ms", quantile(served, 0.95)))
        edges = tuple(
            _edge(service, callee, sorted(durations), window.call_errors[callee], start, end)
            for callee, durations in sorted(window.calls.items())
        )
        return TraceWindow(service, start, tuple(values), edges)


def _edge(
    caller: str, callee: str, durations: list[float], errors: int, start: datetime, end: datetime
) -> DependencyEdge:
    return trusted(
        DependencyEdge,
        window_start=start,
        window_end=end,
        caller=caller,
        callee=callee,
        calls=len(durations),
        errors=errors,
        p50_ms=quantile(durations, 0.5),
        p95_ms=quantile(durations, 0.95),
        p99_ms=quantile(durations, 0.99),
    )


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values, linearly interpolated (NumPy's default method).

    >>> quantile([1.0, 2.0, 3.0, 4.0], 0.5), quantile([5.0], 0.99)
    (2.5, 5.0)
    """
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
