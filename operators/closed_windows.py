"""One service's closed windows as columns: what detection hands the steps after it.

`ClosedWindows` holds the windows one batch of input closed as the cells `OpenWindows` kept,
and makes a `ServiceWindow` only for a window that is asked for; the steps after detection
(alerting, planning, the model) read its columns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np

from airis.events import Anomaly
from airis.operators.types import (
    COUNT,
    OBSERVED,
    ServiceWindow,
    SignalColumns,
    WindowValues,
)

__all__ = ["ClosedWindows", "ObservedWindows", "WindowEnds"]


class ClosedWindows(Sequence[ServiceWindow]):
    """One service's windows that one batch of input (or one wake-up) closed, oldest first:
    what a flow moves as one item, so that the steps after detection run once per batch, not
    once per window.

    The windows stay the columns `OpenWindows` kept: ``cells[i, slot]`` is signal
    ``names[slot]`` in window ``i`` (a ``COUNT`` of 0: no point). A `ServiceWindow` is made
    for a window when it is asked for (``windows[i]``, iteration), or by the maker for a
    window with anomalies (`set_made`); the steps after detection read the columns instead
    (`end_times`, `observed_column`, `observed`, `anomalies`), which at one point per signal
    and window cost less than the objects.

    >>> from airis.operators.types import CELL_WIDTH
    >>> cells = np.zeros((2, 1, CELL_WIDTH))
    >>> cells[:, 0, OBSERVED], cells[:, 0, COUNT] = (5.0, 7.0), (1, 1)
    >>> origin = datetime(2026, 1, 1, tzinfo=UTC)
    >>> closed = ClosedWindows("api", origin, 10_000_000, [3, 4], ("cpu",), cells, [1, 1],
    ...                        [0.1, 0.2], ["level"])
    >>> len(closed), closed.observed_column("cpu"), closed.end_times()[0] - origin.timestamp()
    (2, [5.0, 7.0], 40.0)
    >>> window = closed[1]
    >>> window.start.second, window.end.second, window.signals["cpu"].assessment.observed
    (40, 50, 7.0)
    """

    __slots__ = (
        "_made",
        "_rows",
        "_starts",
        "anomalous",
        "cells",
        "components",
        "full",
        "names",
        "origin",
        "service",
        "used",
        "window",
        "window_ids",
        "window_us",
        "worst",
    )

    def __init__(
        self,
        service: str,
        origin: datetime,
        window_us: int,
        window_ids: list[int],
        names: tuple[str, ...],
        cells: np.ndarray,
        used: list[int],
        worst: list[float],
        components: list[str],
    ) -> None:
        self.service = service
        #: Window ``i`` starts ``window_ids[i]`` windows of ``window_us`` after ``origin``.
        self.origin = origin
        self.window_us = window_us
        self.window = timedelta(microseconds=window_us)
        self.window_ids = window_ids
        self.names = names
        self.cells = cells
        self.used = used
        self.worst = worst
        self.components = components
        self._made: dict[int, ServiceWindow] = {}
        #: The windows with anomalies (`set_made`), in order.
        self.anomalous: list[int] = []
        #: Whether every window has a point of every signal (the usual case).
        self.full = used.count(len(names)) == len(used)
        self._rows: list[list[float]] | None = None
        self._starts: list[datetime] | None = None

    def __len__(self) -> int:
        return len(self.window_ids)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return tuple(self)[i]
        if i < 0:
            i += len(self.window_ids)
        window = self._made.get(i)
        if window is None:
            start = self.start(i)
            window = ServiceWindow(self.service, start, start + self.window, self.columns(i))
            self._made[i] = window
        return window

    def __iter__(self) -> Iterator[ServiceWindow]:
        return map(self.__getitem__, range(len(self.window_ids)))

    def __eq__(self, other: object) -> bool:
        """Equal to windows equal to its own, in order (a list or tuple of them too)."""
        if isinstance(other, ClosedWindows | list | tuple):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to lists, which are not hashable

    def __repr__(self) -> str:
        return f"ClosedWindows({self.service!r}, {len(self)} windows)"

    def set_made(self, made: dict[int, ServiceWindow]) -> None:
        """The windows the maker made itself (those that may have anomalies), by index."""
        self._made.update(made)
        self.anomalous = sorted(i for i, window in self._made.items() if window.anomalies)

    def start(self, i: int) -> datetime:
        """Window ``i``'s start."""
        if self._starts is not None:
            return self._starts[i]
        return self.origin + self.window * self.window_ids[i]

    def starts(self) -> list[datetime]:
        """Every window's start (worked out once)."""
        if self._starts is None:
            self._starts = _starts(self.origin, self.window, self.window_ids)
        return self._starts

    def end(self, i: int) -> datetime:
        """Window ``i``'s end."""
        return self.origin + self.window * (self.window_ids[i] + 1)

    def ends(self) -> WindowEnds:
        """The windows' ends, each made when read."""
        return WindowEnds(self)

    def end_times(self) -> list[float]:
        """Each window's end in epoch seconds, as `datetime.timestamp` gives it (µs over
        10^6, correctly rounded), without a datetime per window."""
        origin_us = (self.origin - _EPOCH) // _MICROSECOND
        window_us = self.window_us
        return [(origin_us + (i + 1) * window_us) / 1_000_000 for i in self.window_ids]

    def columns(self, i: int) -> SignalColumns:
        """Window ``i``'s signals (those with a point)."""
        return SignalColumns.with_points(
            self.names, self.cells[i], self.used[i], self.start(i), self.components, self.worst[i]
        )

    def signals_of(self, i: int) -> tuple[str, ...]:
        """The signals with a point in window ``i``."""
        if self.used[i] == len(self.names):
            return self.names
        rows = np.flatnonzero(self.cells[i, :, COUNT]).tolist()
        return tuple(self.names[row] for row in rows)

    def observed_column(self, signal: str) -> list[float | None] | None:
        """Each window's observed value of ``signal`` (None where it has no point), or None
        when the service holds no such signal now (none of its open windows had it)."""
        if signal not in self.names:
            return None
        slot = self.names.index(signal)
        if len(self.window_ids) >= 16:  # an array's column: one call instead of a list each
            values = self.cells[:, slot, OBSERVED].tolist()
        else:
            values = [row[slot] for row in self._observed_rows()]
        if not self.full:
            counts = self.cells[:, slot, COUNT].tolist()
            values = [value if count else None for value, count in zip(values, counts, strict=True)]
        return values

    def observed(self) -> ObservedWindows:
        """The windows' spans and observed values: what a model scores (a fraction of the
        cells, and all that crosses to the model step)."""
        present = None if self.full else self.cells[:, :, COUNT] > 0
        return ObservedWindows(
            self.service, self.origin, self.window, self.window_ids, self.names,
            self.cells[:, :, OBSERVED], present,
        )  # fmt: skip

    def anomalies(self) -> list[Anomaly]:
        """Every window's anomalies, in order."""
        return [anomaly for i in self.anomalous for anomaly in self._made[i].anomalies]

    def signal_names(self) -> tuple[str, ...]:
        """The signals with a point in some window."""
        if self.full:
            return self.names
        present = np.flatnonzero(self.cells[:, :, COUNT].any(axis=0)).tolist()
        return tuple(self.names[slot] for slot in present)

    def _observed_rows(self) -> list[list[float]]:
        if self._rows is None:
            self._rows = self.cells[:, :, OBSERVED].tolist()
        return self._rows


