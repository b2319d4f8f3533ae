"""KSDrift: calm windows stay calm under Holm's correction, a shifted feature drifts."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from airis.operators.drift.ks_drift import KSDrift, _holm

NAMES = tuple(f"f{i:02d}" for i in range(38))


def _drift(seed: int = 0, **kwargs) -> tuple[KSDrift, np.random.Generator]:
    rng = np.random.default_rng(seed)
    kwargs.setdefault("window", 500)
    return KSDrift(rng.normal(size=(5000, len(NAMES))), NAMES, **kwargs), rng


def test_same_distribution_does_not_drift_though_raw_p_values_would() -> None:
    # Under Holm at 0.01 a drift-free window drifts with probability <= 1 %: over 30
    # windows two or more false drifts have probability < 4 %. Without a correction a
    # window flags some feature with probability 1 - 0.99**38 = 32 % (about 10 of 30).
    drift, rng = _drift(seed=1)
    reports = [drift.update_batch(rng.normal(size=(500, len(NAMES)))) for _ in range(30)]
    assert all(r is not None and r.rows == 500 for r in reports)
    assert sum(bool(r.drifted) for r in reports) <= 1
    assert sum(any(p <= 0.01 for p in r.p_values.values()) for r in reports) >= 4


def test_a_shifted_feature_drifts_and_only_it() -> None:
    drift, rng = _drift(seed=2)
    live = rng.normal(size=(500, len(NAMES)))
    live[:, 7] += 0.3  # 0.3 standard deviations
    report = drift.update_batch(live)
    assert report is not None and drift.drift_detected
    assert report.drifted == ("f07",)
    assert report.adjusted_p_values["f07"] <= 0.01
    assert report.min_p == report.p_values["f07"]
    assert report.statistic["f07"] > max(v for k, v in report.statistic.items() if k != "f07")


def test_a_changed_spread_drifts_too() -> None:
    drift, rng = _drift(seed=3)
    live = rng.normal(size=(500, len(NAMES)))
    live[:, 0] *= 1.6
    assert drift.update_batch(live).drifted == ("f00",)


def test_holm_adjustment_matches_the_hand_computation() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    assert np.allclose(_holm(p)[:4], [0.03, 0.06, 0.06, 0.02])
    assert math.isnan(_holm(p)[4])
    assert np.allclose(_holm(np.array([0.3, 0.2])), [0.4, 0.4])
    assert np.array_equal(_holm(np.array([0.9, 0.8])), [1.0, 1.0])


def test_windows_fill_across_batches_and_a_big_batch_tests_every_window() -> None:
    drift, rng = _drift(seed=4, window=100)
    assert drift.update_batch(rng.normal(size=(60, len(NAMES)))) is None
    assert drift.pending_rows == 60
    assert drift.update_batch(rng.normal(size=len(NAMES))) is None  # one row, 1-D
    report = drift.update_batch(rng.normal(size=(39, len(NAMES))))
    assert report is not None and report.rows == 100 and drift.pending_rows == 0
    # 250 rows: two windows tested, 50 left; the second window drifts.
    batch = rng.normal(size=(250, len(NAMES)))
    batch[100:200, 5] += 2.0
    report = drift.update_batch(batch)
    assert report.drifted == ("f05",) and drift.drift_detected
    assert drift.pending_rows == 50
    # drift_detected is about the last call only.
    assert drift.update_batch(rng.normal(size=(10, len(NAMES)))) is None
    assert not drift.drift_detected


def test_a_drift_in_an_earlier_window_of_one_batch_still_sets_drift_detected() -> None:
    drift, rng = _drift(seed=5, window=100)
    batch = rng.normal(size=(200, len(NAMES)))
    batch[:100, 2] += 2.0
    last = drift.update_batch(batch)
    assert last.drifted == () and drift.drift_detected


def test_flush_tests_a_long_enough_partial_window() -> None:
    drift, rng = _drift(seed=6, window=500, min_rows=50)
    drift.update_batch(rng.normal(size=(49, len(NAMES))))
    assert drift.flush() is None and drift.pending_rows == 0
    live = rng.normal(size=(120, len(NAMES)))
    live[:, 9] += 1.0
    drift.update_batch(live)
    report = drift.flush()
    assert report.rows == 120 and report.drifted == ("f09",)


def test_non_finite_values_are_left_out_of_their_feature() -> None:
    drift, rng = _drift(seed=7, window=200)
    live = rng.normal(size=(200, len(NAMES)))
    live[:, 3] = np.nan
    live[:50, 4] = np.inf
    before = live.copy()
    report = drift.update_batch(live)
    assert np.array_equal(live, before, equal_nan=True)  # input not mutated
    assert math.isnan(report.p_values["f03"]) and math.isnan(report.adjusted_p_values["f03"])
    assert "f03" not in report.drifted
    assert 0 < report.p_values["f04"] <= 1 and "f04" not in report.drifted


def test_pickle_round_trip_mid_window_gives_the_same_reports() -> None:
    drift, rng = _drift(seed=8, window=300)
    drift.update_batch(rng.normal(size=(150, len(NAMES))))
    copy = pickle.loads(pickle.dumps(drift))
    rest = rng.normal(size=(150, len(NAMES)))
    rest[:, 1] += 0.8
    assert copy.update_batch(rest) == drift.update_batch(rest)
    assert copy.drift_detected and drift.drift_detected


@pytest.mark.parametrize(
    ("reference", "names", "kwargs", "match"),
    [
        (np.zeros((100, 3)), ["a", "b"], {}, "shape"),
        (np.zeros((100, 2)), ["a", "a"], {}, "unique"),
        (np.zeros((10, 2)), ["a", "b"], {}, "min_rows"),
        (np.zeros((100, 2)), ["a", "b"], {"window": 10}, "min_rows"),
        (np.zeros((100, 2)), ["a", "b"], {"p_threshold": 1.0}, "p_threshold"),
    ],
)
def test_invalid_arguments_are_refused(reference, names, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        KSDrift(reference, names, **kwargs)


def test_rows_of_the_wrong_width_are_refused() -> None:
    drift, _ = _drift()
    with pytest.raises(ValueError, match="38 columns"):
        drift.update_batch(np.zeros((5, 37)))


def test_defaults_match_settings() -> None:
    from airis.settings import Settings

    fields = Settings.model_fields
    drift = KSDrift(np.zeros((100, 2)), ["a", "b"])
    assert drift.window == fields["drift_window_rows"].default == 2000
    assert drift.p_threshold == fields["drift_p_threshold"].default == 0.01
