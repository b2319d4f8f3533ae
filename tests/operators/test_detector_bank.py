from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

from airis.events import MetricPoint
from airis.operators.detector_bank import DEFAULT_MIN_SCALES, DetectorBank
from airis.operators.ensemble_detector import EnsembleDetector

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
    detector = bank._detectors["error_rate"]
    assert isinstance(detector, EnsembleDetector)
    fresh = bank.make_detector(min_scale=detector.min_scale)
    assert pickle.dumps(fresh) == pickle.dumps(EnsembleDetector(min_scale=detector.min_scale))
    assert detector.min_scale == DEFAULT_MIN_SCALES["error_rate"]
    assert bank._detectors["cpu"].min_scale == EnsembleDetector().min_scale


def test_an_anomaly_carries_its_expectation_and_band():
    bank = DetectorBank()
    for i in range(300):
        bank.update_one(_point(i, "latency_p99", 100.0 + (i % 7) - 3))
    a = bank.update_one(_point(300, "latency_p99", 180.0)).assessment
    assert a.score > 0.9
    assert a.lower < a.expected < a.upper < a.observed
    assert a.component in ("level", "drift")
    assert a.state == "recent"
