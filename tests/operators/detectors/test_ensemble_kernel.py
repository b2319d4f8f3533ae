"""The compiled `EnsembleDetector` over rows gives the class's assessments, bit for bit."""

from __future__ import annotations

import math
import pickle
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from airis.events import MetricPoint
from airis.operators.detectors import ensemble_kernel as kernel
from airis.operators.detectors.detector_bank import DetectorBank
from airis.operators.detectors.ensemble_detector import EnsembleDetector
from airis.operators.types import Assessment

T0 = datetime(2026, 1, 5, 3, 17, tzinfo=UTC)


def _series(kind: str, step_s: int, n: int = 3000, seed: int = 1) -> list[tuple[datetime, float]]:
    """Shapes that reach every branch: daily season, spikes, a ramp, gaps of NaN, a mostly-zero
    ratio, a flat line."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = step_s * i
        value = 100 + 10 * math.sin(2 * math.pi * t / 86400) + rng.gauss(0, 2)
        if kind == "spikes" and i % 997 == 0:
            value += 80
        elif kind == "ramp" and i > n // 2:
            value += 0.01 * (i - n // 2)
        elif kind == "nan" and i % 50 == 0:
            value = math.nan
        elif kind == "ratio":
            value = 1.0 if rng.random() < 0.01 else 0.0
        elif kind == "flat":
            value = 7.0
        out.append((T0 + timedelta(seconds=t), value))
    return out


def _as_tuple(a: Assessment) -> tuple:
    return (a.score, a.expected, a.lower, a.upper, a.state, a.component, a.confidence)


def _from_row(out: list[float]) -> tuple:
    score, expected, lower, upper, state, component, confidence = out
    return (score, expected, lower, upper, kernel.STATES[int(state)],
            kernel.COMPONENTS[int(component)], confidence)  # fmt: skip


def _same(a: tuple, b: tuple) -> bool:
    return all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True))  # NaN == NaN


@pytest.mark.parametrize("kind", ["season", "spikes", "ramp", "nan", "ratio", "flat"])
@pytest.mark.parametrize("step_s", [10, 300, 3600])
def test_rows_score_exactly_as_the_class(kind: str, step_s: int) -> None:
    min_scale = 0.003 if kind == "ratio" else 1e-9
    points = _series(kind, step_s)
    detector = EnsembleDetector(min_scale=min_scale)
    expected = [_as_tuple(detector.update_one(ts, v)) for ts, v in points]
    state = kernel.new_row(min_scale)[None, :]
    out = kernel.update_rows(
        state,
        np.zeros(len(points), dtype=np.int64),
        np.array([ts.timestamp() for ts, _ in points]),
        np.array([v for _, v in points]),
    ).tolist()
    got = [_from_row(o) for o in out]
    first_difference = next(
        (i for i, (g, e) in enumerate(zip(got, expected, strict=True)) if not _same(g, e)), None
    )
    assert first_difference is None, (first_difference, got[first_difference or 0])
    assert {a[5] for a in expected} >= {"level", "warming"}
    # The state converts back into the very detector that scored the same points.
    assert pickle.dumps(kernel.detector_from_row(state[0])) == pickle.dumps(detector)
    assert np.array_equal(kernel.row_from_detector(detector), state[0])


def test_many_series_interleaved_in_one_call_score_as_each_alone() -> None:
    kinds = ["season", "spikes", "ramp", "ratio"]
    series = [_series(k, 60, n=1500, seed=i) for i, k in enumerate(kinds)]
    alone = []
    for s in series:
        d = EnsembleDetector()
        alone.append([_as_tuple(d.update_one(ts, v)) for ts, v in s])
    order = [(r, i) for i in range(1500) for r in range(len(kinds))]
    state = np.stack([kernel.new_row() for _ in kinds])
    out = kernel.update_rows(
        state,
        np.array([r for r, _ in order], dtype=np.int64),
        np.array([series[r][i][0].timestamp() for r, i in order]),
        np.array([series[r][i][1] for r, i in order]),
    ).tolist()
    for (r, i), o in zip(order, out, strict=True):
        assert _same(_from_row(o), alone[r][i]), (kinds[r], i)


def test_a_detector_mid_warm_up_converts_both_ways() -> None:
    detector = EnsembleDetector(min_scale=0.5)
    for ts, v in _series("season", 10, n=12):
        detector.update_one(ts, v)
    row = kernel.row_from_detector(detector)
    assert row.nbytes == 936
    assert pickle.dumps(kernel.detector_from_row(row)) == pickle.dumps(detector)


def test_only_default_parameters_but_the_floor_fit_a_row() -> None:
    assert kernel.supports(EnsembleDetector(min_scale=0.1))
    assert not kernel.supports(EnsembleDetector(level_rate=0.2))
    with pytest.raises(ValueError, match="default parameters"):
        kernel.row_from_detector(EnsembleDetector(gate=3.0))


def _points(signals: int, n: int, start: int = 0):
    rng = random.Random(5)
    for i in range(start, start + n):
        for k in range(signals):
            value = 50 + rng.gauss(0, 3) + (40 if i == 400 else 0)
            ts = T0 + timedelta(seconds=10 * i)
            yield MetricPoint(ts=ts, service="api", signal=f"s{k}", value=value)


def _ensemble_object(**kwargs: float) -> EnsembleDetector:
    return EnsembleDetector(**kwargs)


def test_a_bank_snapshotted_with_detector_objects_resumes_on_rows_with_the_same_scores() -> None:
    """Snapshots from before the rows hold one `EnsembleDetector` per signal."""
    objects = DetectorBank(make_detector=_ensemble_object)  # the object path
    for p in _points(3, 300):
        objects.update_one(p)
    assert objects._detectors and not objects._rows
    state = pickle.loads(pickle.dumps(objects.__getstate__()))  # a snapshot, not a view
    del state["_rows"], state["_state"], state["_free"]  # the layout before
    state["make_detector"] = DetectorBank().make_detector
    resumed = DetectorBank.__new__(DetectorBank)
    resumed.__setstate__(state)
    assert sorted(resumed._rows) == ["s0", "s1", "s2"] and not resumed._detectors
    later = list(_points(3, 200, start=300))
    scored = [(objects.update_one(p), resumed.update_one(p)) for p in later]
    assert all(a == b for a, b in scored)
    assert max(a.assessment.score for a, _ in scored) > 0.9  # the jump at point 400


def test_a_bank_batch_scores_as_its_points_one_by_one() -> None:
    points = list(_points(4, 600))
    one_by_one = DetectorBank()
    singles = [one_by_one.update_one(p) for p in points]
    batched = DetectorBank()
    many = batched.assess_many(
        [p.signal for p in points], [p.ts for p in points], [p.value for p in points]
    )
    assert [s.assessment for s in singles] == many
    assert max(a.score for a in many) > 0.9  # the jump at point 400 is in there
