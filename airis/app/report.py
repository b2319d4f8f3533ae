"""Scoring a run against the simulator's ground truth: which faults were detected, how fast."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from airis.events import Alert

__all__ = ["FaultOutcome", "RunReport", "score_alerts"]

#: An alert that starts this long after a fault ended is still that fault's (recovery effects).
DEFAULT_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class FaultOutcome:
    """One injected fault and the first alert that caught it, if any."""

    id: str
    kind: str
    service: str
    start: datetime
    end: datetime
    detected: bool
    alert_service: str | None = None
    alert_signal: str | None = None
    delay_s: float | None = None


@dataclass(frozen=True)
class RunReport:
    """Detection quality of a run: per-fault outcomes, precision and recall over alerts."""

    faults: list[FaultOutcome]
    alerts: int
    true_alerts: int
    quiet_alerts: int
    unmatched: list[dict[str, Any]] = field(default_factory=list)

    @property
    def detected(self) -> int:
        return sum(f.detected for f in self.faults)

    @property
    def recall(self) -> float:
        return self.detected / len(self.faults) if self.faults else 1.0

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else 1.0

    @property
    def mean_detection_delay_s(self) -> float | None:
        delays = [f.delay_s for f in self.faults if f.delay_s is not None]
        return sum(delays) / len(delays) if delays else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "faults": len(self.faults),
            "detected": self.detected,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "mean_detection_delay_s": self.mean_detection_delay_s,
            "alerts": self.alerts,
            "true_alerts": self.true_alerts,
            "alerts_in_quiet_stretch": self.quiet_alerts,
            "fault_outcomes": [
                {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(f).items()}
                for f in self.faults
            ],
            "unmatched_alerts": self.unmatched,
        }


def score_alerts(
    faults: list[dict[str, Any]],
    alerts: list[Alert],
    quiet: tuple[datetime, datetime] | None = None,
    grace: timedelta = DEFAULT_GRACE,
) -> RunReport:
    """Match firing alerts to faults.

    An alert belongs to a fault when its service is one the fault affects and it starts
    between the fault's start and ``grace`` after its end. A fault is detected when at least
    one alert belongs to it; the detection delay is from the fault's start to the event time
    at which the first such alert was emitted. Precision counts alerts that belong to some
    fault; alerts in the ``quiet`` (fault-free) stretch are also counted on their own.
    """
    firing = sorted((a for a in alerts if a.status == "firing"), key=lambda a: a.starts_at)
    matched: set[str] = set()
    outcomes = []
    for fault in sorted(faults, key=lambda f: f["start"]):
        start, end = fault["start"], fault["end"]
        affected = set(fault["affected"]) | {fault["service"]}
        mine = [a for a in firing if a.service in affected and start <= a.starts_at <= end + grace]
        matched.update(a.id for a in mine)
        first = min(mine, key=lambda a: a.updated_at or a.starts_at, default=None)
        outcomes.append(
            FaultOutcome(
                id=fault["id"],
                kind=fault["kind"],
                service=fault["service"],
                start=start,
                end=end,
                detected=first is not None,
                alert_service=first.service if first else None,
                alert_signal=first.signal if first else None,
                delay_s=((first.updated_at or first.starts_at) - start).total_seconds()
                if first
                else None,
            )
        )
    unmatched = [a for a in firing if a.id not in matched]
    quiet_alerts = (
        sum(quiet[0] <= a.starts_at < quiet[1] for a in firing) if quiet is not None else 0
    )
    return RunReport(
        faults=outcomes,
        alerts=len(firing),
        true_alerts=len(firing) - len(unmatched),
        quiet_alerts=quiet_alerts,
        unmatched=[
            {
                "service": a.service,
                "signal": a.signal,
                "kind": a.kind,
                "starts_at": a.starts_at.isoformat(),
            }
            for a in unmatched
        ],
    )
