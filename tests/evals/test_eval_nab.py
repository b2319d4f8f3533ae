"""`airis eval nab`: the NAB scorer against the official scores, its pieces, and the CLI."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from airis.cli import main
from airis.evals.nab import PUBLISHED, holdout_scores, load_corpus, score_detector
from airis.evals.nab_scorer import (
    PROFILES,
    CostProfile,
    ScoredFile,
    holdout_score,
    layout_file,
    nab_score,
    probation_length,
    raw_score,
    scaled_sigmoid,
    sweep,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nab"
REFERENCE = DATA / "reference_results"
STANDARD = PROFILES["standard"]
ORDER = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
#: Official NAB scores on this 24-file subset (../shared/data/README.md, section "nab/").
OFFICIAL = {"numenta": (64.85, 59.12, 69.85), "windowedGaussian": (28.16, 22.38, 31.59)}

# 200 one-minute rows: the first 30 are probationary; windows at rows 60-79 and 140-159.
TS = np.datetime64("2021-03-01T00:00") + np.arange(200).astype("timedelta64[m]")
WINDOWS = [(TS[60], TS[79]), (TS[140], TS[159])]


def _fire(*rows: int) -> np.ndarray:
    fired = np.zeros(len(TS), dtype=bool)
    fired[list(rows)] = True
    return fired


def _raw(*rows: int, profile: CostProfile = STANDARD) -> float:
    return raw_score(layout_file(TS, WINDOWS), _fire(*rows), profile)


# --- the official scores --------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus():
    assert (DATA / "labels" / "combined_windows.json").exists(), f"NAB data missing at {DATA}"
    return load_corpus(DATA)


@pytest.mark.parametrize("detector", ["numenta", "windowedGaussian"])
def test_reference_results_reproduce_the_official_nab_scores(corpus, detector: str) -> None:
    scores = score_detector(corpus, REFERENCE, detector)
    ours = tuple(round(scores[p].score, 2) for p in ORDER)
    assert PUBLISHED[detector] == OFFICIAL[detector]  # the table printed beside our scores
    for profile, published in zip(ORDER, OFFICIAL[detector], strict=True):
        assert scores[profile].score == pytest.approx(published, abs=0.1), (detector, ours)
        assert scores[profile].windows == 39 and scores[profile].null == -39 * PROFILES[profile].fn


# --- the pieces -----------------------------------------------------------------------------


def test_scaled_sigmoid_rewards_early_and_penalises_late() -> None:
    assert float(scaled_sigmoid(-1.0)) == pytest.approx(2 / (1 + np.exp(-5)) - 1)
    assert float(scaled_sigmoid(-1.0)) == pytest.approx(0.98661, abs=1e-5)
    assert float(scaled_sigmoid(-0.5)) == pytest.approx(0.84828, abs=1e-5)
    assert float(scaled_sigmoid(0.0)) == 0.0
    assert float(scaled_sigmoid(1.0)) == pytest.approx(-0.98661, abs=1e-5)
    assert float(scaled_sigmoid(3.01)) == -1.0
    positions = np.linspace(-3, 3, 61)
    assert np.all(np.diff(scaled_sigmoid(positions)) < 0)


def test_probationary_period_is_fifteen_percent_capped_at_750_rows() -> None:
    assert probation_length(200) == 30
    assert probation_length(1624) == 243
    assert probation_length(5000) == 750
    assert probation_length(22695) == 750
    assert _raw(10, 20) == -2.0  # detections in the probationary period are ignored


def test_a_detection_at_the_window_start_scores_the_full_tp_weight() -> None:
    assert _raw(60, 140) == pytest.approx(2.0)
    # Later in the window is worth less; the earliest detection alone counts.
    assert _raw(60, 70, 79, 140) == pytest.approx(2.0)
    assert _raw(70, 140) < 2.0
    assert _raw(79, 140) == pytest.approx(1.0 + float(scaled_sigmoid(-1 / 20)) / 0.98661, abs=1e-4)
    heavy = CostProfile("heavy", tp=3.0, fp=0.11, fn=1.0)
    assert _raw(60, 140, profile=heavy) == pytest.approx(6.0)


def test_a_missed_window_costs_the_fn_weight_once() -> None:
    assert _raw() == -2.0
    assert _raw(60) == pytest.approx(0.0)
    assert _raw(60, profile=PROFILES["reward_low_FN_rate"]) == pytest.approx(-1.0)


def test_false_positives_cost_by_distance_from_the_preceding_window() -> None:
    hit = _raw(60, 140)
    assert hit - _raw(40, 60, 140) == pytest.approx(STANDARD.fp)  # before any window: full cost
    # Just after a window an FP is almost free; three widths after it costs the full weight.
    assert hit - _raw(60, 80, 140) == pytest.approx(-STANDARD.fp * scaled_sigmoid(1 / 19))
    assert hit - _raw(60, 80, 140) < 0.15 * STANDARD.fp
    assert hit - _raw(60, 139, 140) == pytest.approx(STANDARD.fp, rel=1e-2)
    assert hit - _raw(60, 140, 199) == pytest.approx(STANDARD.fp, rel=1e-2)
    low_fp = PROFILES["reward_low_FP_rate"]
    assert _raw(60, 140, profile=low_fp) - _raw(40, 60, 140, profile=low_fp) == pytest.approx(0.22)


def test_null_detector_normalises_to_0_and_perfect_one_to_100() -> None:
    perfect = np.zeros(len(TS))
    perfect[[60, 140]] = 1.0
    for profile in PROFILES.values():
        null = nab_score([ScoredFile("f.csv", TS, np.zeros(len(TS)), WINDOWS)], profile)
        best = nab_score([ScoredFile("f.csv", TS, perfect, WINDOWS)], profile)
        assert null.score == 0.0 and null.threshold == np.inf and null.windows_hit == 0
        assert best.score == pytest.approx(100.0) and best.threshold == 1.0
        assert (best.tp, best.fp, best.windows_hit, best.windows) == (2, 0, 2, 2)
        assert best.null == -2 * profile.fn and best.perfect == 2 * profile.tp


def test_threshold_is_optimised_over_the_corpus_not_per_file() -> None:
    # Alone, a is perfect at 0.5 and b at 0.9; but b also fires at 0.5 on 70 normal rows, so
    # the one threshold shared by the corpus is 0.9, which misses a's windows.
    a, b = np.zeros(len(TS)), np.zeros(len(TS))
    a[[60, 140]] = 0.5
    b[30:60], b[100:140], b[[60, 140]] = 0.5, 0.5, 0.9
    files = [ScoredFile("a", TS, a, WINDOWS), ScoredFile("b", TS, b, WINDOWS)]
    assert nab_score(files[:1], STANDARD).score == pytest.approx(100.0)
    assert nab_score(files[1:], STANDARD).score == pytest.approx(100.0)
    both = nab_score(files, STANDARD)
    assert both.threshold == 0.9 and both.windows_hit == 2 and both.fp == 0
    assert both.score == pytest.approx(50.0)


def test_sweep_matches_direct_scoring_at_every_threshold() -> None:
    rng = np.random.default_rng(3)
    files = []
    for k in range(3):
        scores = rng.choice([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1.0], size=len(TS))
        files.append(ScoredFile(f"f{k}", TS, scores, WINDOWS[: k + 1]))
    layouts = [layout_file(f.timestamps, f.windows) for f in files]
    keep = [lay.scored for lay in layouts]
    window = np.concatenate(
        [
            np.where(lay.window >= 0, lay.window + 10 * k, -1)[m]
            for k, (lay, m) in enumerate(zip(layouts, keep, strict=True))
        ]
    )
    scores = np.concatenate([f.scores[m] for f, m in zip(files, keep, strict=True)])
    unit = np.concatenate([lay.unit[m] for lay, m in zip(layouts, keep, strict=True)])
    for profile in PROFILES.values():
        result = sweep(scores, window, unit, 5, profile)
        assert result.thresholds[0] == np.inf and np.all(np.diff(result.thresholds) < 0)
        for t, raw in zip(result.thresholds, result.raw, strict=True):
            direct = sum(
                raw_score(lay, f.scores >= t, profile)
                for lay, f in zip(layouts, files, strict=True)
            )
            assert raw == pytest.approx(direct, abs=1e-9)


def test_window_limits_must_be_row_timestamps() -> None:
    with pytest.raises(ValueError, match="not a row timestamp"):
        layout_file(TS, [(TS[60] + np.timedelta64(30, "s"), TS[79])], "odd.csv")


# --- the CLI --------------------------------------------------------------------------------


def test_eval_nab_scores_a_results_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "nab.json"
    assert (
        main(["eval", "nab", "--data", str(DATA), "--results", str(REFERENCE), "--json", str(out)])
        == 0
    )
    result = json.loads(out.read_text())
    assert set(result["detectors"]) == {"numenta", "windowedGaussian"}
    numenta = result["detectors"]["numenta"]
    assert [round(numenta[p]["score"], 2) for p in ORDER] == list(PUBLISHED["numenta"])
    assert all(0 < numenta[p]["threshold"] < 1 for p in ORDER)
    assert result["detect_seconds"] is None and result["files"] == 24
    printed = capsys.readouterr().out
    assert "64.85" in printed and "ARTime" in printed


def _tiny_corpus(root: Path) -> None:
    """A two-file NAB-layout corpus: one file with a level shift in its window, one without."""
    rng = np.random.default_rng(0)
    stamps = [str(t).replace("T", " ") for t in TS.astype("datetime64[s]")]
    shifted = 10 + rng.normal(0, 0.1, len(TS))
    shifted[60:] += 5.0
    for category, name, values in (
        ("synthetic", "shift.csv", shifted),
        ("quiet", "flat.csv", 10 + rng.normal(0, 0.1, len(TS))),
    ):
        (root / "data" / category).mkdir(parents=True)
        with (root / "data" / category / name).open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["timestamp", "value"])
            writer.writerows(zip(stamps, (f"{v:.4f}" for v in values), strict=True))
    (root / "labels").mkdir()
    labels = {
        "synthetic/shift.csv": [[f"{stamps[60]}.000000", f"{stamps[79]}.000000"]],
        "quiet/flat.csv": [],
    }
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    shutil.copy(DATA / "profiles.json", root / "profiles.json")


def test_eval_nab_runs_our_detector_into_nab_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _tiny_corpus(tmp_path / "nab")
    out = tmp_path / "airis.json"
    results = tmp_path / "results"
    argv = [
        "eval",
        "nab",
        "--data",
        str(tmp_path / "nab"),
        "--out",
        str(results),
        "--json",
        str(out),
    ]
    assert main(argv) == 0
    scored = results / "airis" / "synthetic" / "airis_shift.csv"
    with scored.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "label"]
    assert len(rows) == len(TS) and sum(int(r["label"]) for r in rows) == 20
    assert (results / "airis" / "quiet" / "airis_flat.csv").exists()
    result = json.loads(out.read_text())
    assert set(result["detectors"]) == {"airis"} and result["detect_seconds"] >= 0
    assert set(result["detectors"]["airis"]) == set(ORDER)
    err = capsys.readouterr().err
    assert "[1/2]" in err and "[2/2]" in err


def test_holdout_scores_each_category_at_a_threshold_set_on_the_others() -> None:
    # Each category alone is perfect at its own threshold, but a's category fixes 0.9, which
    # misses b's windows, and b's fixes 0.5, which also catches a's 0.5 false alarms.
    a, b = np.zeros(len(TS)), np.zeros(len(TS))
    a[[60, 140]], a[100:140] = 0.9, 0.5
    b[[60, 140]] = 0.5
    files = [ScoredFile("A/a.csv", TS, a, WINDOWS), ScoredFile("B/b.csv", TS, b, WINDOWS)]
    held = holdout_score(files, STANDARD)
    assert held.categories["A"].threshold == 0.5 and held.categories["B"].threshold == 0.9
    assert held.categories["B"].score == 0.0 and held.categories["B"].windows_hit == 0
    a_at_half = nab_score(files[:1], STANDARD, 0.5)
    assert a_at_half.windows_hit == 2 and a_at_half.fp == 40
    assert held.categories["A"].score == pytest.approx(a_at_half.score) and a_at_half.score < 100
    expected = 100 * (a_at_half.raw - 2 + 4) / (4 + 4)  # summed raw, null -4, perfect 4
    assert held.score == pytest.approx(expected)
    assert nab_score(files, STANDARD).score > held.score


def test_holdout_needs_two_categories() -> None:
    with pytest.raises(ValueError, match="two categories"):
        holdout_score([ScoredFile("A/a.csv", TS, np.zeros(len(TS)), WINDOWS)], STANDARD)


def test_holdout_of_the_reference_detectors_is_below_their_in_sample_score(corpus) -> None:
    for detector in OFFICIAL:
        files_score = score_detector(corpus, REFERENCE, detector)["standard"].score
        held = holdout_scores(corpus, REFERENCE, detector)["standard"]
        assert set(held["categories"]) == {
            "artificialNoAnomaly",
            "artificialWithAnomaly",
            "realAdExchange",
            "realKnownCause",
        }
        assert held["categories"]["artificialNoAnomaly"]["score"] is None
        assert 0 < held["score"] < files_score
