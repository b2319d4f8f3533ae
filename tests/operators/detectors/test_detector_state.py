"""Detector state as a flow snapshots it: small per series, and a restored copy goes on the same."""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime, timedelta

import pytest

from airis.events import MetricPoint
from airis.operators.detectors.detector_bank import DetectorBank
from airis.operators.detectors.ensemble_detector import EnsembleDetector

START = datetime(2026, 11, 1, tzinfo=UTC)


def _points(hours: int, signals: int = 8):
    rng = random.Random(3)
    for step in range(hours * 6):
        ts = START + timedelta(minutes=10 * step)
        for k in range(signals):
            yield MetricPoint(ts=ts, service="svc", signal=f"s{k}", value=50 + rng.gauss(0, 3))


def test_a_bank_pickles_under_one_kib_per_series_with_every_hour_bin_learned() -> None:
    bank = DetectorBank()
    for point in _points(hours=72):
        bank.update_one(point)
    assert len(pickle.dumps(bank)) / 8 <= 1024


@pytest.mark.parametrize("relearn_after", [timedelta(hours=1), timedelta(minutes=5)])
def test_a_restored_ensemble_detector_scores_exactly_as_the_original(
    relearn_after: timedelta,
) -> None:
    original = EnsembleDetector(relearn_after=relearn_after, level_rate=0.2)
    points = list(_points(hours=60, signals=1))
    for p in points[:200]:
        original.update_one(p.ts, p.value)
    clone = pickle.loads(pickle.dumps(original))
    assert clone.level_rate == 0.2
    assert clone.relearn_after == relearn_after
    for p in points[200:]:
        assert clone.update_one(p.ts, p.value) == original.update_one(p.ts, p.value)
