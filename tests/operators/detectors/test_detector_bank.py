from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from airis.events import MetricPoint
from airis.operators.detectors.detector_bank import (
    DEFAULT_MIN_SCALES,
    DetectorBank,
    metrics_detector,
)
from airis.operators.detectors.ensemble_detector import EnsembleDetector

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def _point(i: int, signal: str, value: float) -> MetricPoint:
    return MetricPoint(ts=T0 + timedelta(seconds=10 * i), service="db", signal=signal, value=value)


def test_each_signal_gets_its_own_detector():
    bank = DetectorBank()
    for i in range(200):
        bank.update_one(_point(i, "cpu", 10.0 + i % 3))
        bank.update_one(_point(i, "memory", 80.0 + i % 2))
    assert bank.signals == ["cpu", "memory"]
    # A memory-sized value is extreme for cpu but ordinary for memory.
    assert bank.update_one(_point(201, "cpu", 80.0)).assessment.score > 0.99
    assert bank.update_one(_point(201, "memory", 80.0)).assessment.score < 0.5


def test_a_stray_error_on_a_quiet_service_is_not_anomalous():
    bank = DetectorBank()
    for i in range(300):
        bank.update_one(_point(i, "error_rate", 0.0))
    assert bank.update_one(_point(301, "error_rate", 0.008)).assessment.score < 0.9
    assert bank.update_one(_point(302, "error_rate", 0.08)).assessment.score > 0.99


def test_min_scales_can_be_overridden():
    bank = DetectorBank(min_scales={})
    for i in range(300):
        bank.update_one(_point(i, "error_rate", 0.0))
    assert bank.update_one(_point(301, "error_rate", 0.008)).assessment.score > 0.99


def test_bank_pickles_mid_stream():
    bank = DetectorBank()
    for i in range(100):
        bank.update_one(_point(i, "cpu", float(i % 5)))
    clone = pickle.loads(pickle.dumps(bank))
    assert clone.update_one(_point(100, "cpu", 3.0)) == bank.update_one(_point(100, "cpu", 3.0))


def test_the_default_detector_is_the_default_ensemble_with_the_signal_floor():
    bank = DetectorBank()
    bank.update_one(_point(0, "error_rate", 0.0))
    bank.update_one(_point(0, "cpu", 1.0))
    detector = bank.detector("error_rate")
    assert isinstance(detector, EnsembleDetector)
    fresh = bank.make_detector(min_scale=detector.min_scale)
    assert pickle.dumps(fresh) == pickle.dumps(EnsembleDetector(min_scale=detector.min_scale))
    assert detector.min_scale == DEFAULT_MIN_SCALES["error_rate"]
    assert bank.detector("cpu").min_scale == EnsembleDetector().min_scale


def test_an_anomaly_carries_its_expectation_and_band():
    bank = DetectorBank()
    for i in range(300):
        bank.update_one(_point(i, "latency_p99", 100.0 + (i % 7) - 3))
    a = bank.update_one(_point(300, "latency_p99", 180.0)).assessment
    assert a.score > 0.9
    assert a.lower < a.expected < a.upper < a.observed
    assert a.component in ("level", "drift")
    assert a.state == "recent"


def test_state_stays_bounded_when_signal_names_keep_changing():
    """Issue 13: one service sending a new signal name every few minutes for a week."""
    bank = DetectorBank(idle_after=timedelta(hours=6))
    sizes = []
    for i in range(2016):  # a week of 5-minute points, each under a new name
        point = MetricPoint(
            ts=T0 + timedelta(minutes=5 * i), service="db", signal=f"s{i}", value=1.0
        )
        assert bank.update_one(point) is not None
        sizes.append(len(bank.signals))
    assert max(sizes) <= 6 * 12 * 1.1 + 1  # six hours of names, plus one sweep's slack
    assert len(pickle.dumps(bank)) < 200_000


def test_a_new_signal_beyond_the_cap_is_refused_and_known_ones_go_on():
    bank = DetectorBank(max_signals=2)
    assert bank.update_one(_point(0, "cpu", 1.0)) is not None
    assert bank.update_one(_point(0, "memory", 1.0)) is not None
    assert bank.update_one(_point(1, "disk", 1.0)) is None
    assert bank.update_one(_point(1, "cpu", 1.0)) is not None
    assert bank.refused == 1 and bank.signals == ["cpu", "memory"]


def test_a_snapshot_from_before_eviction_resumes_and_evicts():
    bank = DetectorBank()
    bank.update_one(_point(0, "cpu", 1.0))
    state = bank.__dict__.copy()
    for name in ("idle_after", "max_signals", "refused", "_last_seen", "_next_sweep"):
        del state[name]
    old = DetectorBank.__new__(DetectorBank)
    old.__setstate__(state)
    later = MetricPoint(ts=T0 + timedelta(days=3), service="db", signal="memory", value=1.0)
    assert old.update_one(later) is not None
    assert old.signals == ["memory"]  # cpu, unseen for 3 days, is gone


_SIGNALS = st.sampled_from(["cpu", "memory", "error_rate", "latency_p99", "disk"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(_SIGNALS, st.integers(0, 400), st.floats(-1e3, 1e3, allow_nan=False)),
        max_size=120,
    ),
    st.integers(1, 120),
    st.integers(1, 5),
    st.booleans(),
)
def test_a_batch_is_assessed_as_its_points_one_by_one(points, size, max_signals, compiled) -> None:
    """The batch path (one kernel call, detectors made once per batch) against `assess`:
    any order, the cap of signals reached or not, cold-start priors on, detectors as
    compiled rows or kept as objects."""
    make = metrics_detector if compiled else (lambda **kw: EnsembleDetector(**kw))
    one_by_one = DetectorBank(make_detector=make, max_signals=max_signals)
    batched = DetectorBank(make_detector=make, max_signals=max_signals)
    rows = [(s, T0 + timedelta(seconds=10 * i), v) for s, i, v in points]
    expected = [one_by_one.assess(*row) for row in rows]
    got = []
    for start in range(0, len(rows), size):
        batch = rows[start : start + size]
        got += batched.assess_many(*zip(*batch, strict=True)) if batch else []
    assert got == expected
    assert batched.refused == one_by_one.refused
    assert batched._last_seen == one_by_one._last_seen
