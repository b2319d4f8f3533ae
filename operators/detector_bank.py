"""One detector per signal, behind one object: the per-key state of the detect step."""

from __future__ import annotations

import logging
from collections.abc import Callable

from airis.events import MetricPoint
from airis.operators.base import SeriesDetector
from airis.operators.robust_detector import RobustSeasonalDetector
from airis.operators.types import ScoredPoint

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_MIN_SCALES", "DetectorBank"]

#: Smallest noise scale per signal, in the signal's unit. Error ratios of quiet services are
#: mostly exactly zero: without a floor, one stray error would be a many-sigma event.
#: 0.003 means an error-ratio change needs about 1.7 percentage points to score 0.9.
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
        make_detector: Callable[..., SeriesDetector] = RobustSeasonalDetector,
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
