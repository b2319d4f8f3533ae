"""One service's points in, its closed event-time windows out: detection and windowing in one pass.

`ServiceWindowDetector` scores every point with the service's `DetectorBank` and folds the scores
into tumbling event-time windows (`OpenWindows`, as columns), closing a window once the watermark
passes its end (`close_window`). It exists so that a flow can hand a whole batch of a service's
points to a few array calls instead of paying an engine's per-item overhead twice (a keyed map
for detection, then a window fold): on CPython that overhead is most of the cost of a point.

The watermark follows the usual event-time rule (Bytewax's ``EventClock``, Flink's bounded
out-of-orderness): the newest timestamp seen minus the allowed lateness; it never moves back.
System time moves it on only once the service has been quiet for ``idle_grace_seconds``, so
that a service that goes quiet still gets its last window closed, while a producer that
delivers in bursts, or a broker that pauses for less than the grace, makes nothing late
(measured before the grace: a 22-s broker restart made 29 % of the points that followed late,
5-s delivery batches 40 %). A point older than the watermark is late: it is returned, not
scored, and the caller dead-letters it. After a restart, `resume` restarts the system-time
allowance so the downtime itself does not close windows.

Examples
--------
>>> from datetime import UTC, datetime, timedelta
>>> from airis.events import MetricBatch, MetricPoint
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> svc = ServiceWindowDetector("api", window_seconds=10, lateness_seconds=2)
>>> points = [MetricPoint(ts=t0 + timedelta(seconds=s), service="api", signal="cpu", value=1.0)
...           for s in range(0, 30, 5)]
>>> closed, late = svc.update_many(points, now=0.0)
>>> [(w.start.second, w.end.second, w.signals["cpu"].count) for w in closed]
[(0, 10, 2), (10, 20, 2)]
>>> old = MetricPoint(ts=t0, service="api", signal="cpu", value=1.0)
>>> svc.update_many([old], now=0.0)[1] == [old]
True
>>> [w.start.second for w in svc.close_all()]
[20]
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter

import numba
import numpy as np

from airis.batches import MetricBatch
from airis.events import MetricPoint
from airis.operators.closed_windows import ClosedWindows
from airis.operators.detectors.detector_bank import DetectorBank
from airis.operators.types import SignalCodes, cycle_length
from airis.operators.windowing.event_windows import ALIGN_TO
from airis.operators.windowing.open_windows import OpenWindows
from airis.operators.windowing.service_window import (
    DEFAULT_EXTREME,
    DEFAULT_THRESHOLD,
    close_windows,
)

__all__ = ["ALIGN_TO", "DEFAULT_IDLE_GRACE_SECONDS", "ServiceWindowDetector"]

#: System time a service must be quiet before system time moves its watermark on.
DEFAULT_IDLE_GRACE_SECONDS = 60.0

_MICROSECOND = timedelta(microseconds=1)
_ALIGN_TO_US = (ALIGN_TO - datetime(1970, 1, 1, tzinfo=UTC)) // _MICROSECOND


def _micros_after_align(seconds: np.ndarray, stamps: Sequence[datetime]) -> tuple[np.ndarray, bool]:
    """Each stamp as whole µs after `ALIGN_TO`, exactly, from its `datetime.timestamp`; and
    whether they are in time order.

    A timestamp is its µs since the epoch divided by 10^6, correctly rounded; between 1970
    and 2100 two µs apart never round to the same float, so the one whose division gives the
    timestamp back is the stamp's. Where none does (outside those years), the datetimes say.
    """
    at, inexact, in_order = _exact_micros(seconds, _ALIGN_TO_US)
    if inexact:
        for i in np.flatnonzero(at == _NOT_FOUND).tolist():
            at[i] = (stamps[i] - ALIGN_TO) // _MICROSECOND
        in_order = bool((at[1:] >= at[:-1]).all())
    return at, in_order


_NOT_FOUND = np.iinfo(np.int64).min
#: What closing no window gives (one for all: nothing changes it).
_NONE_CLOSED = ClosedWindows("", ALIGN_TO, 1, [], (), np.zeros((0, 0, 1)), [], [], [])


def _epoch_seconds(stamps: Sequence[datetime]) -> np.ndarray:
    """Each stamp's `datetime.timestamp` (as a float array), worked out once per distinct
    stamp and kept for the process's later batches (`_SECONDS`): a batch's points share a
    few stamps (one per scrape or tick), and so do the services that report at the same
    instants.

    The ticks over and over (an OTLP message lists one metric's points after another's) are
    expanded from one cycle's with a few compares in C instead of a lookup per point."""
    stamps = tuple(stamps)
    period = cycle_length(stamps)
    if period is not None:
        return _seconds_of(stamps[:period], keep=True)[np.arange(len(stamps)) % period]
    return _seconds_of(stamps)


