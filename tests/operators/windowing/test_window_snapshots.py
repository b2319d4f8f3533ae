"""A window detector snapshotted before its open windows were columns resumes where it was.

``data/window-detector-before-columns.pickle`` holds a `ServiceWindowDetector` pickled by the
code before `airis.operators.windowing.open_windows` existed, three windows open (one with a
cold-start prior's verdict in it), and what that code closed next from the batches below.
"""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airis.batches import MetricBatch
from airis.events import MetricPoint
from airis.operators.windowing.windowed_detector import ServiceWindowDetector

FIXTURE = Path(__file__).parent / "data" / "window-detector-before-columns.pickle"
T0 = datetime(2026, 1, 5, tzinfo=UTC)
#: Batches the detector had taken when pickled.
PICKLED_AFTER = 6


def _detector() -> ServiceWindowDetector:
    return ServiceWindowDetector("api", window_seconds=10, lateness_seconds=25)


def _batches() -> list[MetricBatch]:
    """Three signals (two with cold-start priors) every 3.3 s or so, two spikes, a late
    point, 40 points a batch, each batch shuffled."""
    rng = random.Random(11)
    points = []
    for i in range(900):
        ts = T0 + timedelta(seconds=3.3 * i, microseconds=rng.randint(0, 999_999))
        points += [
            MetricPoint(ts=ts, service="api", signal="cpu", value=40 + rng.gauss(0, 2)),
            MetricPoint(ts=ts, service="api", signal="error_rate", value=abs(rng.gauss(0, 0.01))),
            MetricPoint(ts=ts, service="api", signal="queue", value=3 + rng.random()),
        ]
        if i == 5 or 600 <= i < 606:  # an error burst while warming up (the prior), a spike
            points.append(points[-2 if i == 5 else -1].model_copy(update={"value": 90.0}))
    points[2000] = points[2000].model_copy(update={"ts": T0})  # late
    batches = []
    for i in range(0, len(points), 40):
        chunk = points[i : i + 40]
        rng.shuffle(chunk)
        batches.append(MetricBatch.from_points("api", chunk))
    return batches


def _outputs(detector: ServiceWindowDetector, batches: list[MetricBatch]) -> dict[str, list]:
    windows, late = [], []
    for batch in batches:
        closed, late_points = detector.update_batch(batch, now=0.0)
        windows += closed
        late += [p.model_dump_json() for p in late_points]
    windows += detector.close_all()
    return {"windows": [_plain(w) for w in windows], "late": late}


def _plain(window) -> tuple:
    signals = []
    for name, s in sorted(dict(window.signals).items()):
        a = s.assessment
        verdict = (a.score, a.observed, a.expected, a.lower, a.upper, a.state, a.component)
        signals.append((name, s.ts.isoformat(), s.count, *verdict, a.confidence))
    anomalies = [a.model_dump_json() for a in window.anomalies]
    return (window.service, window.start.isoformat(), window.end.isoformat(), signals, anomalies)


def test_a_detector_pickled_before_columns_closes_what_it_would_have() -> None:
    before = pickle.loads(FIXTURE.read_bytes())
    detector = pickle.loads(before["detector"])
    after = _outputs(detector, _batches()[PICKLED_AFTER:])
    assert len(after["windows"]) == len(before["after"]["windows"]) > 250
    assert sum(len(window[4]) for window in after["windows"]) >= 2  # anomalies
    assert after == before["after"]
