"""Plain records that flow between operators (frozen, slotted, picklable)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from airis.events import Anomaly, DetectorState, MetricPoint

__all__ = ["Assessment", "ScoredPoint", "ServiceWindow", "SignalSummary"]


@dataclass(frozen=True, slots=True)
class Assessment:
    """A detector's verdict on one value, with the evidence behind it.

    ``score`` is in [0, 1]; ``expected``/``lower``/``upper`` are the band the detector
    expected; ``component`` names the part of the detector that produced the score.
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


@dataclass(frozen=True, slots=True)
class ScoredPoint:
    """A metric point and its detector's assessment."""

    point: MetricPoint
    assessment: Assessment


@dataclass(frozen=True, slots=True)
class SignalSummary:
    """One signal inside one service window: its most anomalous point, and how many it saw."""

    ts: datetime
    assessment: Assessment
    count: int


@dataclass(frozen=True, slots=True)
class ServiceWindow:
    """All signals of one service during one event-time window, and the anomalies found."""

    service: str
    start: datetime
    end: datetime
    signals: dict[str, SignalSummary]
    anomalies: tuple[Anomaly, ...] = field(default=())
