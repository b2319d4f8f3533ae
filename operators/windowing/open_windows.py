"""A service's open event-time windows as columns: scored points folded in, a batch at a time.

Per window and signal, `OpenWindows` keeps what `SignalSummary` holds: the point with the
highest score (on a tie, the earlier one), its assessment, and how many points there were.
It keeps them as one row of floats per signal in one array per window (the columns of
`SignalColumns`), and folds a whole batch in one compiled call, so that no object is made per
point, and closing a window hands its rows over as a `SignalColumns` without one per signal.

Signals get a slot (a row of every window's array) on first sight. Slots are only for the
windows open now, so they are given up once a service holds many more than its open windows
use (`compact`).

Examples
--------
>>> from datetime import UTC, datetime
>>> import numpy as np
>>> windows = OpenWindows(window_us=10_000_000)
>>> verdicts = np.array([[0.1, 9, 8, 10, 1, 2, 0.9], [0.8, 9, 8, 10, 1, 2, 0.9]])
>>> at = np.array([70_001_000, 70_002_000])  # µs after ALIGN_TO: window 7
>>> windows.fold(at, ["cpu", "cpu"], verdicts, np.array([9.0, 30.0]), {})
>>> windows.ids()
[7]
>>> cpu = windows.close(7, datetime(2026, 1, 1, tzinfo=UTC))["cpu"]
>>> cpu.count, cpu.assessment.score, cpu.assessment.observed, cpu.ts.microsecond
(2, 0.8, 30.0, 2000)
>>> windows.ids()
[]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import numba
import numpy as np

from airis.operators.detectors import ensemble_kernel as kernel
from airis.operators.detectors.ensemble_kernel import (
    VERDICT_COMPONENT,
    VERDICT_CONFIDENCE,
    VERDICT_EXPECTED,
    VERDICT_LOWER,
    VERDICT_SCORE,
    VERDICT_STATE,
    VERDICT_UPPER,
    VERDICT_WIDTH,
)
from airis.operators.types import (
    CELL_WIDTH,
    COMPONENT,
    CONFIDENCE,
    COUNT,
    EXPECTED,
    LOWER,
    OBSERVED,
    OFFSET,
    SCORE,
    STATE,
    STATE_NAMES,
    UPPER,
    Assessment,
    SignalCodes,
    SignalColumns,
    SignalSummary,
)

__all__ = ["OpenWindows"]

assert STATE_NAMES[: len(kernel.STATES)] == kernel.STATES  # the kernel's codes hold as they are

_MICROSECOND = timedelta(microseconds=1)
_ONE_RUN = np.zeros(1, dtype=np.int64)
#: For each column of the kernel's verdicts, the column of a cell that holds it.
_CELLS_OF_VERDICT = np.empty(VERDICT_WIDTH, dtype=np.intp)
_CELLS_OF_VERDICT[[VERDICT_SCORE, VERDICT_EXPECTED, VERDICT_LOWER, VERDICT_UPPER]] = (
    SCORE,
    EXPECTED,
    LOWER,
    UPPER,
)
_CELLS_OF_VERDICT[[VERDICT_STATE, VERDICT_COMPONENT, VERDICT_CONFIDENCE]] = (
    STATE,
    COMPONENT,
    CONFIDENCE,
)
#: Slots a service may hold beyond what its open windows use before they are compacted.
_SPARE_SLOTS = 64


class OpenWindows:
    """The open windows of one service, each an array with one row (slot) per signal."""

    def __init__(self, window_us: int) -> None:
        if window_us <= 0:
            raise ValueError(f"window_us must be > 0, got {window_us}")
        self.window_us = window_us
        self._slot_of: dict[str, int] = {}
        self._names: list[str] = []  # slot -> signal
        self._at: dict[int, int] = {}  # window id -> its array in _cells
        self._free: list[int] = []  # arrays of _cells no window holds
        self._cells = np.zeros((0, 0, CELL_WIDTH))
        self._used = np.zeros(0, dtype=np.int64)  # per array: slots with a point
        self._worst = np.zeros(0)  # per array: the highest score folded in
        self._all_names: tuple[str, ...] | None = ()  # tuple(_names), None when out of date
        # The most windows open at once lately, and the window until which that counts: the
        # arrays stay sized for it, so batches that each open a few windows reuse them.
        self._peak, self._peak_until = 0, -1
        #: Names of the ``COMPONENT`` codes: the kernel's, then others as they come.
        self.components: list[str] = list(kernel.COMPONENTS)

    def ids(self) -> list[int]:
        """The open windows' ids, oldest first."""
        return sorted(self._at)

    def fold(
        self,
        at: np.ndarray,
        signals: Sequence[str] | SignalCodes,
        verdicts: np.ndarray,
        observed: np.ndarray,
        objects: Mapping[int, Assessment],
        in_order: bool = False,
    ) -> None:
        """Fold scored points, in the order given, into their windows.

        Point ``i`` is at ``at[i]`` µs after `ALIGN_TO` (so in window ``at[i] //
        window_us``); its assessment is row ``i`` of ``verdicts``
        (`ensemble_kernel.update_rows`' layout) with ``observed[i]``, or ``objects[i]``
        where given. ``in_order``: the caller knows ``at`` does not decrease. ``signals``
        may come as codes (`SignalCodes`), when the caller has them.
        """
        if not len(signals):
            return
        for i, verdict in objects.items():
            verdicts[i] = self._cells_of(verdict)[_CELLS_OF_VERDICT]
            observed[i] = verdict.observed
        slots = self._slots(signals if type(signals) is SignalCodes else SignalCodes.of(signals))
        # Points in time order fall into a few runs of one window each; often just one.
        first, last = int(at[0]) // self.window_us, int(at[-1]) // self.window_us
        if first == last and in_order:
            starts, arrays = _ONE_RUN, np.array([self._array_of(first)], dtype=np.int64)
        else:
            starts, window_ids = _runs(at, self.window_us)
            ids = window_ids.tolist()
            self._reserve(len(set(ids).difference(self._at)))
            arrays = np.array(list(map(self._array_of, ids)), dtype=np.int64)
        if len(self._at) >= self._peak:
            self._peak, self._peak_until = len(self._at), max(first, last) + len(self._at)
        cells, used, worst = self._cells, self._used, self._worst
        _fold(cells, used, worst, at, self.window_us, starts, arrays, slots, verdicts, observed)

    def close(self, window_id: int, start: datetime) -> SignalColumns:
        """Take window ``window_id`` (which starts at ``start``) out, as columns."""
        names, cells, used, worst = self.close_many([window_id])
        return SignalColumns.with_points(names, cells[0], used[0], start, self.components, worst[0])

    def close_many(
        self, window_ids: Sequence[int]
    ) -> tuple[tuple[str, ...], np.ndarray, list[int], list[float]]:
        """Take the windows ``window_ids`` (open, in order) out at once, as the columns of a
        `ClosedWindows`: every slot's name, the windows' cells (``window × slot × cell``, a
        copy), and per window its signals with a point and its highest score."""
        open_before = len(self._at)
        arrays = [self._at.pop(window_id) for window_id in window_ids]
        n = len(self._names)
        if len(arrays) == 1:  # one window (a tick's batch): slices cost less than indexes
            at = arrays[0]
            cells = self._cells[at : at + 1, :n].copy()
            used, worst = [int(self._used[at])], [float(self._worst[at])]
            self._cells[at, :n, COUNT] = 0
        else:
            cells = self._cells[arrays, :n]  # a copy: the arrays are reused below
            used, worst = self._used[arrays].tolist(), self._worst[arrays].tolist()
            self._cells[arrays, :n, COUNT] = 0
        self._used[arrays], self._worst[arrays] = 0, -np.inf
        self._free += arrays
        if self._all_names is None:
            self._all_names = tuple(self._names)
        names = self._all_names  # the cells' slots: `_shrink` may compact them below
        for i, window_id in enumerate(window_ids):
            if window_id > self._peak_until:  # as many windows again have passed since the peak
                self._peak = open_before - i - 1
        self._shrink()
        return names, cells, used, worst

    def _shrink(self) -> None:
        """After windows closed: give back arrays and slots that are now many too many."""
        if len(self._cells) > 4 and max(self._peak, len(self._at)) <= len(self._cells) // 4:
            self._repack()  # a burst of windows is over: give their arrays back
        if len(self._names) > _SPARE_SLOTS:
            self.compact()

    def restore(
        self, window_id: int, start: datetime, summaries: Mapping[str, SignalSummary]
    ) -> None:
        """Open window ``window_id`` with ``summaries`` in it (a snapshot from before columns)."""
        slots = self._slots(SignalCodes.of(list(summaries))).tolist()
        at = self._array_of(window_id)
        for slot, summary in zip(slots, summaries.values(), strict=True):
            self._cells[at, slot] = self._cells_of(summary.assessment)
            self._cells[at, slot, OFFSET] = (summary.ts - start) // _MICROSECOND
            self._cells[at, slot, COUNT] = summary.count
            self._used[at] += 1
            self._worst[at] = max(self._worst[at], summary.assessment.score)

    def compact(self) -> None:
        """Give up the slots that no open window uses, if they are many."""
        arrays = list(self._at.values())
        in_use = np.flatnonzero(self._cells[arrays, : len(self._names), COUNT].any(axis=0))
        if len(self._names) - len(in_use) <= _SPARE_SLOTS:
            return
        kept = np.zeros((len(self._cells), max(len(in_use), 8), CELL_WIDTH))
        kept[:, : len(in_use)] = self._cells[:, in_use]
        self._cells = kept
        self._names = [self._names[slot] for slot in in_use.tolist()]
        self._all_names = None
        self._slot_of = {name: slot for slot, name in enumerate(self._names)}

    def _repack(self) -> None:
        """Move the open windows to the first arrays and drop the rest."""
        open_ = list(self._at.items())
        kept = [at for _, at in open_]
        arrays = max(2, 2 * len(open_))
        cells = np.zeros((arrays, self._cells.shape[1], CELL_WIDTH))
        cells[: len(kept)] = self._cells[kept]
        used = np.zeros(arrays, dtype=np.int64)
        used[: len(kept)] = self._used[kept]
        worst = np.full(arrays, -np.inf)
        worst[: len(kept)] = self._worst[kept]
        self._cells, self._used, self._worst = cells, used, worst
        self._at = {window_id: i for i, (window_id, _) in enumerate(open_)}
        self._free = list(range(arrays - 1, len(kept) - 1, -1))

    def _slots(self, signals: SignalCodes) -> np.ndarray:
        slot_of = self._slot_of
        for signal in signals.names:
            if signal not in slot_of:
                slot_of[signal] = len(self._names)
                self._names.append(signal)
                self._all_names = None
        if len(self._names) > self._cells.shape[1]:
            # Up to a whole eight, not double: most services have a handful of signals.
            slots = max(-(-len(self._names) // 8) * 8, self._cells.shape[1] * 5 // 4)
            self._grow(len(self._cells), slots)
        return signals.lookup(slot_of)

    def _array_of(self, window_id: int) -> int:
        at = self._at.get(window_id)
        if at is None:
            self._reserve(1)
            at = self._at[window_id] = self._free.pop()
        return at

    def _reserve(self, windows: int) -> None:
        """Make sure ``windows`` more windows have free arrays, growing at most once."""
        if windows > len(self._free):
            used = len(self._cells)
            # Just what is missing: closed windows give their arrays back (`_free`), so after
            # a service's first batches this rarely runs, and room to spare would be memory
            # held for nothing by every service (a third of it when this doubled).
            arrays = used + windows - len(self._free)
            self._grow(arrays, self._cells.shape[1])
            self._free = list(range(arrays - 1, used - 1, -1)) + self._free

    def __setstate__(self, state: dict) -> None:
        # Snapshots from before the peak was kept.
        self.__dict__.update({"_peak": 0, "_peak_until": -1, **state})

    def _grow(self, arrays: int, slots: int) -> None:
        old = len(self._cells)
        grown = np.zeros((arrays, slots, CELL_WIDTH))
        grown[:old, : self._cells.shape[1]] = self._cells
        self._cells = grown
        self._used = np.concatenate((self._used, np.zeros(arrays - old, dtype=np.int64)))
        self._worst = np.concatenate((self._worst, np.full(arrays - old, -np.inf)))

    def _cells_of(self, verdict: Assessment) -> np.ndarray:
        if verdict.component not in self.components:
            self.components.append(verdict.component)
        cells = np.zeros(CELL_WIDTH)
        cells[[SCORE, OBSERVED, EXPECTED, LOWER, UPPER, CONFIDENCE]] = (
            verdict.score,
            verdict.observed,
            verdict.expected,
            verdict.lower,
            verdict.upper,
            verdict.confidence,
        )
        cells[STATE] = STATE_NAMES.index(verdict.state)
        cells[COMPONENT] = self.components.index(verdict.component)
        return cells


@numba.njit(cache=True)
def _runs(at, window_us):  # pragma: no cover - compiled
    """Where each run of points of one window starts, and its window."""
    starts = np.empty(len(at), np.int64)
    ids = np.empty(len(at), np.int64)
    n = 0
    for i in range(len(at)):
        window_id = at[i] // window_us
        if n == 0 or window_id != ids[n - 1]:
            starts[n] = i
            ids[n] = window_id
            n += 1
    return starts[:n], ids[:n]


@numba.njit(cache=True)
def _fold(
    cells, used, worst, at, window_us, starts, arrays, slots, verdicts, observed
):  # pragma: no cover
    run = -1
    array = 0
    start_us = 0
    for i in range(len(slots)):
        if run + 1 < len(starts) and i == starts[run + 1]:
            run += 1
            array = arrays[run]
            start_us = (at[i] // window_us) * window_us
        offset = float(at[i] - start_us)
        cell = cells[array, slots[i]]
        score = verdicts[i, VERDICT_SCORE]
        count = cell[COUNT]
        if count == 0:
            used[array] += 1
        if score > worst[array]:
            worst[array] = score
        # The rule of `add_assessment`: a higher score wins; on a tie, the earlier point.
        if count == 0 or score > cell[SCORE] or (score == cell[SCORE] and offset < cell[OFFSET]):
            cell[SCORE] = score
            cell[OBSERVED] = observed[i]
            cell[EXPECTED] = verdicts[i, VERDICT_EXPECTED]
            cell[LOWER] = verdicts[i, VERDICT_LOWER]
            cell[UPPER] = verdicts[i, VERDICT_UPPER]
            cell[STATE] = verdicts[i, VERDICT_STATE]
            cell[COMPONENT] = verdicts[i, VERDICT_COMPONENT]
            cell[CONFIDENCE] = verdicts[i, VERDICT_CONFIDENCE]
            cell[OFFSET] = offset
        cell[COUNT] = count + 1
