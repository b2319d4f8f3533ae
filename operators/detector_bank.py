"""One detector per signal, behind one object: the per-key state of the detect step."""

from __future__ import annotations

import logging
from collections.abc import Callable

from airis.events import MetricPoint
from airis.operators.base import SeriesDetector
from airis.operators.cold_start import ColdStartPrior
from airis.operators.ensemble_detector import EnsembleDetector
from airis.operators.types import ScoredPoint

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_MIN_SCALES", "DEFAULT_PRIORS", "DetectorBank", "metrics_detector"]

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
    """

    def __init__(
        self,
        make_detector: Callable[..., SeriesDetector] = metrics_detector,
        min_scales: dict[str, float] | None = None,
        priors: dict[str, str] | None = None,
    ) -> None:
        self.make_detector = make_detector
        self.min_scales = min_scales
        self.priors = priors
        self._detectors: dict[str, SeriesDetector] = {}
        self._priors: dict[str, ColdStartPrior] = {}

    def __setstate__(self, state: dict) -> None:
        # Snapshots taken before cold-start priors existed resume without any.
        self.__dict__.update({"priors": None, "_priors": {}, **state})

    @property
    def signals(self) -> list[str]:
        return list(self._detectors)

    def update_one(self, point: MetricPoint) -> ScoredPoint:
        """Assess the point against its signal's detector, then learn it."""
        detector = self._detectors.get(point.signal)
        if detector is None:
            floors = DEFAULT_MIN_SCALES if self.min_scales is None else self.min_scales
            floor = floors.get(point.signal)
            kwargs = {} if floor is None else {"min_scale": floor}
            detector = self._detectors[point.signal] = self.make_detector(**kwargs)
            kind = (DEFAULT_PRIORS if self.priors is None else self.priors).get(point.signal)
            if kind is not None:
                self._priors[point.signal] = ColdStartPrior(kind)
        assessment = detector.update_one(point.ts, point.value)
        prior = self._priors.get(point.signal)
        if prior is not None:
            if assessment.state != "warming":
                del self._priors[point.signal]
            else:
                verdict = prior.update_one(point.ts, point.value)
                if verdict.score > assessment.score:
                    assessment = verdict
        return ScoredPoint(point, assessment)
