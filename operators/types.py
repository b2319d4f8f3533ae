"""Plain records that flow between operators (frozen, slotted, picklable)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

import numpy as np

from airis.events import Anomaly, DetectorState, MetricPoint

__all__ = [
    "Assessment",
    "ScoredPoint",
    "ServiceWindow",
    "SignalCodes",
    "SignalColumns",
    "SignalSummary",
    "WindowValues",
    "anomalous_cells",
    "cells_assessment",
    "cycle_length",
]


@dataclass(slots=True, unsafe_hash=True)
class Assessment:
    """A detector's verdict on one value, with the evidence behind it (never changed after).

    ``score`` is in [0, 1]; ``expected``/``lower``/``upper`` are the band the detector
    expected; ``component`` names the part of the detector that produced the score.

    Not ``frozen``: a detector makes one per point, and a frozen dataclass's ``__init__``
    (``object.__setattr__`` per field) costs 0.9 µs against 0.2.
    """

    score: float
    observed: float
    expected: float
    lower: float
    upper: float
    state: DetectorState
    component: str
    confidence: float

    @property
    def direction(self) -> str:
        """``"spike"`` when above the expected value, else ``"dip"``."""
        return "spike" if self.observed >= self.expected else "dip"

    def __getstate__(self) -> list:
        return [getattr(self, name) for name in self.__slots__]  # as when it was frozen

    def __setstate__(self, state: list) -> None:
        for name, value in zip(self.__slots__, state, strict=True):
            setattr(self, name, value)


@dataclass(frozen=True, slots=True)
class ScoredPoint:
    """A metric point and its detector's assessment."""

    point: MetricPoint
    assessment: Assessment


@dataclass(slots=True, unsafe_hash=True)
class SignalSummary:
    """One signal inside one service window: its most anomalous point, and how many it saw
    (never changed after).

    Not ``frozen`` for the reason `Assessment` is not: the windowing makes one per point.
    """

    ts: datetime
    assessment: Assessment
    count: int

    def __getstate__(self) -> list:
        return [getattr(self, name) for name in self.__slots__]  # as when it was frozen

    def __setstate__(self, state: list) -> None:
        for name, value in zip(self.__slots__, state, strict=True):
            setattr(self, name, value)


#: The columns of `SignalColumns.cells`: the worst point's assessment, its time after the
#: window's start (µs) and the count of the signal's points.
SCORE, OBSERVED, EXPECTED, LOWER, UPPER, STATE, COMPONENT, CONFIDENCE, OFFSET, COUNT = range(10)
CELL_WIDTH = 10
#: The codes of ``STATE``.
STATE_NAMES: tuple[DetectorState, ...] = ("warming", "recent", "seasonal", "prior")


