"""One detector per signal, behind one object: the per-key state of the detect step."""

from __future__ import annotations

import logging
from collections.abc import Callable

from airis.events import MetricPoint
from airis.operators.base import SeriesDetector
from airis.operators.ensemble_detector import EnsembleDetector
from airis.operators.types import ScoredPoint

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_MIN_SCALES", "DetectorBank", "metrics_detector"]

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


def metrics_detector(min_scale: float = 1e-9) -> EnsembleDetector:
    """`airis detect`'s detector as the metrics flow runs it: without its season buffer.

    At one point per 10 s a daily season is 8,640 points, far beyond what the buffer holds
    (three periods must fit), so the buffer would cost 32 KiB per series and find no period;
    the hour-of-day profile is the flow's season. The event-onset rule (`EventOnset`) is not
    applied: the alert step needs a score that stays high while a fault lasts. The score map
    is stricter (``tail_power=0.15``: 0.9 at a tail of 2e-7, not 5e-4), as the alert step
    compares the scores of every series (120 in the demo) to one threshold; ``settle=60``
    lets a series scored once a minute (trace signals) start within the hour.
    """
    return EnsembleDetector(buffer=0, settle=60, tail_power=0.15, min_scale=min_scale)


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
    """

    def __init__(
        self,
        make_detector: Callable[..., SeriesDetector] = metrics_detector,
        min_scales: dict[str, float] | None = None,
    ) -> None:
        self.make_detector = make_detector
        self.min_scales = min_scales
        self._detectors: dict[str, SeriesDetector] = {}

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
        return ScoredPoint(point, detector.update_one(point.ts, point.value))
