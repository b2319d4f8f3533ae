"""`ExhaustionPredictor`: early, accurate warnings on ramps; silence on stable series."""

from __future__ import annotations

import gc
import math
import pickle
import random
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from airis.operators.gaussian import MEDIAN_AD_TO_SIGMA
from airis.operators.planning.capacity import ExhaustionPredictor, ExhaustionWarning, _theil_sen

T0 = datetime(2026, 3, 2, tzinfo=UTC)
STEP = 10  # seconds


def _feed(predictor: ExhaustionPredictor, values: list[float], start: int = 0) -> list:
    out = []
    for i, v in enumerate(values, start):
        w = predictor.update_one(T0 + timedelta(seconds=STEP * i), v)
        if w is not None:
            out.append((i, w))
    return out


def _ramp(rng: random.Random, start: float, per_minute: float, minutes: int, noise: float):
    return [start + per_minute * i * STEP / 60 + rng.gauss(0, noise) for i in range(minutes * 6)]


def test_a_linear_ramp_is_warned_before_crossing_with_an_accurate_eta() -> None:
    rng = random.Random(1)
    predictor = ExhaustionPredictor(threshold=90.0)
    flat = [40 + rng.gauss(0, 0.3) for _ in range(360)]
    assert _feed(predictor, flat) == []
    ramp = _ramp(rng, 40, 0.8, 70, 0.3)  # crosses 90 after 62.5 minutes
    warnings = _feed(predictor, ramp, start=360)
    assert warnings, "no warning on a ramp"
    crossing = 360 + 62.5 * 6
    first_i, first = warnings[0]
    assert (crossing - first_i) * STEP >= 15 * 60  # at least 15 minutes ahead
    assert first.threshold == 90.0 and first.value < 90.0
    assert first.eta_low_seconds <= first.eta_seconds <= first.eta_high_seconds
    assert first.confidence >= 0.9
    # The last warning before the crossing has an ETA within 10 % of the truth.
    last_i, last = [(i, w) for i, w in warnings if i < crossing][-1]
    true_eta = (crossing - last_i) * STEP
    assert last.eta_seconds == pytest.approx(true_eta, rel=0.1)
    # One warning per trend (plus re-warnings when the ETA shortens a lot), not one a bucket.
    assert len(warnings) <= 3


def test_flat_noisy_series_never_warns() -> None:
    rng = random.Random(2)
    predictor = ExhaustionPredictor(threshold=90.0)
    # A day of a noisy series near the threshold, with a garbage-collection sawtooth.
    values = [85 + 0.8 * ((i % 90) / 90 - 0.5) + rng.gauss(0, 0.5) for i in range(8640)]
    assert _feed(predictor, values) == []


def test_a_slow_trend_beyond_the_horizon_does_not_warn() -> None:
    rng = random.Random(3)
    predictor = ExhaustionPredictor(threshold=90.0, warn_within_seconds=3600)
    # 1.5 points a day from 50 %: the threshold is weeks away.
    values = [50 + 1.5 * i * STEP / 86400 + rng.gauss(0, 0.05) for i in range(8640)]
    assert _feed(predictor, values) == []


def test_re_warns_after_recovery_but_not_while_the_trend_lasts() -> None:
    rng = random.Random(4)
    predictor = ExhaustionPredictor(threshold=90.0)
    flat = [[50 + rng.gauss(0, 0.3) for _ in range(360)] for _ in range(3)]
    leak = [_ramp(rng, 50, 1.0, 35, 0.3) for _ in range(2)]
    series = flat[0] + leak[0] + flat[1] + leak[1] + flat[2]
    warnings = _feed(predictor, series)
    first_leak = range(360, 360 + len(leak[0]))
    second_start = 360 + len(leak[0]) + 360
    second_leak = range(second_start, second_start + len(leak[1]))
    assert 1 <= sum(i in first_leak for i, _ in warnings) <= 2
    assert 1 <= sum(i in second_leak for i, _ in warnings) <= 2
    assert all(i in first_leak or i in second_leak for i, _ in warnings)


def test_no_early_warning_once_over_the_threshold() -> None:
    predictor = ExhaustionPredictor(threshold=90.0)
    values = [92 + 0.01 * i for i in range(1000)]
    assert _feed(predictor, values) == []