class SignalColumns(Mapping[str, SignalSummary]):
    """A closed window's signals as columns: what `SignalSummary` per signal holds, one row
    per signal in ``cells``, with a `SignalSummary` made only for a signal asked for.

    What the windowing makes (`airis.operators.windowing.open_windows`): a flow's steps read
    the columns (`observed`, `flagged`), so no object is made per signal and window.
    ``components`` names the codes of ``COMPONENT``.

    >>> cells = np.array([[0.2, 5.0, 4.0, 3.0, 6.0, 1, 2, 0.9, 1e6, 3]])
    >>> columns = SignalColumns(("cpu",), cells, datetime(2026, 1, 1), ["warming", "x", "level"])
    >>> summary = columns["cpu"]
    >>> summary.ts.second, summary.count, summary.assessment.state, summary.assessment.component
    (1, 3, 'recent', 'level')
    >>> columns.observed(), columns.flagged(threshold=0.1, extreme=0.9)
    ({'cpu': 5.0}, ['cpu'])
    """

    __slots__ = ("_observed", "_rows", "cells", "components", "names", "start", "worst")

    def __init__(
        self,
        names: tuple[str, ...],
        cells: np.ndarray,
        start: datetime,
        components: list[str],
        worst: float | None = None,
    ) -> None:
        self.names = names
        self.cells = cells
        self.start = start
        self.components = components
        #: The highest score of all (None: not known yet).
        self.worst = worst
        self._rows: dict[str, int] | None = None  # made on the first lookup
        self._observed: dict[str, float] | None = None  # made on the first call

    @classmethod
    def with_points(
        cls,
        names: tuple[str, ...],
        cells: np.ndarray,
        used: int,
        start: datetime,
        components: list[str],
        worst: float | None = None,
    ) -> SignalColumns:
        """The columns of a window held as one row per slot of its service (``names``, all
        of them): those of the ``used`` signals with a point (all, usually)."""
        if used != len(names):
            rows = np.flatnonzero(cells[:, COUNT]).tolist()
            names, cells = tuple(names[row] for row in rows), cells[rows]
        return cls(names, cells, start, components, worst)

    def __getstate__(self) -> tuple:
        return self.names, self.cells, self.start, self.components, self.worst

    def __setstate__(self, state: tuple) -> None:
        self.__init__(*state)  # type: ignore[misc]

    def __getitem__(self, signal: str) -> SignalSummary:
        cells = self._cells(signal)
        offset, count = cells[OFFSET], cells[COUNT]
        verdict = self._assessment(cells)
        return SignalSummary(self.start + timedelta(microseconds=offset), verdict, int(count))

    def assessment(self, signal: str) -> Assessment:
        """``self[signal].assessment``, without the rest of the summary."""
        return self._assessment(self._cells(signal))

    def _cells(self, signal: str) -> list[float]:
        if self._rows is None:
            self._rows = {name: i for i, name in enumerate(self.names)}
        return self.cells[self._rows[signal]].tolist()

    def _assessment(self, cells: list[float]) -> Assessment:
        return cells_assessment(cells, self.components)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, signal: object) -> bool:
        return signal in self.names

    def __repr__(self) -> str:
        return f"SignalColumns({dict(self)!r})"

    def observed(self) -> dict[str, float]:
        """Each signal's observed value (of its worst point). The same dict every call: the
        planning and the model both ask, and nothing may change it."""
        if self._observed is None:
            self._observed = dict(zip(self.names, self.cells[:, OBSERVED].tolist(), strict=True))
        return self._observed

    def flagged(self, threshold: float, extreme: float) -> list[str]:
        """The signals, by name, whose worst score is ``>= extreme``, or ``>= threshold``
        with a detector past its warm-up (the rule of `close_window`)."""
        if self.worst is not None and not self.worst >= min(threshold, extreme):  # the usual case
            return []
        counts = anomalous_cells(self.cells, threshold, extreme)
        return sorted(self.names[i] for i in np.flatnonzero(counts).tolist())


def anomalous_cells(cells: np.ndarray, threshold: float, extreme: float) -> np.ndarray:
    """Which cells (the last axis: `CELL_WIDTH` columns) hold a verdict that makes an
    anomaly: a score ``>= extreme``, or ``>= threshold`` past the detector's warm-up."""
    score = cells[..., SCORE]
    return (score >= extreme) | ((score >= threshold) & (cells[..., STATE] != 0))


def cells_assessment(cells: list[float], components: list[str]) -> Assessment:
    """The `Assessment` that one signal's cells hold (``components`` names the codes of
    ``COMPONENT``)."""
    score, observed, expected, lower, upper, state, component, confidence = cells[:OFFSET]
    return Assessment(
        score,
        observed,
        expected,
        lower,
        upper,
        STATE_NAMES[int(state)],
        components[int(component)],
        confidence,
    )


def observed_values(signals: Mapping[str, SignalSummary]) -> dict[str, float]:
    """Each signal's observed value, from columns where the window has them."""
    if type(signals) is SignalColumns:
        return signals.observed()
    return {signal: s.assessment.observed for signal, s in signals.items()}


@dataclass(slots=True)
class ServiceWindow:
    """All signals of one service during one event-time window, and the anomalies found
    (never changed after).

    Not ``frozen``: a frozen dataclass sets each field through ``object.__setattr__``, which
    made one cost 1.1 µs against 0.3 µs, and every service's every window makes one.
    """

    service: str
    start: datetime
    end: datetime
    signals: Mapping[str, SignalSummary]
    anomalies: tuple[Anomaly, ...] = field(default=())


