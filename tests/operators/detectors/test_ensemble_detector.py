from __future__ import annotations

import gc
import math
import pickle
import random
import statistics
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from airis.operators.base import SeriesDetector
from airis.operators.detectors.ensemble_detector import EnsembleDetector
from airis.operators.detectors.event_onset import EventOnset

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
    # Gaussian noise reaches a tail of 10^-3 (0.87) now and then, but not 5e-4 (0.9).
    assert max(scores) < 0.9
    assert sum(s > 0.7 for s in scores) <= 10


def test_flat_series_scores_low() -> None:
    assert max(a.score for a in _feed(EnsembleDetector(), [7.0] * 3000)) < 0.2


def test_spike_scores_high_against_the_level() -> None:
    detector = EnsembleDetector()
    _feed(detector, _noise(1000, seed=7))
    spike = detector.update_one(T0 + STEP * 1000, 140.0)
    assert spike.score > 0.85
    assert spike.component in ("level", "drift")
    assert spike.direction == "spike"
    assert spike.lower < 100 < spike.upper < spike.observed
    assert spike.state == "recent"


def test_a_spike_does_not_linger() -> None:
    """The smoothed surprise of a spike decays over a few points; the points after it are
    normal, inside the band, and score 0."""
    detector = EnsembleDetector()
    _feed(detector, _noise(1000, seed=13))
    detector.update_one(T0 + STEP * 1000, 200.0)
    after = _feed(detector, [100.0, 100.5, 99.5], start=1001)
    assert [a.score for a in after] == [0.0, 0.0, 0.0]


def _feed_every(detector, values, step):
    return [detector.update_one(T0 + step * i, v) for i, v in enumerate(values)]


def test_level_shift_scores_stay_up_while_it_lasts() -> None:
    """Protection: a fault is not learned as the new normal within minutes."""
    rng = random.Random(8)
    values = _noise(1000, seed=8) + [70 + rng.gauss(0, 2) for _ in range(120)]
    # 10-s points: 20 minutes of the shift.
    scores = [a.score for a in _feed_every(EnsembleDetector(), values, timedelta(seconds=10))]
    assert max(scores[:1000]) < 0.9
    assert min(scores[1005:]) > 0.9


def test_a_shift_that_lasts_is_learned_after_relearn_after() -> None:
    """`relearn_after` is a duration: the same shift, sampled every minute or every 10 s."""
    rng = random.Random(14)
    values = _noise(1000, seed=14) + [70 + rng.gauss(0, 2) for _ in range(1500)]
    for step in (timedelta(seconds=10), timedelta(minutes=1)):
        detector = EnsembleDetector(relearn_after=timedelta(minutes=30))
        out = _feed_every(detector, values, step)
        run = int(timedelta(minutes=30) / step)  # points in the first 30 minutes of the shift
        assert min(a.score for a in out[1005 : 1000 + run - 5]) > 0.9
        assert max(a.score for a in out[-500:]) < 0.9


def test_slow_ramp_is_caught_by_the_drift_component() -> None:
    """A leak the fast level follows: its residuals look normal, not against the slow level."""
    values = _noise(3000, seed=15, sigma=0.3)
    ramp = [v + 0.02 * i for i, v in enumerate(_noise(400, seed=16, sigma=0.3))]
    out = _feed(EnsembleDetector(), [*values, *ramp])
    assert max(a.score for a in out[:3000]) < 0.9
    hit = next(a for a in out[3000:] if a.score >= 0.9)
    assert hit.component == "drift"
    assert hit.expected < hit.lower < hit.upper < hit.observed or hit.observed > hit.upper


