"""One detector per signal, behind one object: the per-key state of the detect step."""

from __future__ import annotations

import logging
from collections.abc import Callable

from airis.events import MetricPoint
from airis.operators.base import SeriesDetector
from airis.operators.robust_detector import RobustSeasonalDetector
from airis.operators.types import ScoredPoint

logger = logging.getLogger(__name__)

__all__ = ["DetectorBank"]


class DetectorBank:
    """Per-signal detectors of one service, created on first sight of each signal.

    Keying the detect step by service (not by series) keeps one service's points in arrival
    order on their way to the service's event-time window.

    Parameters
    ----------
    make_detector
        Builds the detector of a new signal (a class or a picklable callable).

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

    def __init__(self, make_detector: Callable[[], SeriesDetector] = RobustSeasonalDetector):
        self.make_detector = make_detector
        self._detectors: dict[str, SeriesDetector] = {}

    @property
    def signals(self) -> list[str]:
        return list(self._detectors)

    def update_one(self, point: MetricPoint) -> ScoredPoint:
        """Assess the point against its signal's detector, then learn it."""
        detector = self._detectors.get(point.signal)
        if detector is None:
            detector = self._detectors[point.signal] = self.make_detector()
        return ScoredPoint(point, detector.update_one(point.ts, point.value))