class WindowValues(NamedTuple):
    """A closed window as a model scores it: its span and each signal's observed value.

    Made where the model step scores them (`ObservedWindows.values`), only while a model
    version serves.
    """

    service: str
    start: datetime
    end: datetime
    values: dict[str, float]


@dataclass(frozen=True, slots=True)
class SignalCodes:
    """A batch's signal names as codes: ``names[codes[i]]`` is point ``i``'s signal.

    Each step that keeps state per signal (a detector row, a window slot) then looks each
    name up once per batch, not once per point: a batch of one service holds thousands of
    points of a handful of signals.

    >>> codes = SignalCodes.of(["cpu", "mem", "cpu"])
    >>> codes.names, codes.codes.tolist(), codes.lookup({"cpu": 7, "mem": 3}).tolist()
    (('cpu', 'mem'), [0, 1, 0], [7, 3, 7])
    """

    names: tuple[str, ...]  # distinct, in order of first point
    codes: np.ndarray  # int64, one per point

    @classmethod
    def of(cls, signals: Sequence[str]) -> SignalCodes:
        signals = tuple(signals)
        # Two orders are most batches, and each takes a few compares in C instead of a
        # lookup per point: a scrape's signals again and again (our JSON events, one
        # message each), and one signal's points after another's (an OTLP message).
        codes = _cycle_codes(signals) or _run_codes(signals)
        if codes is not None:
            return codes
        code_of = {name: i for i, name in enumerate(dict.fromkeys(signals))}
        return cls(tuple(code_of), np.fromiter(map(code_of.__getitem__, signals), np.int64))

    def __len__(self) -> int:
        return len(self.codes)

    def lookup(self, table: Mapping[str, int]) -> np.ndarray:
        """Each point's value in ``table`` (which holds every name)."""
        return np.array([table[name] for name in self.names], dtype=np.int64)[self.codes]


def cycle_length(items: tuple) -> int | None:
    """How many items ``items`` repeats, from the first up to its first return, if it is that
    head over and over (the last time cut short); else None. A few compares in C.

    >>> cycle_length(("cpu", "mem", "cpu", "mem", "cpu")), cycle_length(("cpu", "cpu", "mem"))
    (2, None)
    """
    try:
        period = items.index(items[0], 1)
    except (IndexError, ValueError):  # no item, or the first only once
        return None
    head = items[:period]
    cycles, rest = divmod(len(items), period)
    return period if items == head * cycles + head[:rest] else None


def _cycle_codes(signals: tuple[str, ...]) -> SignalCodes | None:
    """The codes of distinct names repeated in one order (the last cycle may stop short)."""
    period = cycle_length(signals)
    if period is None or len(set(signals[:period])) < period:
        return None
    return SignalCodes(signals[:period], np.arange(len(signals), dtype=np.int64) % period)


def _run_codes(signals: tuple[str, ...]) -> SignalCodes | None:
    """The codes of runs of one name each, no name in two runs (a handful of runs)."""
    names: dict[str, int] = {}  # name: its run's length
    start, size = 0, len(signals)
    while start < size:
        name = signals[start]
        if name in names or len(names) == _MAX_RUNS:
            return None
        # The run's end by doubling steps, then halving ones: a few compares a run.
        end, step = start + 1, 1
        while end + step <= size and signals[end + step - 1] == name:
            end += step
            step *= 2
        while step > 1:
            step //= 2
            if end + step <= size and signals[end + step - 1] == name:
                end += step
        if signals[start:end].count(name) != end - start:  # a step passed over another
            return None
        names[name] = end - start
        start = end
    codes = np.repeat(np.arange(len(names), dtype=np.int64), list(names.values()))
    return SignalCodes(tuple(names), codes)


#: Runs `_run_codes` looks for before it leaves a batch to the lookup per point.
_MAX_RUNS = 64