def _seconds_of(stamps: tuple[datetime, ...], keep: bool = False) -> np.ndarray:
    """`_epoch_seconds` by a lookup per stamp; ``keep``: keep them however distinct they are
    (a batch's distinct ticks)."""
    seconds, size = _SECONDS, len(stamps)
    if stamps and stamps[-1] in seconds:  # the newest is known: most likely all are
        try:
            return np.fromiter(map(seconds.__getitem__, stamps), np.float64, size)
        except KeyError:
            pass
    distinct = dict.fromkeys(stamps)
    if not keep and 2 * len(distinct) > size:  # mostly distinct: not worth keeping
        return np.fromiter(map(datetime.timestamp, stamps), np.float64, size)
    if len(seconds) + len(distinct) > _SECONDS_KEPT:
        seconds.clear()
    for ts in distinct:
        if ts not in seconds:
            seconds[ts] = ts.timestamp()
    return np.fromiter(map(seconds.__getitem__, stamps), np.float64, size)


#: `_epoch_seconds`' stamps (equal datetimes are the same instant, whatever their zone).
_SECONDS: dict[datetime, float] = {}
_SECONDS_KEPT = 20_000


@numba.njit(cache=True)
def _exact_micros(seconds, align_us):  # pragma: no cover - compiled
    at = np.empty(len(seconds), np.int64)
    inexact = False
    in_order = True
    for i in range(len(seconds)):
        guess = np.rint(seconds[i] * 1e6)
        found = _NOT_FOUND
        for near in (guess, guess - 1.0, guess + 1.0):
            if near / 1e6 == seconds[i]:
                found = np.int64(near) - align_us
                break
        if found == _NOT_FOUND:
            inexact = True
        elif i and found < at[i - 1]:
            in_order = False
        at[i] = found
    return at, inexact, in_order