def test_state_is_bounded_and_pickles() -> None:
    rng = random.Random(5)
    predictor = ExhaustionPredictor()
    _feed(predictor, [60 + rng.gauss(0, 0.3) for _ in range(5000)])
    blob = pickle.dumps(predictor)
    assert len(blob) < 4 * 1024, len(blob)
    clone = pickle.loads(blob)
    tail = _ramp(rng, 60, 1.0, 40, 0.3)
    a = _feed(predictor, tail, start=5000)
    b = _feed(clone, tail, start=5000)
    assert a == b and a and isinstance(a[0][1], ExhaustionWarning)


def test_ignores_non_finite_and_out_of_order_points() -> None:
    predictor = ExhaustionPredictor()
    assert predictor.update_one(T0, math.nan) is None
    assert predictor.update_one(T0 + timedelta(seconds=20), 50.0) is None
    assert predictor.update_one(T0, 99.0) is None  # older than the latest point
    assert predictor._sum == 50.0


@pytest.mark.parametrize(
    "kwargs",
    [{"lookback_seconds": 0}, {"min_buckets": 1}, {"min_confidence": 0.3}, {"interval": 1.0}],
)
def test_rejects_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="ExhaustionPredictor"):
        ExhaustionPredictor(**kwargs)


def test_defaults_match_settings() -> None:
    from airis.settings import Settings

    fields = Settings.model_fields
    predictor = ExhaustionPredictor()
    assert fields["capacity_threshold_percent"].default == predictor.threshold
    assert fields["capacity_warn_within_seconds"].default == predictor.warn_within_seconds


class _AlwaysFits(ExhaustionPredictor):
    """The predictor without its no-fit shortcut: every bucket gets its Theil–Sen fit."""

    _screens = False


def _shapes(seed: int):
    """Flat, noisy, leaking, sawtooth and stepping series around a 90 % threshold, 10 s apart,
    with gaps: what the shortcut must not change."""
    rng = random.Random(seed)
    base, noise = rng.uniform(20, 89), rng.choice([0.0, 0.3, 3.0])
    # Per second; around 0.005 the crossing is near the one-hour horizon: borderline fits.
    slope = rng.choice([0.0, 0.0, 1e-3, 0.003, 0.005, 0.008, 0.01, 0.05, -0.01])
    saw = rng.choice([0, 0, 360])
    t = 0.0
    for i in range(3000):
        t += 10 if rng.random() > 0.01 else 600  # now and then a gap
        value = base + slope * (t % 20_000) + rng.gauss(0, noise)
        if saw:
            value -= 15 * ((i % saw) == 0)
        yield T0 + timedelta(seconds=t), value


def test_skipping_fits_that_cannot_warn_changes_nothing() -> None:
    warnings = 0
    for seed in range(60):
        fast, every = ExhaustionPredictor(), _AlwaysFits()
        for ts, value in _shapes(seed):
            warning = fast.update_one(ts, value)
            assert warning == every.update_one(ts, value), seed
            assert fast._quiet_fits == every._quiet_fits, seed
            assert fast._warned_at == every._warned_at or (
                math.isnan(fast._warned_at) and math.isnan(every._warned_at)
            ), seed
            warnings += warning is not None
    assert warnings >= 10  # the shapes do reach the warning branch


def test_no_fit_is_needed_for_a_flat_series_far_from_the_threshold() -> None:
    rng = random.Random(1)
    flat, leak = ExhaustionPredictor(), ExhaustionPredictor()
    for i in range(400):
        ts = T0 + timedelta(seconds=10 * i)
        flat.update_one(ts, 40 + rng.gauss(0, 0.5))
        leak.update_one(ts, 60 + i * 0.05 + rng.gauss(0, 0.5))
    now = (T0 + timedelta(seconds=4000)).timestamp()
    assert flat._surely_quiet(now)
    assert not leak._surely_quiet(now)


def test_a_predictor_pickled_before_the_bucket_arrays_warns_as_it_would_have() -> None:
    # Pickled by the code that kept its buckets as a deque of (mid, mean) pairs, 30 points
    # before its first warning: that fit rests mostly on the buckets from before the pickle.
    fixture = pickle.loads(
        (Path(__file__).parent / "data/predictor-before-arrays.pickle").read_bytes()
    )
    predictor = pickle.loads(fixture["predictor"])
    rng = random.Random(11)
    values = [60 + max(0, i - 900) * 0.02 + rng.gauss(0, 0.3) for i in range(2400)]
    cut, after = fixture["cut"], []
    for i, value in enumerate(values[cut:], cut):
        w = predictor.update_one(
            datetime(2026, 1, 5, tzinfo=UTC) + timedelta(seconds=10 * i), value
        )
        if w is not None:
            after.append((i, w.eta_seconds, w.value, w.confidence))
    assert after == fixture["after"] and after[0][0] - cut == 30


