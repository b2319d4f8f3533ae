"""The protocol every per-series detector follows."""

from __future__ import annotations

import abc
from datetime import datetime

from airis.operators.types import Assessment

__all__ = ["SeriesDetector"]


class SeriesDetector(abc.ABC):
    """An online detector for one univariate time series.

    Callers assess a value before the detector learns it (no look-ahead): `update_one` does
    both in that order. The assessment's score is in [0, 1], high means anomalous, and its
    ``state`` says whether the detector is still warming up.
    """

    __slots__ = ()  # a subclass may keep its per-series state in slots

    @abc.abstractmethod
    def assess_one(self, ts: datetime, value: float) -> Assessment:
        """Score ``value`` observed at ``ts`` against what was learned so far."""

    @abc.abstractmethod
    def learn_one(self, ts: datetime, value: float) -> None:
        """Update the detector's state with ``value`` observed at ``ts``."""

    def score_one(self, ts: datetime, value: float) -> float:
        """The anomaly score in [0, 1] alone."""
        return self.assess_one(ts, value).score

    def update_one(self, ts: datetime, value: float) -> Assessment:
        """Assess, then learn: the one call a streaming caller needs per event."""
        assessment = self.assess_one(ts, value)
        self.learn_one(ts, value)
        return assessment
