"""Plain records that flow between operators (frozen, slotted, picklable)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from airis.events import Anomaly, DetectorState, MetricPoint

__all__ = ["Assessment", "ScoredPoint", "ServiceWindow", "SignalSummary", "WindowValues"]


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


@dataclass(frozen=True, slots=True)
class ServiceWindow:
    """All signals of one service during one event-time window, and the anomalies found."""

    service: str
    start: datetime
    end: datetime
    signals: dict[str, SignalSummary]
    anomalies: tuple[Anomaly, ...] = field(default=())


class WindowValues(NamedTuple):
    """A closed window as a model scores it: its span and each signal's observed value.

    Every service's windows cross to the one model step: a `ServiceWindow` would carry each
    signal's assessment (dataclasses, pickled one by one between processes), a tuple of
    plain values pickles at the cost of its values.
    """

    service: str
    start: datetime
    end: datetime
    values: dict[str, float]

    @classmethod
    def of(cls, window: ServiceWindow) -> WindowValues:
        observed = {signal: s.assessment.observed for signal, s in window.signals.items()}
        return cls(window.service, window.start, window.end, observed)
