from __future__ import annotations

import math
import pickle
import random
from datetime import UTC, datetime, timedelta

from airis.operators.base import SeriesDetector
from airis.operators.ensemble_detector import EnsembleDetector

T0 = datetime(2026, 1, 5, tzinfo=UTC)
STEP = timedelta(minutes=5)


def _feed(detector, values, start=0):
    return [detector.update_one(T0 + STEP * (start + i), v) for i, v in enumerate(values)]


def _noise(n: int, seed: int, sigma: float = 2.0) -> list[float]:
    rng = random.Random(seed)
    return [100 + rng.gauss(0, sigma) for _ in range(n)]


def _daily(n: int, seed: int) -> list[float]:
    """A daily sine (288 five-minute points a day) with a little noise."""
    rng = random.Random(seed)
    return [50 + 20 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 0.5) for i in range(n)]


def test_is_a_series_detector() -> None:
    assert isinstance(EnsembleDetector(), SeriesDetector)


def test_scores_are_online_future_points_change_nothing() -> None:
    past = _noise(1500, seed=1)
    a = [x.score for x in _feed(EnsembleDetector(), [*past, *_noise(300, seed=2)])]
    b = [x.score for x in _feed(EnsembleDetector(), [*past, *[v * 3 for v in _noise(300, 3)]])]
    assert a[:1500] == b[:1500]


def test_assess_one_does_not_learn() -> None:
    detector = EnsembleDetector()
    _feed(detector, _noise(600, seed=4))
    before = pickle.dumps(detector)
    ts = T0 + STEP * 600
    first = detector.assess_one(ts, 500.0)
    assert detector.assess_one(ts, 500.0) == first
    assert pickle.dumps(detector) == before


def test_deterministic() -> None:
    values = _daily(2000, seed=5)
    assert _feed(EnsembleDetector(), values) == _feed(EnsembleDetector(), values)


def test_stationary_noise_scores_low() -> None:
    scores = [a.score for a in _feed(EnsembleDetector(), _noise(5000, seed=6))]
    # Gaussian noise reaches a tail of 10^-3 now and then (0.87), but not 10^-5 (0.97).
    assert max(scores) < 0.95
    assert sum(s > 0.85 for s in scores) <= 10


def test_flat_series_scores_low() -> None:
    assert max(a.score for a in _feed(EnsembleDetector(), [7.0] * 3000)) < 0.2


def test_spike_scores_high_against_the_level() -> None:
    detector = EnsembleDetector()
    _feed(detector, _noise(1000, seed=7))
    spike = detector.update_one(T0 + STEP * 1000, 140.0)
    assert spike.score > 0.9
    assert spike.component == "level"
    assert spike.direction == "spike"
    assert spike.lower < 100 < spike.upper
    assert spike.state == "recent"


def test_level_shift_fires_once_at_its_start() -> None:
    rng = random.Random(8)
    values = _noise(1000, seed=8) + [70 + rng.gauss(0, 2) for _ in range(200)]
    scores = [a.score for a in _feed(EnsembleDetector(), values)]
    assert max(scores[1000:1003]) > 0.9
    # The refractory period: the rest of the same event is not reported again.
    assert sum(s > 0.5 for s in scores[1003:]) == 0


def test_broken_daily_shape_is_caught_by_the_seasonal_component() -> None:
    values = _daily(288 * 8, seed=9)
    # From the crest of a day on, the series drops to its mean instead of following the sine.
    day = 288 * 7 + 72
    broken = [*values[:day], *(50.0 for _ in range(100)), *values[day + 100 :]]
    out = _feed(EnsembleDetector(), broken)
    normal = max(a.score for a in out[288 * 4 : day])  # once three periods are known
    hit = max(out[day : day + 100], key=lambda a: a.score)
    assert hit.score > max(normal, 0.6)
    assert hit.component == "seasonal"
    assert hit.state == "seasonal"


def test_pickled_state_resumes_identically() -> None:
    values = _daily(3000, seed=10)
    whole = _feed(EnsembleDetector(), values)
    detector = EnsembleDetector()
    _feed(detector, values[:1700])
    resumed = pickle.loads(pickle.dumps(detector))
    assert _feed(resumed, values[1700:], start=1700) == whole[1700:]


def test_non_finite_values_are_neither_scored_nor_learned() -> None:
    values = _noise(800, seed=11)
    clean = _feed(EnsembleDetector(), values)
    detector = EnsembleDetector()
    gappy = []
    for i, v in enumerate(values):
        if i in (100, 500):
            for bad in (math.nan, math.inf, -math.inf):
                a = detector.update_one(T0 + STEP * i, bad)
                assert a.score == 0.0
                assert a.component == "invalid"
        gappy.append(detector.update_one(T0 + STEP * i, v))
    assert gappy == clean


def test_scores_stay_in_unit_interval() -> None:
    rng = random.Random(12)
    values = [rng.choice([0.0, 1e6, -1e6, rng.gauss(0, 1)]) for _ in range(3000)]
    assert all(0.0 <= a.score <= 1.0 for a in _feed(EnsembleDetector(), values))
