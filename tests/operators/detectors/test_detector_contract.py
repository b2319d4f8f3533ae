"""The contract every per-series detector keeps (River's `check_estimator`, for our protocol),
over every detector `airis.operators.detectors` exports."""

from __future__ import annotations

import inspect
import pickle
import random
from datetime import UTC, datetime, timedelta

import pytest

from airis.operators import detectors
from airis.operators.base import SeriesDetector

#: Every detector the family exports: a new one is held to this contract by being exported.
DETECTORS = [
    cls
    for cls in (getattr(detectors, name) for name in detectors.__all__)
    if isinstance(cls, type) and issubclass(cls, SeriesDetector) and not inspect.isabstract(cls)
]
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def _series(seed: int, n: int = 600) -> list[tuple[datetime, float]]:
    rng = random.Random(seed)
    return [(T0 + timedelta(seconds=10 * i), 50 + rng.gauss(0, 3)) for i in range(n)]


@pytest.fixture(params=DETECTORS, ids=lambda c: c.__name__)
def detector_cls(request) -> type[SeriesDetector]:
    return request.param


def test_scores_are_in_unit_interval(detector_cls):
    detector = detector_cls()
    values = [
        *_series(1),
        (T0 + timedelta(days=1), 1e12),
        (T0 + timedelta(days=1, seconds=10), -1e12),
    ]
    for ts, value in values:
        a = detector.update_one(ts, value)
        assert 0.0 <= a.score <= 1.0
        assert a.lower <= a.expected <= a.upper


def test_first_point_is_warming_and_scores_zero(detector_cls):
    a = detector_cls().update_one(T0, 42.0)
    assert a.state == "warming"
    assert a.score == 0.0
    assert a.confidence == 0.0


def test_pickle_round_trip_continues_identically(detector_cls):
    series = _series(2)
    original = detector_cls()
    for ts, v in series[:300]:
        original.update_one(ts, v)
    restored = pickle.loads(pickle.dumps(original))
    for ts, v in series[300:]:
        assert original.update_one(ts, v) == restored.update_one(ts, v)


def test_deterministic(detector_cls):
    a, b = detector_cls(), detector_cls()
    for ts, v in _series(3):
        assert a.update_one(ts, v) == b.update_one(ts, v)


def test_assess_does_not_learn(detector_cls):
    detector = detector_cls()
    for ts, v in _series(4, 100):
        detector.update_one(ts, v)
    before = pickle.dumps(detector)
    detector.assess_one(T0 + timedelta(days=1), 1e6)
    assert pickle.dumps(detector) == before


def test_defaults_are_immutable_literals(detector_cls):
    for param in inspect.signature(detector_cls).parameters.values():
        assert isinstance(param.default, (int, float, bool, str, timedelta, type(None)))


def test_hyper_parameters_are_same_named_attributes(detector_cls):
    detector = detector_cls()
    for name, param in inspect.signature(detector_cls).parameters.items():
        if param.default is None:  # a default built at construction (a wrapper's inner one)
            assert hasattr(detector, name), name
        else:
            assert getattr(detector, name) == param.default, name


def test_has_docstring_with_example(detector_cls):
    assert detector_cls.__doc__ and "Examples" in detector_cls.__doc__


def test_the_family_exports_its_detectors():
    assert {cls.__name__ for cls in DETECTORS} >= {"EnsembleDetector", "EventOnset"}