class ObservedWindows(NamedTuple):
    """The spans and observed values of a `ClosedWindows` (`ClosedWindows.observed`):
    ``observed[i, slot]`` is signal ``names[slot]`` in window ``i``, which has it where
    ``present`` says (None: every window has every signal)."""

    service: str
    origin: datetime
    window: timedelta
    window_ids: list[int]
    names: tuple[str, ...]
    observed: np.ndarray
    present: np.ndarray | None

    def values(self) -> list[WindowValues]:
        """Each window as the model scores it."""
        out, names, window, service = [], self.names, self.window, self.service
        starts = _starts(self.origin, window, self.window_ids)
        present = None if self.present is None else self.present.tolist()
        for i, row in enumerate(self.observed.tolist()):
            if present is None:
                values = dict(zip(names, row, strict=False))  # as long: the rows of the cells
            else:
                have = zip(names, row, present[i], strict=True)
                values = {name: value for name, value, there in have if there}
            out.append(WindowValues(service, starts[i], starts[i] + window, values))
        return out


def _starts(origin: datetime, window: timedelta, window_ids: list[int]) -> list[datetime]:
    """The start of each window of ``window_ids`` (ids in order): a window right after the
    one before is one addition, a fifth of a multiplication and an addition."""
    starts: list[datetime] = []
    start, before = origin, None
    for window_id in window_ids:
        if before is not None and window_id == before + 1:
            start += window
        else:
            start = origin + window * window_id
        starts.append(start)
        before = window_id
    return starts


class WindowEnds(Sequence[datetime]):
    """The ends of the windows of a `ClosedWindows`, each made when read (`ClosedWindows.end`)."""

    __slots__ = ("_windows",)

    def __init__(self, windows: ClosedWindows) -> None:
        self._windows = windows

    def __len__(self) -> int:
        return len(self._windows)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._windows.end(j) for j in range(len(self._windows))[i]]
        return self._windows.end(i if i >= 0 else i + len(self._windows))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
