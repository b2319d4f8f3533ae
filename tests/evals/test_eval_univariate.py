"""`airis eval univariate`: NAB windows from point labels, loading, leave-one-dataset-out."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from airis.cli import main
from airis.evals.univariate import eval_univariate, load_dataset, nab_windows
from airis.operators.types import Assessment

T0 = datetime(2021, 3, 1)


def _ts(n: int, minutes: int = 1) -> np.ndarray:
    return np.datetime64("2021-03-01T00:00") + (np.arange(n) * minutes).astype("timedelta64[m]")


def test_windows_share_ten_percent_of_the_rows_between_segments() -> None:
    labels = np.zeros(1000, dtype=int)
    labels[500:510] = 1
    (window,) = nab_windows(_ts(1000), labels)
    # One segment: 100 rows of window, 50 each side of it.
    assert (window[0], window[1]) == (_ts(1000)[450], _ts(1000)[559])


def test_windows_that_touch_merge_and_stay_inside_the_file() -> None:
    labels = np.zeros(100, dtype=int)
    labels[[1, 5, 98]] = 1  # three segments: 3 rows of window each, 1 each side
    windows = nab_windows(_ts(100), labels)
    ts = _ts(100)
    assert windows == [(ts[0], ts[2]), (ts[4], ts[6]), (ts[97], ts[99])]
    labels[3] = 1  # now rows 0-6 touch: one window
    assert nab_windows(ts, labels)[0] == (ts[0], ts[6])


def test_a_series_without_labels_has_no_window() -> None:
    assert nab_windows(_ts(50), np.zeros(50)) == []


def _write_labelled(path: Path, values: list[float], labels: list[int], gz: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if gz else open
    with opener(path, "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "value", "label"])
        for i, (v, y) in enumerate(zip(values, labels, strict=True)):
            w.writerow([(T0 + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S"), v, y])


def _corpus(root: Path) -> None:
    """Two point-labelled datasets of two series each: 400 rows, one labelled row at 300.

    Values are what the test detector reports: the anomaly scores 0.9 in ``alpha`` and 0.6 in
    ``beta``, where a normal row also reaches 0.7 once: beta's own best threshold (0.6)
    is below the one alpha would choose.
    """
    for dataset, peak, noise in (("alpha", 0.9, 0.5), ("beta", 0.6, 0.7)):
        for k in range(2):
            values = [0.0] * 400
            labels = [0] * 400
            values[300], labels[300] = peak, 1
            values[200] = noise
            gz = dataset == "alpha"
            name = f"s{k}.csv.gz" if gz else f"s{k}.csv"
            _write_labelled(root / dataset / "data" / "group" / name, values, labels, gz)


class ValueIsScore:
    """A stand-in detector whose score is the value itself (the data are the scores)."""

    def update_one(self, ts: datetime, value: float) -> Assessment:
        return Assessment(value, value, 0.0, 0.0, 0.0, "recent", "value", 1.0)


def test_load_dataset_reads_plain_and_gzipped_labelled_csvs(tmp_path: Path) -> None:
    _corpus(tmp_path)
    alpha = load_dataset(tmp_path, "alpha")
    assert [s.name for s in alpha] == ["alpha/group/s0.csv", "alpha/group/s1.csv"]
    assert len(alpha[0].values) == 400
    assert len(alpha[0].windows) == 1
    with pytest.raises(FileNotFoundError, match="gamma"):
        load_dataset(tmp_path, "gamma")


def test_held_out_scores_use_the_threshold_of_the_other_datasets(tmp_path: Path) -> None:
    _corpus(tmp_path)
    result = eval_univariate(tmp_path, ("alpha", "beta"), make_detector=ValueIsScore)
    beta = result["datasets"]["beta"]
    # On its own, beta fires at 0.6 and finds both anomalies (and its 0.7 rows, as FPs).
    assert beta["own"]["standard"]["threshold"] == pytest.approx(0.6)
    assert beta["own"]["standard"]["windows_hit"] == 2
    # Held out, it gets alpha's threshold (0.9): it misses both, so it scores as never firing.
    assert beta["held_out"]["standard"]["threshold"] == pytest.approx(0.9)
    assert beta["held_out"]["standard"]["windows_hit"] == 0
    assert beta["held_out"]["standard"]["score"] < beta["own"]["standard"]["score"]
    rows = {(r["dataset"], r["metric"]): r for r in result["scoreboard"]}
    held = rows[("beta", "NAB standard, held-out threshold")]
    assert held["value"] == pytest.approx(beta["held_out"]["standard"]["score"])
    assert held["tuned_on"] is False  # neither name is in the development split
    assert result["points"] == 4 * 400


def test_cli_writes_the_result_and_its_scoreboard(tmp_path: Path, capsys) -> None:
    _corpus(tmp_path)
    out = tmp_path / "uni.json"
    args = ["eval", "univariate", "--data", str(tmp_path), "--dataset", "alpha"]
    assert main([*args, "--dataset", "beta", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["datasets"]) == {"alpha", "beta"}
    assert result["scoreboard"]
    assert "held out" in capsys.readouterr().out
    board = tmp_path / "board.json"
    assert main(["eval", "scoreboard", str(out), "--json", str(board)]) == 0
    merged = json.loads(board.read_text())
    assert {s["metric"] for s in merged["summary"]} >= {"NAB standard, held-out threshold"}