class ServiceWindowDetector:
    """Score one service's points and emit its closed tumbling windows.

    Parameters
    ----------
    service
        The service (the key); every point given must belong to it. None: taken from the
        first point (an engine may not tell a state builder its key).
    window_seconds
        Window length.
    lateness_seconds
        How far behind the newest timestamp a point may arrive and still count.
    threshold
        Score at or above which a signal's window is anomalous (`close_window`).
    detector
        Model name recorded in each `Anomaly`.
    bank
        Builds the detector bank (tests inject one).
    idle_grace_seconds
        System time the service must have been quiet before system time advances its
        watermark (see the module docstring).
    """

    def __init__(
        self,
        service: str | None = None,
        window_seconds: float = 10.0,
        lateness_seconds: float = 2.0,
        threshold: float = DEFAULT_THRESHOLD,
        detector: str = "ensemble",
        bank: Callable[[], DetectorBank] = DetectorBank,
        idle_grace_seconds: float = DEFAULT_IDLE_GRACE_SECONDS,
    ) -> None:
        if window_seconds <= 0 or lateness_seconds < 0:
            raise ValueError("window_seconds must be > 0 and lateness_seconds >= 0")
        self.service = service
        self.window = timedelta(seconds=window_seconds)
        self.lateness = timedelta(seconds=lateness_seconds)
        self.threshold = threshold
        self.detector = detector
        self.bank = bank()
        self.idle_grace = idle_grace_seconds
        self._windows = OpenWindows(self.window // _MICROSECOND)
        self._closed_before = -math.inf  # windows with a smaller id are closed
        self._refused: list[MetricPoint] = []
        # The watermark is _base plus the system time since _base was set (seconds).
        self._base: datetime | None = None
        self._base_seen_at = 0.0

    def update_many(
        self, points: Iterable[MetricPoint], now: float
    ) -> tuple[ClosedWindows, list[MetricPoint]]:
        """Score and fold ``points`` (arrival order); return ``(closed windows, late points)``.

        ``now`` is the system time in seconds (any monotonic clock, the same one every call).
        """
        points = list(points)
        columns = ([p.ts for p in points], [p.signal for p in points], [p.value for p in points])
        return self._fold(*columns, points.__getitem__, now)

    def update_batch(
        self, batch: MetricBatch, now: float
    ) -> tuple[ClosedWindows, list[MetricPoint]]:
        """`update_many` for a batch given as columns: no point object unless it is late."""
        return self._fold(batch.ts, batch.signal, batch.value, batch.point, now)

    def _fold(
        self,
        stamps: Sequence[datetime],
        signals: Sequence[str],
        values: Sequence[float],
        point: Callable[[int], MetricPoint],
        now: float,
    ) -> tuple[ClosedWindows, list[MetricPoint]]:
        if not stamps:
            return self.close_due(now), []
        if self.service is None:
            self.service = point(0).service
        seconds = _epoch_seconds(stamps)
        at, in_order = _micros_after_align(seconds, stamps)
        # A batch arrived at once, so its own order is no evidence of lateness: an OTLP
        # message lists each metric's points over its whole span, one metric after another.
        order: Sequence[int] = range(len(stamps))
        if not in_order:  # so two points or more: `pick` gives tuples
            by_time = np.argsort(at, kind="stable")  # stable: ties keep their order
            order = by_time.tolist()
            pick = itemgetter(*order)
            at, seconds = at[by_time], seconds[by_time]
            stamps, signals, values = pick(stamps), pick(signals), pick(values)
        # In time order, the late points are a prefix: those before the watermark or in a
        # window already closed. A point of this batch cannot make a later one late.
        watermark = self.watermark(now)
        on_time_from = watermark
        if self._closed_before > -math.inf:
            reopened = self._window_start(int(self._closed_before))
            on_time_from = reopened if watermark is None else max(watermark, reopened)
        first = 0
        if on_time_from is not None:
            on_time_us = (on_time_from - ALIGN_TO) // _MICROSECOND
            if at[0] < on_time_us:  # else the usual case: nothing late
                first = int(np.searchsorted(at, on_time_us))
        late = [point(order[i]) for i in range(first)]
        if first == len(stamps):
            return self.close_due(now), late
        # A point the bank refuses below (its service at the cap of signals) still moves the
        # watermark: its timestamp is as much evidence of event time.
        base = stamps[-1] - self.lateness
        if watermark is None or base > watermark:  # never let the watermark go back
            self._base, self._base_seen_at = base, now
        at, stamps, signals = at[first:], stamps[first:], signals[first:]
        observed, codes = np.asarray(values[first:], dtype=float), SignalCodes.of(signals)
        # One call for the whole batch: the bank scores each signal's points in order.
        verdicts = self.bank.assess_columns(signals, stamps, observed, seconds[first:], codes)
        table, objects = verdicts.table, verdicts.objects
        refused = [i for i, verdict in objects.items() if verdict is None]
        if refused:  # the service is at its cap of signals (`DetectorBank`)
            self._refused += [point(order[first + i]) for i in sorted(refused)]
            kept = np.ones(len(at), dtype=bool)
            kept[refused] = False
            at, table, observed = at[kept], table[kept], observed[kept]
            signals = [signal for signal, keep in zip(signals, kept.tolist(), strict=True) if keep]
            codes = SignalCodes.of(signals)
            index = (np.cumsum(kept) - 1).tolist()
            objects = {index[i]: verdict for i, verdict in objects.items() if verdict is not None}
        self._windows.fold(at, codes, table, observed, objects, in_order=True)  # type: ignore[arg-type]
        return self.close_due(now), late

    def __setstate__(self, state: dict) -> None:
        # Snapshots from before the signal cap, the idle grace and the windows as columns.
        self.__dict__.update({"_refused": [], "idle_grace": DEFAULT_IDLE_GRACE_SECONDS, **state})
        if "_open" in state:
            self._windows = OpenWindows(self.window // _MICROSECOND)
            for window_id, summaries in sorted(self.__dict__.pop("_open").items()):
                self._windows.restore(window_id, self._window_start(window_id), summaries)

    def take_refused(self) -> list[MetricPoint]:
        """Points refused since the last call: new signals beyond the bank's ``max_signals``."""
        refused, self._refused = self._refused, []
        return refused

    def watermark(self, now: float) -> datetime | None:
        """Event time before which points are late (None before the first point)."""
        if self._base is None:
            return None
        waited = max(now - self._base_seen_at - self.idle_grace, 0.0)
        return self._base + timedelta(seconds=waited)

    def close_due(self, now: float) -> ClosedWindows:
        """Close, in order, every open window whose end the watermark has passed."""
        watermark = self.watermark(now)
        if watermark is None:
            return _NONE_CLOSED
        # A window's end, ALIGN_TO + window * (id + 1), is at or before the watermark: in µs.
        passed = (watermark - ALIGN_TO) // _MICROSECOND // self._windows.window_us
        return self._close(passed - 1)

    def close_all(self) -> ClosedWindows:
        """Close every open window (end of input)."""
        return self._close(None)

    def next_close_in(self, now: float) -> float | None:
        """Seconds of system time until the oldest open window closes if nothing arrives."""
        open_ids = self._windows.ids()
        if not open_ids or self._base is None:
            return None
        end = self._window_start(open_ids[0]) + self.window
        needed = (end - self._base).total_seconds()  # system time past the grace it takes
        if needed <= 0:
            return 0.0
        return max(self._base_seen_at + self.idle_grace + needed - now, 0.0)

    def resume(self, now: float) -> None:
        """Restart the system-time allowance at ``now`` (after a restart from a snapshot)."""
        self._base_seen_at = now

    def _close(self, last_id: int | None) -> ClosedWindows:
        """Close the open windows up to id ``last_id`` (None: all), oldest first."""
        window_ids = self._windows.ids()
        if last_id is not None:
            window_ids = window_ids[: bisect.bisect_right(window_ids, last_id)]
        if not window_ids:
            return _NONE_CLOSED
        self._closed_before = window_ids[-1] + 1
        names, cells, used, worst = self._windows.close_many(window_ids)
        closed = ClosedWindows(
            self.service or "", ALIGN_TO, self._windows.window_us, window_ids, names, cells,
            used, worst, self._windows.components,
        )  # fmt: skip
        # A window whose every score is under the threshold has no anomaly (most windows):
        # it stays columns. An invalid threshold still goes to `close_windows`, which says why.
        threshold = self.threshold
        quiet_under = threshold if 0.0 < threshold <= DEFAULT_EXTREME else -math.inf
        hot = [i for i, score in enumerate(worst) if not score < quiet_under]
        if hot:
            closed.set_made(close_windows(closed, hot, threshold, detector=self.detector))
        return closed

    def _window_start(self, window_id: int) -> datetime:
        return ALIGN_TO + self.window * window_id
