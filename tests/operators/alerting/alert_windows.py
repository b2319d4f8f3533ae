"""Windows and runs the alert manager tests feed it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airis.events import Alert, Anomaly, event_id, fingerprint
from airis.operators.alerting.alert_manager import (
    AlertManager,
)
from airis.operators.types import Assessment, ServiceWindow, SignalSummary

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
STEP = timedelta(seconds=10)
SERVICE = "checkout"
LAT = "latency_p99"
FP = fingerprint(SERVICE, LAT, "spike")


def start_of(i: int) -> datetime:
    return T0 + i * STEP


def anomaly(i: int, signal: str = LAT, kind: str = "spike", score: float = 0.95) -> Anomaly:
    start = start_of(i)
    return Anomaly(
        id=event_id(SERVICE, signal, kind, start),
        service=SERVICE,
        signal=signal,
        kind=kind,
        window_start=start,
        window_end=start + STEP,
        score=score,
        observed=812.3 if kind == "spike" else 3.0,
        expected=120.5,
        lower=95.1,
        upper=146.0,
        state="recent",
        detector="robust/level",
    )


def window(i: int, *anomalies: Anomaly, signals: tuple[str, ...] = (LAT,)) -> ServiceWindow:
    start = start_of(i)
    normal = SignalSummary(start, Assessment(0.1, 120.0, 120.5, 95.1, 146.0, "recent", "x", 1), 1)
    present = set(signals) | {a.signal for a in anomalies}
    return ServiceWindow(SERVICE, start, start + STEP, dict.fromkeys(present, normal), anomalies)


def windows(pattern: str, signal: str = LAT, kind: str = "spike") -> list[ServiceWindow]:
    """One window per character: A anomalous (0.95), C anomalous (0.9995), . normal,
    - window without the signal, space: no window at all."""
    out = []
    for i, c in enumerate(pattern):
        if c == " ":
            continue
        if c in "AC":
            score = 0.95 if c == "A" else 0.9995
            out.append(window(i, anomaly(i, signal, kind, score)))
        elif c == ".":
            out.append(window(i, signals=(signal,)))
        elif c == "-":
            out.append(window(i, signals=("rps",)))
        else:
            raise ValueError(c)
    return out


def feed(manager: AlertManager, ws: list[ServiceWindow]) -> list[tuple[int, Alert]]:
    """Each alert with the index of the window that caused it."""
    return [((w.start - T0) // STEP, alert) for w in ws for alert in manager.update_one(w)]


def run(pattern: str, **params: object) -> list[tuple[int, Alert]]:
    return feed(AlertManager(**params), windows(pattern))


def statuses(out: list[tuple[int, Alert]]) -> list[tuple[int, str]]:
    return [(i, a.status) for i, a in out]
