"""One detector per signal, behind one object: the per-key state of the detect step."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import numpy as np

from airis.events import MetricPoint
from airis.operators.base import SeriesDetector
from airis.operators.detectors import ensemble_kernel as kernel
from airis.operators.detectors.cold_start import ColdStartPrior
from airis.operators.detectors.ensemble_detector import EnsembleDetector
from airis.operators.types import Assessment, ScoredPoint, SignalCodes

__all__ = [
    "DEFAULT_IDLE_AFTER",
    "DEFAULT_MAX_SIGNALS",
    "DEFAULT_MIN_SCALES",
    "DEFAULT_PRIORS",
    "DetectorBank",
    "Verdicts",
    "metrics_detector",
]

_STATE_NAMES = np.array(kernel.STATES, dtype=object)
_COMPONENT_NAMES = np.array(kernel.COMPONENTS, dtype=object)

#: How long a signal may stay silent before its detector is dropped (`DetectorBank`).
DEFAULT_IDLE_AFTER = timedelta(days=2)
#: Detectors one service may hold (`DetectorBank`).
DEFAULT_MAX_SIGNALS = 2_000

#: Smallest noise scale per signal, in the signal's unit. Error ratios of quiet services are
#: mostly exactly zero: without a floor, one stray error would be a many-sigma event.
#: `EnsembleDetector` ignores residuals under five floors: 0.003 means an error-ratio change
#: of less than 1.5 percentage points is never anomalous.
#: Log signals (`airis.operators.signals.log_signals`) count a few lines per window, so one line
#: more or less must not look like a many-sigma event either; so must one failed span more or less
#: among the few sampled spans of a trace window.
DEFAULT_MIN_SCALES: dict[str, float] = {
    "error_rate": 0.003,
    "log_rate": 0.1,
    "log_error_ratio": 0.1,
    "log_new_templates": 0.5,
    "log_rare_lines": 2.0,
    "trace_error_ratio": 0.05,
}


#: The kind of each signal whose values mean something without history
#: (`airis.operators.detectors.cold_start`): what may be said of it while its detector warms up.
DEFAULT_PRIORS: dict[str, str] = {
    "error_rate": "ratio",
    "trace_error_ratio": "ratio",
    "log_error_ratio": "ratio",
    "latency_p50": "latency",
    "latency_p95": "latency",
    "latency_p99": "latency",
    "trace_p95_ms": "latency",
    "cpu": "utilisation",
    "memory": "utilisation",
    "disk": "utilisation",
}


class Verdicts(NamedTuple):
    """A batch's assessments as columns (`DetectorBank.assess_columns`).

    ``table`` has one row per point in `ensemble_kernel.update_rows`' layout (score,
    expected, lower, upper, state and component codes, confidence); the observed value is
    the point's. ``objects`` overrides it where an `Assessment` was made anyway (a prior's
    verdict, a detector kept as an object), or says None where the point was refused; those
    rows of ``table`` mean nothing.
    """

    table: np.ndarray
    objects: dict[int, Assessment | None]

    def assessments(self, values: Sequence[float]) -> list[Assessment | None]:
        """One `Assessment` per point (None where refused)."""
        score, expected, lower, upper, state, component, confidence = self.table.T
        out: list[Assessment | None] = list(
            map(
                Assessment,
                score.tolist(),
                values,
                expected.tolist(),
                lower.tolist(),
                upper.tolist(),
                _STATE_NAMES[state.astype(np.intp)].tolist(),
                _COMPONENT_NAMES[component.astype(np.intp)].tolist(),
                confidence.tolist(),
            )
        )
        for i, verdict in self.objects.items():
            out[i] = verdict
        return out


def metrics_detector(min_scale: float = 1e-9) -> EnsembleDetector:
    """`airis detect`'s detector, with the signal's floor: one configuration everywhere.

    The event-onset rule (`EventOnset`) is not applied here: the alert step needs a score
    that stays high while a fault lasts, and decides with its own threshold and hysteresis.
    """
    return EnsembleDetector(min_scale=min_scale)


class DetectorBank:
    """Per-signal detectors of one service, created on first sight of each signal.

    Keying the detect step by service (not by series) keeps one service's points in arrival
    order on their way to the service's event-time window.

    `EnsembleDetector` (the default) is kept as rows of one array rather than an object per
    signal (`airis.operators.detectors.ensemble_kernel`: the same scores, bit for bit):
    `assess_many`
    scores a whole batch of the service's points in one compiled call, in arrival order, and
    a series costs 936 bytes. Any other detector is kept as its object.

    Parameters
    ----------
    make_detector
        Builds the detector of a new signal (a class or a picklable callable); called with
        ``min_scale=`` for the signals in ``min_scales``.
    min_scales
        Per-signal floors of the noise scale; ``None`` uses `DEFAULT_MIN_SCALES`.
    priors
        Per-signal kind of `ColdStartPrior` (``None`` uses `DEFAULT_PRIORS`; ``{}``: none).
        While a signal's detector warms up, the prior's verdict is reported instead when it
        scores higher (state ``"prior"``, with the rule's stated confidence); once the
        detector is warm the prior is dropped, so it costs no state afterwards.
    idle_after
        A signal with no point for this long (event time) loses its detector: state is
        bounded by what is active, not by everything ever seen. A signal that comes back
        starts afresh (warming, with its prior). None: never.
    max_signals
        Detectors one service may hold. A point of a new signal beyond it is refused
        (`update_one` returns None; `refused` counts them), never a crash: one service that
        sends a new signal name per point must not take the flow's memory.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> bank = DetectorBank()
    >>> p = MetricPoint(ts=datetime(2026, 1, 1, tzinfo=timezone.utc), service="api",
    ...                 signal="cpu", value=3.0)
    >>> bank.update_one(p).assessment.state
    'warming'
    >>> sorted(bank.signals)
    ['cpu']
    >>> bank.update_one(p.model_copy(update={"value": 99.0})).assessment.state
    'prior'

    Idle signals go; past the cap, new ones are refused:

    >>> from datetime import timedelta
    >>> bank = DetectorBank(idle_after=timedelta(hours=1), max_signals=2)
    >>> for name in ("cpu", "memory", "disk"):
    ...     scored = bank.update_one(p.model_copy(update={"signal": name}))
    >>> scored is None, bank.refused, sorted(bank.signals)
    (True, 1, ['cpu', 'memory'])
    >>> later = p.model_copy(update={"signal": "disk", "ts": p.ts + timedelta(hours=2)})
    >>> bank.update_one(later) is not None, sorted(bank.signals)
    (True, ['disk'])
    """

    def __init__(
        self,
        make_detector: Callable[..., SeriesDetector] = metrics_detector,
        min_scales: dict[str, float] | None = None,
        priors: dict[str, str] | None = None,
        idle_after: timedelta | None = DEFAULT_IDLE_AFTER,
        max_signals: int = DEFAULT_MAX_SIGNALS,
    ) -> None:
        if max_signals < 1:
            raise ValueError(f"max_signals must be at least 1, got {max_signals}")
        self.make_detector = make_detector
        self.min_scales = min_scales
        self.priors = priors
        self.idle_after = idle_after
        self.max_signals = max_signals
        self.refused = 0
        self._detectors: dict[str, SeriesDetector] = {}  # detectors kept as objects
        self._rows: dict[str, int] = {}  # signal -> its row of _state (EnsembleDetector)
        self._state = np.empty((0, kernel.ROW_WIDTH))
        self._free: list[int] = []  # rows of _state no signal holds
        self._priors: dict[str, ColdStartPrior] = {}
        self._last_seen: dict[str, float] = {}  # signal -> its newest point (epoch seconds)
        self._next_sweep = -math.inf

    def __getstate__(self) -> dict:
        # Only the rows in use: no free rows in a snapshot.
        return {**self.__dict__, **self._compacted()}

    def _compacted(self) -> dict:
        """The rows in use, renumbered in the order of the signals, with no free rows."""
        rows = list(self._rows.values())
        return {
            "_state": self._state[rows] if rows else np.empty((0, kernel.ROW_WIDTH)),
            "_rows": {signal: i for i, signal in enumerate(self._rows)},
            "_free": [],
        }

    def __setstate__(self, state: dict) -> None:
        # Snapshots taken before priors, eviction or rows existed resume with their defaults.
        defaults = {
            "priors": None,
            "_priors": {},
            "idle_after": DEFAULT_IDLE_AFTER,
            "max_signals": DEFAULT_MAX_SIGNALS,
            "refused": 0,
            "_next_sweep": -math.inf,
            "_rows": {},
            "_state": np.empty((0, kernel.ROW_WIDTH)),
            "_free": [],
        }
        self.__dict__.update({**defaults, **state})
        if "_last_seen" not in state:
            self._last_seen = dict.fromkeys(self.signals, -math.inf)
        if self._columnar:  # detectors snapshotted as objects move into rows
            for signal, detector in list(self._detectors.items()):
                if kernel.supports(detector):
                    row = self._new_row(kernel.row_from_detector(detector))  # type: ignore[arg-type]
                    self._rows[signal] = row
                    del self._detectors[signal]

    @property
    def _columnar(self) -> bool:
        return self.make_detector in (metrics_detector, EnsembleDetector)

    @property
    def signals(self) -> list[str]:
        return [*self._rows, *self._detectors]

    def detector(self, signal: str) -> SeriesDetector | None:
        """A copy of ``signal``'s detector as an object (None: no such signal)."""
        row = self._rows.get(signal)
        if row is not None:
            return kernel.detector_from_row(self._state[row])
        return self._detectors.get(signal)

    def update_one(self, point: MetricPoint) -> ScoredPoint | None:
        """Assess the point against its signal's detector, then learn it (None: refused)."""
        assessment = self.assess(point.signal, point.ts, point.value)
        return None if assessment is None else ScoredPoint(point, assessment)

    def assess(self, signal: str, ts: datetime, value: float) -> Assessment | None:
        """`update_one` on a point given as its columns (None: refused)."""
        return self.assess_many((signal,), (ts,), (value,))[0]

    def assess_many(
        self,
        signals: Sequence[str],
        stamps: Sequence[datetime],
        values: Sequence[float],
        seconds: Sequence[float] | None = None,
    ) -> list[Assessment | None]:
        """`assess` of each point in order (None where refused), rows in one compiled call.

        ``seconds``: the stamps as epoch seconds, when the caller has them already.
        """
        return self.assess_columns(signals, stamps, values, seconds).assessments(values)

    def assess_columns(
        self,
        signals: Sequence[str],
        stamps: Sequence[datetime],
        values: Sequence[float],
        seconds: Sequence[float] | np.ndarray | None = None,
        codes: SignalCodes | None = None,
    ) -> Verdicts:
        """`assess_many` as columns: no `Assessment` per point but where one was made anyway
        (a prior's verdict, a detector kept as an object) or none could be (refused).

        ``values`` and ``seconds`` may come as float arrays, ``codes`` as the signals' codes
        (`SignalCodes`), when the caller has them.
        """
        size = len(signals)
        if not size:
            return Verdicts(np.zeros((0, kernel.VERDICT_WIDTH)), {})
        if seconds is None:
            seconds = [ts.timestamp() for ts in stamps]
        if seconds[0] >= self._next_sweep and self.idle_after is not None:
            self._evict_idle(float(seconds[0]))
        if codes is None:
            codes = SignalCodes.of(signals)
        rows_of = self._rows
        refused: set[str] = set()
        for signal in codes.names:  # new signals get detectors in order of arrival
            if signal not in rows_of and signal not in self._detectors and not self._create(signal):
                refused.add(signal)
        objects: dict[int, Assessment | None] = {}
        if refused:
            objects = {i: None for i, signal in enumerate(signals) if signal in refused}
            self.refused += len(objects) - len(refused)  # one per refused point, as before
        if self._detectors and not self._detectors.keys().isdisjoint(codes.names):
            for i, signal in enumerate(signals):  # detectors kept as objects, point by point
                detector = self._detectors.get(signal)
                if detector is None or i in objects:
                    continue
                if seconds[i] > self._last_seen.get(signal, -math.inf):
                    self._last_seen[signal] = float(seconds[i])
                value = float(values[i])
                assessment = detector.update_one(stamps[i], value)
                objects[i] = self._with_prior(signal, stamps[i], value, assessment)
        if not objects:  # the common case: every point a row, in one kernel call
            return self._assess_rows(codes, stamps, values, seconds)
        table = np.zeros((size, kernel.VERDICT_WIDTH))
        at_rows = [i for i in range(size) if i not in objects]
        if at_rows:
            picked = [[col[i] for i in at_rows] for col in (signals, stamps, values, seconds)]
            scored = self._assess_rows(SignalCodes.of(picked[0]), *picked[1:])
            table[at_rows] = scored.table
            objects.update((at_rows[i], verdict) for i, verdict in scored.objects.items())
        return Verdicts(table, objects)

    def _assess_rows(
        self,
        signals: SignalCodes,
        stamps: Sequence[datetime],
        values: Sequence[float] | np.ndarray,
        seconds: Sequence[float] | np.ndarray,
    ) -> Verdicts:
        """Every point's row through the compiled kernel at once, in order."""
        last_seen, names = self._last_seen, signals.names
        at = np.asarray(seconds, dtype=np.float64)
        newest = np.full(len(names), -math.inf)
        np.maximum.at(newest, signals.codes, at)
        for signal, latest in zip(names, newest.tolist(), strict=True):
            if latest > last_seen.get(signal, -math.inf):
                last_seen[signal] = latest
        rows = signals.lookup(self._rows)
        table = kernel.update_rows(self._state, rows, at, np.asarray(values, dtype=np.float64))
        objects: dict[int, Assessment | None] = {}
        if self._priors and not self._priors.keys().isdisjoint(names):
            warming = kernel.STATES.index("warming")
            for i, signal in enumerate(map(names.__getitem__, signals.codes.tolist())):
                prior = self._priors.get(signal)
                if prior is None:
                    continue
                if table[i, kernel.VERDICT_STATE] != warming:
                    del self._priors[signal]  # the detector is warm: the prior is done
                    continue
                verdict = prior.update_one(stamps[i], float(values[i]))
                if verdict.score > table[i, kernel.VERDICT_SCORE]:
                    objects[i] = verdict
        return Verdicts(table, objects)

    def _with_prior(
        self, signal: str, ts: datetime, value: float, assessment: Assessment
    ) -> Assessment:
        """While the detector warms up, the prior's verdict where it scores higher."""
        prior = self._priors.get(signal)
        if prior is None:
            return assessment
        if assessment.state != "warming":
            del self._priors[signal]
            return assessment
        verdict = prior.update_one(ts, value)
        return verdict if verdict.score > assessment.score else assessment

    def _create(self, signal: str) -> bool:
        """Make ``signal``'s detector (False: the service is at its cap)."""
        if len(self._rows) + len(self._detectors) >= self.max_signals:
            self.refused += 1
            return False
        floors = DEFAULT_MIN_SCALES if self.min_scales is None else self.min_scales
        floor = floors.get(signal)
        if self._columnar:
            row = kernel.new_row() if floor is None else kernel.new_row(floor)
            self._rows[signal] = self._new_row(row)
        else:
            kwargs = {} if floor is None else {"min_scale": floor}
            self._detectors[signal] = self.make_detector(**kwargs)
        kind = (DEFAULT_PRIORS if self.priors is None else self.priors).get(signal)
        if kind is not None:
            self._priors[signal] = ColdStartPrior(kind)
        return True

    def _new_row(self, values: np.ndarray) -> int:
        if not self._free:
            used = len(self._state)
            grown = np.empty((max(8, 2 * used), kernel.ROW_WIDTH))
            grown[:used] = self._state
            self._state = grown
            self._free = list(range(len(grown) - 1, used - 1, -1))
        row = self._free.pop()
        self._state[row] = values
        return row

    def _evict_idle(self, now: float) -> None:
        assert self.idle_after is not None
        idle = self.idle_after.total_seconds()
        for signal, seen in list(self._last_seen.items()):
            if seen < now - idle:
                del self._last_seen[signal]
                self._detectors.pop(signal, None)
                self._priors.pop(signal, None)
                row = self._rows.pop(signal, None)
                if row is not None:
                    self._free.append(row)
        if len(self._state) > 64 and len(self._rows) < len(self._state) // 4:
            self.__dict__.update(self._compacted())  # a quiet service gives memory back
        # Sweeping is O(signals): once per tenth of the idle time is enough.
        self._next_sweep = now + idle / 10
