"""One detector per signal, behind one object: the per-key state of the detect step."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta

from airis.events import MetricPoint
from airis.operators.base import SeriesDetector
from airis.operators.cold_start import ColdStartPrior
from airis.operators.ensemble_detector import EnsembleDetector
from airis.operators.types import Assessment, ScoredPoint

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_IDLE_AFTER",
    "DEFAULT_MAX_SIGNALS",
    "DEFAULT_MIN_SCALES",
    "DEFAULT_PRIORS",
    "DetectorBank",
    "metrics_detector",
]

#: How long a signal may stay silent before its detector is dropped (`DetectorBank`).
DEFAULT_IDLE_AFTER = timedelta(days=2)
#: Detectors one service may hold (`DetectorBank`).
DEFAULT_MAX_SIGNALS = 2_000

#: Smallest noise scale per signal, in the signal's unit. Error ratios of quiet services are
#: mostly exactly zero: without a floor, one stray error would be a many-sigma event.
#: `EnsembleDetector` ignores residuals under five floors: 0.003 means an error-ratio change
#: of less than 1.5 percentage points is never anomalous.
#: Log signals (`airis.operators.log_signals`) count a few lines per window, so one line more
#: or less must not look like a many-sigma event either; so must one failed span more or less
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
#: (`airis.operators.cold_start`): what may be said of it while its detector warms up.
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
        self._detectors: dict[str, SeriesDetector] = {}
        self._priors: dict[str, ColdStartPrior] = {}
        self._last_seen: dict[str, float] = {}  # signal -> its newest point (epoch seconds)
        self._next_sweep = -math.inf

    def __setstate__(self, state: dict) -> None:
        # Snapshots taken before priors or eviction existed resume with their defaults.
        defaults = {
            "priors": None,
            "_priors": {},
            "idle_after": DEFAULT_IDLE_AFTER,
            "max_signals": DEFAULT_MAX_SIGNALS,
            "refused": 0,
            "_next_sweep": -math.inf,
        }
        self.__dict__.update({**defaults, **state})
        if "_last_seen" not in state:
            self._last_seen = dict.fromkeys(self._detectors, -math.inf)

    @property
    def signals(self) -> list[str]:
        return list(self._detectors)

    def update_one(self, point: MetricPoint) -> ScoredPoint | None:
        """Assess the point against its signal's detector, then learn it (None: refused)."""
        assessment = self.assess(point.signal, point.ts, point.value)
        return None if assessment is None else ScoredPoint(point, assessment)

    def assess(self, signal: str, ts: datetime, value: float) -> Assessment | None:
        """`update_one` on a point given as its columns (None: refused)."""
        now = ts.timestamp()
        if now >= self._next_sweep and self.idle_after is not None:
            self._evict_idle(now)
        detector = self._detectors.get(signal)
        if detector is None:
            if len(self._detectors) >= self.max_signals:
                self.refused += 1
                return None
            floors = DEFAULT_MIN_SCALES if self.min_scales is None else self.min_scales
            floor = floors.get(signal)
            kwargs = {} if floor is None else {"min_scale": floor}
            detector = self._detectors[signal] = self.make_detector(**kwargs)
            kind = (DEFAULT_PRIORS if self.priors is None else self.priors).get(signal)
            if kind is not None:
                self._priors[signal] = ColdStartPrior(kind)
        if now > self._last_seen.get(signal, -math.inf):
            self._last_seen[signal] = now
        assessment = detector.update_one(ts, value)
        prior = self._priors.get(signal)
        if prior is not None:
            if assessment.state != "warming":
                del self._priors[signal]
            else:
                verdict = prior.update_one(ts, value)
                if verdict.score > assessment.score:
                    assessment = verdict
        return assessment

    def _evict_idle(self, now: float) -> None:
        assert self.idle_after is not None
        idle = self.idle_after.total_seconds()
        for signal, seen in list(self._last_seen.items()):
            if seen < now - idle:
                del self._last_seen[signal]
                self._detectors.pop(signal, None)
                self._priors.pop(signal, None)
        # Sweeping is O(signals): once per tenth of the idle time is enough.
        self._next_sweep = now + idle / 10
