"""Replaying timed items at a chosen speed of simulated time (what producers and the demo's
sources use)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

_T = TypeVar("_T")


def pace(
    items: Iterable[_T],
    speed: float | None = None,
    *,
    ts_getter: Callable[[_T], datetime | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[_T]:
    """Yield ``items`` no faster than their timestamps advance, scaled by ``speed``.

    ``speed=None`` passes items through at once; ``1.0`` is real time (an item stamped 10 s
    after the first is yielded 10 s after it); ``k`` is k times faster. Items are tick
    batches (a list of events: the first event's ``ts`` counts) or single events (a mapping
    with ``ts``, a datetime or ISO 8601 string); items without a timestamp pass at once.

    Parameters
    ----------
    items
        The items, in time order.
    speed
        Simulated seconds per wall-clock second, or None for no pacing.
    ts_getter
        Reads an item's timestamp; the default handles batches and event dicts.
    clock
        Monotonic wall clock in seconds (injected by tests).
    sleep
        How to wait (injected by tests).

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> now, slept = [0.0], []
    >>> def sleep(s):
    ...     slept.append(s)
    ...     now[0] += s
    >>> events = [{"ts": datetime(2024, 1, 1, 0, 0, s, tzinfo=UTC)} for s in (0, 10, 20)]
    >>> _ = list(pace(events, speed=5.0, clock=lambda: now[0], sleep=sleep))
    >>> slept
    [2.0, 2.0]
    """
    if speed is not None and not (math.isfinite(speed) and speed > 0):
        raise ValueError(f"pace: speed must be None or a finite positive number, got {speed!r}")
    if speed is None:
        return iter(items)
    return _paced(items, speed, ts_getter or _item_ts, clock, sleep)


def _paced(
    items: Iterable[_T],
    speed: float,
    ts_getter: Callable[[_T], datetime | None],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> Iterator[_T]:
    origin: tuple[datetime, float] | None = None
    for item in items:
        ts = ts_getter(item)
        if ts is not None:
            if origin is None:
                origin = (ts, clock())
            else:
                due = origin[1] + (ts - origin[0]).total_seconds() / speed
                wait = due - clock()
                if wait > 0:
                    sleep(wait)
        yield item


def _item_ts(item: Any) -> datetime | None:
    if isinstance(item, list | tuple):
        item = item[0] if item else None
    ts = item.get("ts") if isinstance(item, Mapping) else None
    if isinstance(ts, str):
        try:
            ts = datetime.fromisoformat(ts)
        except ValueError:
            return None
    if isinstance(ts, datetime) and ts.tzinfo is not None:
        return ts
    return None
