"""Tumbling event-time windows of one service: the closing rule the log and trace signals share.

A window ``[start, start + window)`` closes once the watermark passes its end. The watermark is
the newest timestamp seen minus ``lateness``, plus whatever system time the caller says it has
waited (`watermark`): the caller lets system time count only once the service has been quiet
for a grace period, so bursts and short pauses make nothing late. An event for a closed window
is late.

Quiet stretches are reported, not skipped: every window between two windows with events, and
after the last one, closes as an *empty* window (a log rate of 0 is what a crashed service
looks like), for at most ``quiet_seconds`` after the last window with events; beyond that the
service counts as gone and nothing more is reported until it sends again.

Subclasses count a batch of events as columns (`update`; `update_many` takes event objects)
and say what a window accumulates (`_empty`) and what a closed one reports (`_report`):
signal values, kept as ``(signal, value)`` pairs until they are needed as points
(`signal_points`).

Examples
--------
>>> from datetime import UTC, datetime, timedelta
>>> class Counts(TumblingWindows[list, tuple]):
...     def _empty(self): return []
...     def _report(self, start, acc): return (start.second, len(acc))
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> w = Counts(window_seconds=10, lateness_seconds=2, quiet_seconds=20)
>>> for s in (1, 2, 35):
...     w._accumulators([t0 + timedelta(seconds=s)])[0][1].append(s)
>>> w.advance(w.watermark())  # newest 35 - 2: windows ending by 33 close, the gap as empties
[(0, 2), (10, 0), (20, 0)]
>>> w.advance(w.watermark(waited=100))  # quiet since: 20 s of empties after [30, 40), then none
[(30, 1), (40, 0), (50, 0)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from airis.events import MetricPoint, trusted

__all__ = ["ALIGN_TO", "TumblingWindows", "signal_points"]

#: Windows are aligned to this instant (whole multiples of the window length after it).
ALIGN_TO = datetime(2000, 1, 1, tzinfo=UTC)
#: Before any window has closed.
_NONE_CLOSED = -(2**62)

A = TypeVar("A")  # what a window accumulates
R = TypeVar("R")  # what a closed window reports


class TumblingWindows(Generic[A, R]):
    """Open windows of one service and the rule that closes them (see the module docstring)."""

    #: What `update` counts: events of one service as columns (`airis.batches.EventBatch`).
    batch_type: ClassVar[type[Any]]
    #: Defaults for snapshots taken before quiet windows were reported.
    quiet = timedelta(hours=1)
    _last_data: int | None = None

    def __init__(
        self, window_seconds: float, lateness_seconds: float, quiet_seconds: float = 3600.0
    ) -> None:
        if window_seconds <= 0 or lateness_seconds < 0 or quiet_seconds < 0:
            raise ValueError(
                f"{type(self).__name__}: window_seconds must be > 0, lateness_seconds and "
                f"quiet_seconds >= 0; got {window_seconds!r}, {lateness_seconds!r}, "
                f"{quiet_seconds!r}"
            )
        self.window = timedelta(seconds=window_seconds)
        self.lateness = timedelta(seconds=lateness_seconds)
        self.quiet = timedelta(seconds=quiet_seconds)
        self._open: dict[int, A] = {}
        self._closed_before = _NONE_CLOSED
        self._newest: datetime | None = None
        self._last_data = None  # the latest closed window that had events

    # -- what subclasses define ----------------------------------------------------------

    def _empty(self) -> A:
        raise NotImplementedError

    def _report(self, start: datetime, acc: A) -> R:
        raise NotImplementedError

    # -- the rule ------------------------------------------------------------------------

    def update_many(self, events: Iterable[Any]) -> tuple[list[R], list[Any]]:
        """Count ``events`` (one service's, arrival order); return ``(closed windows, late
        events)``: `update` of them as one batch of ``batch_type``."""
        events = list(events)
        if not events:
            return self.advance(self.watermark()), []
        return self.update(self.batch_type.from_events(events))

    def update(self, batch: Any) -> tuple[list[R], list[Any]]:
        raise NotImplementedError

    def _accumulators(self, stamps: Sequence[datetime]) -> list[tuple[int, A | None]]:
        """Each of ``stamps``' window id and open window (opened if needed), or None for a
        window that has closed (a late event), in order."""
        window, closed_before, open_windows, empty = (
            self.window, self._closed_before, self._open, self._empty
        )  # fmt: skip
        newest = self._newest
        out: list[tuple[int, A | None]] = []
        for ts in stamps:
            window_id = (ts - ALIGN_TO) // window
            if window_id < closed_before:
                out.append((window_id, None))
                continue
            if newest is None or ts > newest:
                newest = ts
            acc = open_windows.get(window_id)
            if acc is None:
                acc = open_windows[window_id] = empty()
            out.append((window_id, acc))
        self._newest = newest
        return out

    def watermark(self, waited: float = 0.0) -> datetime | None:
        """The newest timestamp minus the lateness, plus ``waited`` seconds of system time."""
        if self._newest is None:
            return None
        return self._newest - self.lateness + timedelta(seconds=waited)

    def advance(self, watermark: datetime | None) -> list[R]:
        """Close, in order, every window (with events or empty) that ends by ``watermark``."""
        if watermark is None:
            return []
        return self._emit_through((watermark - ALIGN_TO) // self.window - 1)

    def close_all(self) -> list[R]:
        """Close every open window (end of input), with the empty ones between them."""
        return self._emit_through(max(self._open)) if self._open else []

    def next_due_end(self) -> datetime | None:
        """End of the next window to close (open, or empty within the quiet allowance)."""
        candidates = list(self._open)
        if self._last_data is not None:
            gap = max(self._closed_before, self._last_data + 1)
            if gap <= self._last_data + self._quiet_windows():
                candidates.append(gap)
        if not candidates:
            return None
        return ALIGN_TO + self.window * (min(candidates) + 1)

    def _quiet_windows(self) -> int:
        return int(self.quiet / self.window)

    def _emit_through(self, last: int) -> list[R]:
        if last < self._closed_before:
            return []
        out: list[R] = []
        quiet = self._quiet_windows()
        for data_id in [*sorted(i for i in self._open if i <= last), None]:
            upto = last if data_id is None else data_id - 1
            if self._last_data is not None:
                first = max(self._closed_before, self._last_data + 1)
                for empty_id in range(first, min(upto, self._last_data + quiet) + 1):
                    out.append(self._report(self._start(empty_id), self._empty()))
            if data_id is None:
                break
            out.append(self._report(self._start(data_id), self._open.pop(data_id)))
            self._last_data = data_id
            self._closed_before = data_id + 1
        self._closed_before = max(self._closed_before, last + 1)
        return out

    def _start(self, window_id: int) -> datetime:
        return ALIGN_TO + self.window * window_id


def signal_points(
    service: str, start: datetime, values: Iterable[tuple[str, float]]
) -> tuple[MetricPoint, ...]:
    """A window's ``(signal, value)`` pairs as metric points stamped at its ``start``."""
    return tuple(
        trusted(MetricPoint, ts=start, service=service, signal=signal, value=value)
        for signal, value in values
    )