def test_nightly_batch_job_is_learned_by_the_hour_of_day_profile() -> None:
    """A 30-minute burst at 02:00 every night (10-s points) alerts on day one only."""
    rng = random.Random(12)
    detector = EnsembleDetector()
    step = timedelta(seconds=10)
    worst: dict[int, float] = {}
    for i in range(3 * 8640):
        ts = T0 + step * i
        daily = 20 * math.sin(2 * math.pi * i / 8640)
        burst = 40 if ts.hour == 2 and ts.minute < 30 else 0
        a = detector.update_one(ts, 100 + daily + burst + rng.gauss(0, 2))
        if burst:
            worst[i // 8640] = max(worst.get(i // 8640, 0.0), a.score)
            if i // 8640 == 2:
                assert a.state == "seasonal"
    assert worst[0] > 0.99
    assert worst[2] < 0.9


def test_min_scale_floors_a_mostly_zero_series() -> None:
    """An error ratio that is almost always 0: one stray error is no anomaly under its floor."""
    rng = random.Random(17)
    values = [0.01 if rng.random() < 0.01 else 0.0 for _ in range(3000)]
    scores = [a.score for a in _feed(EnsembleDetector(min_scale=0.003), values)]
    assert max(scores) < 0.9


def test_state_is_small() -> None:
    detector = EnsembleDetector()
    step = timedelta(seconds=10)
    for i, v in enumerate(_noise(3 * 8640, seed=18)):
        detector.update_one(T0 + step * i, v)
    assert len(pickle.dumps(detector)) <= 1024


def test_event_onset_reports_a_level_shift_once() -> None:
    rng = random.Random(8)
    values = _noise(1000, seed=8) + [70 + rng.gauss(0, 2) for _ in range(200)]
    scores = [a.score for a in _feed(EventOnset(EnsembleDetector()), values)]
    assert max(scores[1000:1005]) > 0.9
    # The refractory period: the rest of the same event is not reported again.
    assert sum(s > 0.5 for s in scores[1005:]) == 0


def _two_spikes(step: timedelta, apart: timedelta) -> tuple[list[float], int, int]:
    values = _noise(3000, seed=21)
    second = len(values) - 50
    first = second - int(apart / step)
    values[first], values[second] = 170.0, 150.0  # the second no stronger than the first
    return values, first, second


def _onsets(detector: EventOnset, step: timedelta, apart: timedelta) -> int:
    values, first, second = _two_spikes(step, apart)
    scores = _feed_every(detector, values, step)
    return sum(scores[i].score > 0.5 for i in (first, second))


@pytest.mark.parametrize("step", [timedelta(minutes=5), timedelta(minutes=15)])
def test_event_onset_refractory_is_a_duration(step: timedelta) -> None:
    """Two spikes 6 h apart: one onset with a 24 h refractory, two with 1 h, whether the
    series is sampled every 5 or every 15 minutes."""
    apart = timedelta(hours=6)
    assert _onsets(EventOnset(refractory=timedelta(hours=24)), step, apart) == 1
    assert _onsets(EventOnset(refractory=timedelta(hours=1)), step, apart) == 2


def test_event_onset_refractory_spans_at_most_max_points() -> None:
    """Every minute, 6 h is 360 points: past the 350-point cap, the second spike is new."""
    step, apart = timedelta(minutes=1), timedelta(hours=6)
    assert _onsets(EventOnset(), step, apart) == 2
    assert _onsets(EventOnset(max_points=1000), step, apart) == 1


def test_event_onset_passes_only_new_maxima_and_keeps_the_evidence() -> None:
    values = _daily(2000, seed=19)
    inner = _feed(EnsembleDetector(), values)
    outer = _feed(EventOnset(EnsembleDetector(), calibrate=False), values)
    for a, b in zip(inner, outer, strict=True):
        assert b.score in (0.0, a.score)
        assert (b.expected, b.lower, b.upper, b.component) == (
            a.expected, a.lower, a.upper, a.component
        )  # fmt: skip


def _recurring_bursts_and_a_rare_step(calibrate: bool) -> tuple[list[float], float]:
    """Scores of 40 equal two-point bursts 30 h apart in one series, and of one modest
    level shift after 40 quiet days in another (both every 5 minutes)."""
    bursts = _noise(288 * 40, seed=30)
    starts = list(range(150, len(bursts) - 10, 30 * 12))
    for i in starts:
        bursts[i] = bursts[i + 1] = 116.0
    burst_scores = [a.score for a in _feed(EventOnset(calibrate=calibrate), bursts)]
    quiet = _noise(288 * 41, seed=31)
    shift = 288 * 40
    quiet[shift:] = [v + 8 for v in quiet[shift:]]
    step_scores = [a.score for a in _feed(EventOnset(calibrate=calibrate), quiet)]
    return [burst_scores[i] for i in starts], max(step_scores[shift : shift + 5])


def test_event_onset_rarity_ranks_a_rare_modest_shift_above_recurring_bursts() -> None:
    """The detector alone finds each burst more surprising than the shift; only how often
    this series has done it before puts the shift first."""
    bursts, step = _recurring_bursts_and_a_rare_step(calibrate=False)
    assert statistics.median(bursts[-10:]) > step
    bursts, step = _recurring_bursts_and_a_rare_step(calibrate=True)
    assert statistics.median(bursts[-10:]) < step
    assert bursts[0] > statistics.median(bursts[-10:])  # the first of them was news


def test_event_onset_assess_one_does_not_learn() -> None:
    detector = EventOnset()
    _feed(detector, _noise(600, seed=20))
    before = pickle.dumps(detector)
    assert detector.assess_one(T0 + STEP * 600, 500.0) == detector.assess_one(
        T0 + STEP * 600, 500.0
    )
    assert pickle.dumps(detector) == before


def test_pickled_state_resumes_identically() -> None:
    values = _daily(3000, seed=10)
    whole = _feed(EnsembleDetector(), values)
    detector = EnsembleDetector()
    _feed(detector, values[:1700])
    resumed = pickle.loads(pickle.dumps(detector))
    assert _feed(resumed, values[1700:], start=1700) == whole[1700:]


def test_memory_per_series_is_small() -> None:
    """What a flow holds per series in memory, not only in its snapshot (past the warm-up)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        detectors = [EnsembleDetector() for _ in range(20)]
        for seed, detector in enumerate(detectors):
            _feed(detector, _daily(3 * 288, seed=seed))
        gc.collect()
        per_series = (tracemalloc.get_traced_memory()[0] - before) / len(detectors)
    finally:
        tracemalloc.stop()
    assert per_series <= 2560  # 4.7 KB with a __dict__ and lists (before 2026-12-05)


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
