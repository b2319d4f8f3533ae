"""`IntervalForecaster`: accurate on structure it can learn, calibrated intervals, small state."""

from __future__ import annotations

import math
import pickle
import random

import pytest

from airis.operators.planning.forecaster import Forecast, IntervalForecaster


def _seasonal(n: int, seed: int = 7, season: int = 48, noise: float = 1.0) -> list[float]:
    rng = random.Random(seed)
    return [50 + 20 * math.sin(2 * math.pi * t / season) + rng.gauss(0, noise) for t in range(n)]


def _run(model: IntervalForecaster, ys: list[float], start: int) -> dict[int, list]:
    """Per step h: (actual, mean, lower, upper) of every forecast made from ``start`` on."""
    made: list[Forecast] = []
    out: dict[int, list] = {h: [] for h in range(1, model.horizon + 1)}
    for t, y in enumerate(ys):
        for h in range(1, model.horizon + 1):
            if t - h >= start and t - h < len(made):
                f = made[t - h]
                out[h].append((y, f.mean[h - 1], f.lower[h - 1], f.upper[h - 1]))
        model.learn_one(y)
        made.append(model.forecast())
    return out


def test_interval_coverage_is_near_nominal_on_a_seeded_series() -> None:
    ys = _seasonal(48 * 40)
    scored = _run(IntervalForecaster(horizon=6, season=48, coverage=0.9), ys, start=48 * 10)
    for h in (1, 6):
        coverage = sum(lo <= y <= hi for y, _, lo, hi in scored[h]) / len(scored[h])
        assert 0.85 <= coverage <= 0.95, (h, coverage)


def test_beats_seasonal_naive_and_learns_the_season() -> None:
    ys = _seasonal(48 * 30, noise=2.0)
    scored = _run(IntervalForecaster(horizon=4, season=48), ys, start=48 * 10)
    ours = sum(abs(y - m) for y, m, _, _ in scored[4]) / len(scored[4])
    first = 48 * 10 + 4
    naive = sum(abs(ys[t] - ys[t - 48]) for t in range(first, len(ys))) / (len(ys) - first)
    # Seasonal-naive carries two noise draws; a learned profile carries about one.
    assert ours < 0.85 * naive
    assert ours < 2.5  # the noise sd is 2: mean |error| of a perfect forecast ≈ 1.6


def test_follows_a_level_shift_quickly_without_a_season() -> None:
    model = IntervalForecaster(horizon=3, season=None)
    for _ in range(200):
        model.learn_one(10.0)
    for _ in range(5):
        model.learn_one(30.0)
    assert model.forecast().mean[0] == pytest.approx(30.0, abs=1.0)


def test_intervals_contain_the_mean_and_widen_with_the_step() -> None:
    rng = random.Random(3)
    model = IntervalForecaster(horizon=12, season=None)
    level = 0.0
    for _ in range(3000):  # a random walk: uncertainty grows with the step
        level += rng.gauss(0, 1)
        model.learn_one(level)
    f = model.forecast()
    assert f.ready
    assert all(lo <= m <= hi for lo, m, hi in zip(f.lower, f.mean, f.upper, strict=True))
    widths = [hi - lo for lo, hi in zip(f.lower, f.upper, strict=True)]
    assert widths[-1] > 2 * widths[0]


def test_warm_up_is_flagged_and_non_finite_values_are_ignored() -> None:
    model = IntervalForecaster(horizon=2, season=None, warmup=20)
    assert model.forecast() == Forecast((0.0, 0.0), (0.0, 0.0), (0.0, 0.0), 0.9, False)
    for _ in range(10):
        model.learn_one(5.0)
    model.learn_one(math.nan)
    model.learn_one(math.inf)
    f = model.forecast()
    assert not f.ready and f.mean[0] == pytest.approx(5.0)
    assert model.count == 10


def test_state_pickles_small_and_round_trips() -> None:
    model = IntervalForecaster(horizon=12, season=288)
    ys = _seasonal(2000, season=288)
    for y in ys[:1500]:
        model.learn_one(y)
    blob = pickle.dumps(model)
    assert len(blob) < 6 * 1024, len(blob)
    clone = pickle.loads(blob)
    for y in ys[1500:]:
        model.learn_one(y)
        clone.learn_one(y)
    assert clone.forecast() == model.forecast()


@pytest.mark.parametrize("kwargs", [{"horizon": 0}, {"season": 1}, {"coverage": 1.0}, {"bins": 0}])
def test_rejects_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="IntervalForecaster"):
        IntervalForecaster(**kwargs)
