"""One service's log lines in, per-window log signals out, as metric points for the detectors.

`ServiceLogSignals` mines each line's template (`LogTemplateMiner`) and counts, per tumbling
event-time window: lines, error lines, lines of templates never seen before, and lines of
rare templates. Each closed window becomes four `MetricPoint`\\ s stamped at the window's
start, so log behaviour goes through the same detectors, windows, alerts and incidents as any
metric:

- ``log_rate``: lines per second;
- ``log_error_ratio``: the share of ERROR and FATAL lines;
- ``log_new_templates``: lines whose template first appeared in this window (after a warm-up
  of ``warmup_windows`` windows, since at first every template is new);
- ``log_rare_lines``: lines of templates seen fewer than ``rare_below`` times before them
  (after the warm-up).

Windows close by the rule of `airis.operators.windowing.event_windows`: when a line at least
``lateness_seconds`` past a window's end arrives (event time), when the caller's system-time
watermark passes it (`advance`), or at `close_all`; lines for a closed window are returned as
late. A window without lines, between lines or after the last ones (for ``quiet_seconds``),
reports ``log_rate``, ``log_new_templates`` and ``log_rare_lines`` of 0 and no error ratio:
a service that stops logging shows as a drop to 0, not as nothing. Templates that appeared or
changed in a window are reported with it (`LogWindow.templates`, as `LogTemplate` events).

Examples
--------
>>> from datetime import UTC, datetime, timedelta
>>> from airis.events import LogRecord
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> logs = ServiceLogSignals(window_seconds=10, lateness_seconds=2, warmup_windows=0)
>>> lines = [(1, "INFO", "GET /a took 3 ms"), (2, "INFO", "GET /b took 5 ms"),
...          (4, "ERROR", "db timeout after 30 s"), (13, "INFO", "GET /c took 1 ms")]
>>> windows, late = logs.update_many(
...     LogRecord(ts=t0 + timedelta(seconds=s), service="api", severity=sev, body=body)
...     for s, sev, body in lines)
>>> [(p.signal, round(p.value, 3)) for p in windows[0].points]
[('log_rate', 0.3), ('log_error_ratio', 0.333), ('log_new_templates', 2.0), ('log_rare_lines', 3.0)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from airis.batches import LogBatch
from airis.events import LogRecord, LogTemplate, MetricPoint, trusted
from airis.operators.signals.log_templates import LogTemplateMiner, TemplateMatch
from airis.operators.windowing.event_windows import TumblingWindows, signal_points
from airis.signals import LOG_SIGNALS

__all__ = ["LOG_SIGNALS", "LogWindow", "ServiceLogSignals", "TemplateStats"]

_ERRORS = frozenset({"ERROR", "FATAL"})


@dataclass(slots=True)
class TemplateStats:
    """One template of one service: its text and when and how often it was seen."""

    template_id: str
    template: str
    first_seen: datetime
    last_seen: datetime
    count: int = 0
    #: Its `LogTemplate` event as last reported, until it is seen again: the windows closed
    #: after one line of it report one event, not a copy each.
    reported: LogTemplate | None = None


@dataclass(slots=True)
class _Counts:
    lines: int = 0
    errors: int = 0
    new: int = 0
    rare: int = 0
    touched: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class LogWindow:
    """A closed window of one service's logs: its signals, as ``(signal, value)`` pairs
    stamped at the window's start (`points` as events), and the templates it touched."""

    service: str
    start: datetime
    values: tuple[tuple[str, float], ...]
    templates: tuple[LogTemplate, ...]

    @property
    def points(self) -> tuple[MetricPoint, ...]:
        """The signals as metric points."""
        return signal_points(self.service, self.start, self.values)


class ServiceLogSignals(TumblingWindows[_Counts, LogWindow]):
    """Log lines of one service → per-window log signal points (see the module docstring)."""

    batch_type = LogBatch

    def __init__(
        self,
        window_seconds: float = 10.0,
        lateness_seconds: float = 2.0,
        warmup_windows: int = 60,
        rare_below: int = 5,
        miner: LogTemplateMiner | None = None,
        quiet_seconds: float = 3600.0,
    ) -> None:
        super().__init__(window_seconds, lateness_seconds, quiet_seconds)
        self.warmup_windows = warmup_windows
        self.rare_below = rare_below
        self.miner = miner or LogTemplateMiner()
        self.service: str | None = None
        self.templates: dict[str, TemplateStats] = {}
        self._first_window: int | None = None

    def update(self, batch: LogBatch) -> tuple[list[LogWindow], list[LogRecord]]:
        """Count ``batch``'s lines (arrival order); return ``(closed windows, late lines)``:
        only late lines become `LogRecord` objects."""
        self.service = self.service or batch.service
        column = batch.column
        stamps = column("ts")
        late = []
        accumulators = self._accumulators(stamps)
        bodies = zip(accumulators, column("body"), strict=True)
        in_time = [body for (_, counts), body in bodies if counts is not None]
        matches = iter(self.miner.add_many(in_time))
        rows = zip(accumulators, stamps, column("severity"), strict=True)
        for i, ((window_id, counts), ts, severity) in enumerate(rows):
            if counts is None:
                late.append(i)
                continue
            self._count(ts, severity, next(matches), counts, window_id)
        return self.advance(self.watermark()), batch.events(late) if late else []

    def _empty(self) -> _Counts:
        return _Counts()

    def _count(
        self, ts: datetime, severity: str, match: TemplateMatch, counts: _Counts, window_id: int
    ) -> None:
        if self._first_window is None:
            self._first_window = window_id
        warm = window_id - self._first_window >= self.warmup_windows
        stats = self.templates.get(match.template_id)
        if stats is None:
            stats = TemplateStats(match.template_id, match.template, ts, ts)
            self.templates[match.template_id] = stats
            counts.new += warm
        stats.template = match.template
        stats.last_seen = max(stats.last_seen, ts)
        stats.reported = None
        counts.rare += warm and stats.count < self.rare_below
        stats.count += 1
        counts.lines += 1
        counts.errors += severity in _ERRORS
        counts.touched.add(match.template_id)

    def _report(self, start: datetime, counts: _Counts) -> LogWindow:
        seconds = self.window.total_seconds()
        values = {
            "log_rate": counts.lines / seconds,
            "log_error_ratio": counts.errors / counts.lines if counts.lines else None,
            "log_new_templates": float(counts.new),
            "log_rare_lines": float(counts.rare),
        }
        service = self.service or "unknown_service"
        # a ratio of no lines is not a value
        present = tuple((signal, value) for signal, value in values.items() if value is not None)
        touched = tuple(_event(service, self.templates[t]) for t in sorted(counts.touched))
        return LogWindow(service, start, present, touched)


def _event(service: str, stats: TemplateStats) -> LogTemplate:
    """The template's `LogTemplate` as its stats stand (made once until they change)."""
    event = getattr(stats, "reported", None)  # snapshots from before it lack the slot
    if event is None:
        event = stats.reported = trusted(
            LogTemplate,
            service=service,
            template_id=stats.template_id,
            template=stats.template,
            first_seen=stats.first_seen,
            last_seen=stats.last_seen,
            count=stats.count,
        )
    return event
