"""`airis eval smd`: the F1 helpers against brute force, and the command on a sliced machine."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from airis.cli import main
from airis.eval_smd import (
    PUBLISHED,
    TRAIN_THRESHOLDS,
    best_f1,
    eval_machine,
    point_adjust,
    prf,
    print_eval_smd,
)

SMD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "smd"
#: Injected anomaly: rows of these test segments get several metrics pushed far off.
SEGMENTS = ((400, 430), (1200, 1260))


def _brute_best(scores: np.ndarray, label: np.ndarray, adjust: bool) -> float:
    best = 0.0
    for t in np.unique(scores):
        pred = scores >= t
        best = max(best, prf(point_adjust(pred, label) if adjust else pred, label)["f1"])
    return best


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("adjust", [False, True])
def test_best_f1_matches_a_brute_force_sweep(seed: int, adjust: bool) -> None:
    rng = np.random.default_rng(seed)
    label = np.zeros(300, dtype=bool)
    for start in rng.choice(280, size=4, replace=False):
        label[start : start + rng.integers(1, 15)] = True
    scores = np.round(rng.random(300) + 0.4 * label, 2)  # rounding makes ties
    found = best_f1(scores, label, adjust=adjust)
    assert found["f1"] == pytest.approx(_brute_best(scores, label, adjust))
    pred = scores >= found["threshold"]
    again = prf(point_adjust(pred, label) if adjust else pred, label)
    assert again == pytest.approx({k: found[k] for k in ("precision", "recall", "f1")})


def test_point_adjust_and_prf() -> None:
    label = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0], dtype=bool)
    pred = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
    adjusted = point_adjust(pred, label)
    assert adjusted.tolist() == [True, True, True, True, False, False, False, False, False]
    assert prf(pred, label) == pytest.approx({"precision": 0.5, "recall": 0.2, "f1": 2 / 7})
    assert prf(adjusted, label)["recall"] == pytest.approx(0.6)
    assert best_f1(np.zeros(3), np.zeros(3, dtype=bool), adjust=True)["f1"] == 0.0


@pytest.fixture(scope="module")
def small_smd(tmp_path_factory) -> Path:
    """machine-1-6 cut to 3,000 train and 2,000 test rows, with its labels replaced by two
    injected, obvious anomalies (so that the expected result does not hinge on SMD's own)."""
    source = SMD / "machine-1-6.npz"
    assert source.exists(), f"SMD data missing at {SMD} (machine-*.npz with train/test/test_label)"
    with np.load(source) as data:
        train, test = data["train"][:3000], data["test"][:2000].copy()
    label = np.zeros(len(test), dtype=np.int8)
    for start, stop in SEGMENTS:
        test[start:stop, :10] = np.clip(test[start:stop, :10] + 0.8, 0, 2)
        label[start:stop] = 1
    folder = tmp_path_factory.mktemp("smd")
    np.savez(folder / "machine-9-9.npz", train=train, test=test, test_label=label)
    return folder


def test_injected_anomalies_score_high(small_smd: Path) -> None:
    result = eval_machine(small_smd / "machine-9-9.npz")
    assert (result["train_rows"], result["test_rows"], result["features"]) == (3000, 2000, 38)
    assert result["segments"] == 2
    best = result["thresholds"]["best"]
    # Obvious anomalies: the best threshold separates them almost perfectly.
    assert best["raw"]["f1"] > 0.9 and best["adjusted"]["f1"] > 0.9
    assert best["adjusted"]["f1"] >= best["raw"]["f1"]
    # Normal rows sit below the injected ones; the training-only thresholds catch them.
    assert result["score_quantiles"]["p90"] < best["raw"]["threshold"]
    for name in TRAIN_THRESHOLDS:
        assert result["thresholds"][f"train_{name}"]["adjusted"]["recall"] == 1.0


def test_cli_eval_smd(small_smd: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "smd.json"
    assert main(["eval", "smd", "--data", str(small_smd), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "machine-9-9" in printed and "OmniAnomaly" in printed
    result = json.loads(out.read_text())
    assert [m["machine"] for m in result["machines"]] == ["machine-9-9"]
    assert result["published"] == PUBLISHED
    for name, by in result["mean"]["thresholds"].items():
        for adjustment in ("raw", "adjusted"):
            values = by[adjustment]
            assert all(0.0 <= values[k] <= 1.0 for k in ("precision", "recall", "f1")), name
    assert result["mean"]["thresholds"]["best"]["adjusted"]["f1"] > 0.9
    buf = io.StringIO()
    print_eval_smd(result, Console(file=buf, width=120))
    assert "best-F1" in buf.getvalue() and "train-only" in buf.getvalue()


def test_cli_eval_smd_without_data(tmp_path: Path) -> None:
    assert main(["eval", "smd", "--data", str(tmp_path)]) == 1