def test_a_full_lookback_of_buckets_takes_little_memory() -> None:
    def held() -> int:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        predictor = ExhaustionPredictor()
        _feed(predictor, [60.0 + (i % 7) for i in range(1000)])  # 30 buckets held
        gc.collect()
        size = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        return size

    held()  # the module's caches (pairs of buckets, ranks) fill on the first
    # A deque of (mid, mean) pairs held about 4.9 KB.
    assert held() < 2_000


def test_a_batch_of_points_warns_as_the_points_one_by_one() -> None:
    """`update_many` over batches of any size, with absent (None), non-finite and old
    points among them, gives the warnings and the state of `update_one` point by point."""
    warnings = 0
    for seed in range(20):
        rng = random.Random(seed)
        spoilt = [None, math.nan, math.inf]
        points = [(ts, rng.choice([v] * 20 + spoilt)) for ts, v in _shapes(seed)]
        points[100:100] = [(points[50][0], 50.0)]  # older than the point before it: ignored
        one_by_one, batched = ExhaustionPredictor(), ExhaustionPredictor()
        expected = {}
        for i, (ts, value) in enumerate(points):
            if value is not None and (warning := one_by_one.update_one(ts, value)):
                expected[i] = warning
        got, i = {}, 0
        while i < len(points):
            batch = points[i : i + rng.choice([1, 2, 7, 90, 400])]
            stamps, values = [ts for ts, _ in batch], [v for _, v in batch]
            warned = batched.update_many([ts.timestamp() for ts in stamps], stamps, values)
            got.update({i + j: w for j, w in warned.items()})
            i += len(batch)
        assert got == expected, seed
        assert pickle.dumps(batched) == pickle.dumps(one_by_one), seed
        warnings += len(expected)
    assert warnings >= 5  # the shapes do warn


def test_the_kept_extremes_are_the_buckets_or_not_known() -> None:
    """`_surely_quiet` reads the buckets' highest and lowest mean as kept while buckets come
    and go: whenever known, they are exactly those of the buckets (a bound too tight would
    skip a fit that warns), over shapes that rise, fall, saw, pause and get restored."""
    for seed in range(30):
        predictor = ExhaustionPredictor()
        shapes = list(_shapes(seed))
        if seed % 3 == 1:  # falling as well: new lows as the old ones age out
            shapes = [(ts, 180 - value) for ts, value in shapes]
        for i, (ts, value) in enumerate(shapes):
            predictor.update_one(ts, value)
            if i % 97 == 0:
                predictor = pickle.loads(pickle.dumps(predictor))
            means = list(predictor._means[: predictor._n])
            if means and not math.isnan(predictor._high):
                assert (predictor._high, predictor._low) == (max(means), min(means)), (seed, i)


def _numpy_theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """`_theil_sen` as numpy calls (2026-12-07, before it was compiled): the reference."""

    def median(a: np.ndarray) -> float:
        k = len(a) // 2
        if len(a) % 2:
            return float(np.partition(a, k)[k])
        part = np.partition(a, (k - 1, k))
        return float(part[k - 1] + part[k]) / 2

    i, j = np.triu_indices(len(x), 1)
    slope = median((y[j] - y[i]) / (x[j] - x[i]))
    level = median(y - slope * x)
    residuals = y - (level + slope * x)
    sigma = MEDIAN_AD_TO_SIGMA * median(np.abs(residuals - median(residuals)))
    sigma = max(sigma, 1e-9 * max(1.0, abs(level)))
    dx = x - x.mean()
    return slope, level, sigma / math.sqrt(float(dx @ dx))


@pytest.mark.parametrize("seed", range(6))
def test_the_compiled_fit_is_the_numpy_fit_float_for_float(seed: int) -> None:
    """Odd and even counts, ties, flat and smooth series (the noise floor), a nan mean."""
    rng = np.random.default_rng(seed)
    for n in range(2, 32):
        x = np.cumsum(rng.uniform(1, 60, n)) - 900.0
        for y in (
            rng.normal(50, 5, n) + 0.01 * x,
            np.round(rng.normal(50, 1, n)),  # ties
            np.full(n, 70.0),  # flat: the floor
            0.02 * x + 40.0,  # smooth
            np.where(np.arange(n) == n // 2, np.nan, rng.normal(50, 5, n)),
        ):
            got, expected = _theil_sen(x, y), _numpy_theil_sen(x, y)
            assert np.array_equal(got, expected, equal_nan=True), (n, got, expected)
