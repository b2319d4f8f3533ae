"""`PotThreshold`: the tail quantile on data with a known tail, streaming, shifts, state."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from scipy import stats

from airis.operators.detectors.pot_threshold import PotThreshold, _fit_gpd


def _learn(pot: PotThreshold, scores: np.ndarray) -> None:
    for s in scores.tolist():
        pot.learn_one(s)


@pytest.mark.parametrize("shape", [-0.2, 0.0, 0.25])
def test_threshold_is_the_known_tail_quantile(shape: float) -> None:
    # Scores with a generalised Pareto tail of known shape: the threshold at risk 1e-3 is its
    # exact 0.999 quantile (a quantile the warm-up alone could not see: 2,000 scores).
    rng = np.random.default_rng(7)
    scores = stats.genpareto.rvs(shape, size=40_000, random_state=rng)
    pot = PotThreshold(risk=1e-3, grace_period=2000)
    _learn(pot, scores)
    exact = stats.genpareto.ppf(1 - 1e-3, shape)
    assert pot.threshold == pytest.approx(exact, rel=0.1)
    assert pot.shape == pytest.approx(shape, abs=0.12)
    fresh = stats.genpareto.rvs(shape, size=200_000, random_state=rng)
    assert 0.5e-3 < np.mean(fresh > pot.threshold) < 2e-3


def test_fit_gpd_recovers_shape_and_scale() -> None:
    rng = np.random.default_rng(1)
    y = stats.genpareto.rvs(0.3, scale=2.0, size=20_000, random_state=rng)
    shape, scale = _fit_gpd(y)
    assert shape == pytest.approx(0.3, abs=0.03) and scale == pytest.approx(2.0, rel=0.05)
    # Few or identical peaks: an exponential tail with their mean.
    assert _fit_gpd(np.array([1.0, 2.0, 3.0])) == (0.0, 2.0)
    assert _fit_gpd(np.full(50, 0.5)) == (0.0, 0.5)
    assert _fit_gpd(np.zeros(5)) == (0.0, 0.0)


def test_warm_up_flags_nothing() -> None:
    pot = PotThreshold(grace_period=100)
    _learn(pot, np.arange(99, dtype=float))
    assert pot.threshold == math.inf and not pot.classify(1e12)
    pot.learn_one(99.0)
    assert math.isfinite(pot.threshold) and pot.classify(1e12)


def test_constant_scores_never_alert() -> None:
    pot = PotThreshold(grace_period=50)
    _learn(pot, np.full(500, 3.0))
    assert pot.threshold == 3.0 and not pot.classify(3.0)


def test_non_finite_scores_are_ignored() -> None:
    a, b = PotThreshold(grace_period=20), PotThreshold(grace_period=20)
    scores = np.random.default_rng(0).exponential(size=300)
    _learn(a, scores)
    _learn(b, np.r_[scores[:100], [math.nan, math.inf], scores[100:]])
    assert a.threshold == b.threshold


def _alert_rate_after_shift(protect: bool) -> float:
    rng = np.random.default_rng(3)
    pot = PotThreshold(risk=1e-2, grace_period=2000, protect=protect)
    _learn(pot, rng.exponential(size=2000))
    shifted = rng.exponential(size=20_000) + 20.0  # a lasting shift: a new normal
    alerts = 0
    for s in shifted.tolist():
        alerts += pot.classify(s)
        pot.learn_one(s)
    return alerts / len(shifted)


def test_a_lasting_shift_does_not_flood_alerts() -> None:
    # Learning flagged scores too, the threshold follows the shift: after a short burst the
    # share of alerts is back near the risk. The original SPOT (protect) alerts forever.
    assert _alert_rate_after_shift(protect=False) < 0.03
    assert _alert_rate_after_shift(protect=True) > 0.99


def test_a_quieter_stream_lowers_the_threshold_down_to_the_level() -> None:
    rng = np.random.default_rng(4)
    pot = PotThreshold(risk=1e-3, grace_period=2000)
    warm_up = rng.exponential(scale=3.0, size=2000)  # a noisier warm-up than what follows
    _learn(pot, warm_up)
    first = pot.threshold
    _learn(pot, rng.exponential(scale=1.0, size=30_000))
    # Ever fewer peaks per score: the extrapolated quantile comes down, but never below the
    # level fixed in warm-up (documented limit).
    level = float(np.quantile(warm_up, 0.98))
    assert level <= pot.threshold < first - 0.5 * (first - level)


def test_pickle_round_trip_continues_identically() -> None:
    rng = np.random.default_rng(5)
    scores = rng.exponential(size=3000)
    pot = PotThreshold(risk=1e-3, grace_period=500)
    _learn(pot, scores[:2000])
    clone = pickle.loads(pickle.dumps(pot))
    assert clone.threshold == pot.threshold
    _learn(pot, scores[2000:])
    _learn(clone, scores[2000:])
    assert clone.threshold == pot.threshold


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"risk": 0.05}, "risk"),
        ({"risk": 0.0}, "risk"),
        ({"level": 1.0}, "level"),
        ({"grace_period": 5}, "grace_period"),
        ({"max_peaks": 3}, "max_peaks"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PotThreshold(**kwargs)
