from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from airis.operators.robust_detector import RobustSeasonalDetector

T0 = datetime(2026, 1, 5, tzinfo=UTC)
STEP = timedelta(seconds=10)


def _feed(detector, values, start=T0):
    return [detector.update_one(start + STEP * i, v) for i, v in enumerate(values)]


def test_noise_alone_never_reaches_the_alert_threshold():
    rng = random.Random(7)
    scores = [
        a.score for a in _feed(RobustSeasonalDetector(), [rng.gauss(100, 5) for _ in range(20_000)])
    ]
    assert max(scores[30:]) < 0.9


def test_step_is_detected_in_the_right_direction():
    rng = random.Random(8)
    values = [rng.gauss(100, 2) for _ in range(500)] + [rng.gauss(70, 2) for _ in range(30)]
    out = _feed(RobustSeasonalDetector(), values)
    assert all(a.score > 0.99 and a.direction == "dip" for a in out[500:510])


def test_step_stays_anomalous_for_a_long_fault_but_is_eventually_accepted():
    rng = random.Random(9)
    detector = RobustSeasonalDetector(relearn_after=360)
    _feed(detector, [rng.gauss(100, 2) for _ in range(500)])
    fault = _feed(detector, [rng.gauss(130, 2) for _ in range(2000)], start=T0 + STEP * 500)
    assert min(a.score for a in fault[:300]) > 0.9  # 50 minutes of a 15-sigma shift stay visible
    assert max(a.score for a in fault[-100:]) < 0.9  # a new normal is learned in the end


def test_slow_ramp_is_detected():
    rng = random.Random(10)
    base = [rng.gauss(40, 0.3) for _ in range(1000)]
    ramp = [40 + 0.2 * i + rng.gauss(0, 0.3) for i in range(270)]  # a leak: +54 points in 45 min
    out = _feed(RobustSeasonalDetector(), base + ramp)
    first = next(i for i, a in enumerate(out[1000:]) if a.score >= 0.9)
    assert first < 60  # within 10 minutes of the leak's start


def test_cold_start_reports_warming_then_recent_and_only_extreme_scores():
    rng = random.Random(11)
    detector = RobustSeasonalDetector(warmup=30)
    out = _feed(detector, [rng.gauss(10, 1) for _ in range(40)])
    assert [a.state for a in out[:30]] == ["warming"] * 30
    assert out[35].state == "recent"
    assert [a.confidence for a in out[:5]] == [0.0] * 5
    assert 0 < out[20].confidence < 1
    extreme = detector.assess_one(T0 + STEP * 41, 1000.0)
    assert extreme.score > 0.999


def test_daily_seasonality_is_learned_after_a_day():
    """A nightly batch job (a 30-minute burst at 02:00) alerts on day one, not on day three."""
    rng = random.Random(12)
    detector = RobustSeasonalDetector()
    scores_by_day: dict[int, float] = {}
    for i in range(3 * 8640):
        ts = T0 + STEP * i
        daily = 20 * math.sin(2 * math.pi * i / 8640)
        burst = 40 if ts.hour == 2 and ts.minute < 30 else 0
        a = detector.update_one(ts, 100 + daily + burst + rng.gauss(0, 2))
        if ts.hour == 2 and ts.minute < 30 and i > 8640 * 0 + 60:
            day = i // 8640
            scores_by_day[day] = max(scores_by_day.get(day, 0.0), a.score)
        if ts.day == T0.day + 2 and ts.hour == 2:
            assert a.state == "seasonal"
    assert scores_by_day[0] > 0.99
    assert scores_by_day[2] < 0.9


def test_flat_series_does_not_divide_by_zero():
    out = _feed(RobustSeasonalDetector(), [5.0] * 100 + [5.001])
    assert all(0 <= a.score <= 1 for a in out)
