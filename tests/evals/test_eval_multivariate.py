"""`airis eval multivariate` / `eval smd`: the F1 helpers against brute force, the eval on small
synthetic ``.npz`` folders (PA, leave-one-dataset-out risk, scoreboard), the fallback."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from airis.cli import main
from airis.evals.anomaly_scoring import best_f1, point_adjust, prf, stream_thresholds
from airis.evals.multivariate import (
    PUBLISHED,
    RISKS,
    choose_risks,
    eval_machine,
    eval_multivariate,
    print_eval_multivariate,
)

#: Injected anomalies: rows of these test segments get several metrics pushed off.
SEGMENTS = ((300, 320), (700, 740), (1100, 1105))


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


def _series(rng: np.random.Generator, n: int, d: int, flip: bool = False) -> np.ndarray:
    """``d`` metrics driven by two slow latent factors plus noise (``flip``: the second half of
    the metrics with the opposite sign, a structure the model did not see)."""
    t = np.arange(n)
    latent = np.stack(
        [np.sin(2 * np.pi * t / 240), np.cos(2 * np.pi * t / 97 + rng.uniform(0, 6))], axis=1
    )
    mix = rng.normal(size=(2, d))
    if flip:
        mix[:, d // 2 :] *= -1
    return latent @ mix + rng.normal(scale=0.05, size=(n, d))


def _machine(folder: Path, name: str, seed: int, *, shift_from: int | None = None) -> None:
    """One synthetic machine: 2,000 train and 1,500 test rows of 6 metrics, min-max scaled on
    train; anomalies push 3 metrics off in `SEGMENTS`. ``shift_from``: from that test row on,
    three metrics sit at a new normal level (a new machine's workload), with only the first
    segment injected."""
    rng = np.random.default_rng(seed)
    x = _series(rng, 3500, 6)
    train, test = x[:2000], x[2000:].copy()
    label = np.zeros(len(test), dtype=np.int8)
    segments = SEGMENTS if shift_from is None else SEGMENTS[:1]
    for start, stop in segments:
        test[start:stop, :3] += 3.0 * x.std(axis=0)[:3]
        label[start:stop] = 1
    if shift_from is not None:
        test[shift_from:, 3:] += 4.0 * x.std(axis=0)[3:]
    low, high = train.min(axis=0), train.max(axis=0)
    scale = lambda a: ((a - low) / (high - low)).astype(np.float32)  # noqa: E731
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{name}.npz", train=scale(train), test=scale(test), test_label=label)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> list[Path]:
    """Three datasets named like the real ones (two tuned on, one held out)."""
    root = tmp_path_factory.mktemp("mv")
    for seed, dataset in enumerate(("smd", "asd", "smd_extra")):
        _machine(root / dataset, f"machine-{seed}", seed)
    _machine(root / "smd", "machine-9", 9)
    return [root / d for d in ("smd", "asd", "smd_extra")]


@pytest.fixture(scope="module")
def result(folders: list[Path]) -> dict:
    lines: list[str] = []
    out = eval_multivariate(folders, progress=lines.append)
    out["_progress"] = lines
    return out


def test_injected_anomalies_are_found(result: dict) -> None:
    assert list(result["datasets"]) == ["smd", "asd", "smd_extra"]
    assert len(result["_progress"]) == 4 and "smd/machine-0" in result["_progress"][0]
    for data in result["datasets"].values():
        for m in data["machines"]:
            assert (m["test_rows"], m["features"], m["segments"]) == (1500, 6, 3)
            assert m["fallback"] is False and m["skill"] > 0.5
            t = m["thresholds"]
            assert t["best"]["adjusted"]["f1"] > 0.95
            assert t["best"]["adjusted"]["f1"] >= t["best"]["raw"]["f1"]
            # Without labels: every segment found, few normal rows flagged.
            found = t["label_free"]["0.01"]
            assert found["adjusted"]["recall"] == 1.0 and found["adjusted"]["f1"] > 0.8
            assert found["normal_alert_rate"] < 0.03
            # Point adjustment only adds true positives.
            assert found["adjusted"]["recall"] >= found["raw"]["recall"]
            assert found["adjusted"]["precision"] >= found["raw"]["precision"]


def test_risk_is_chosen_on_the_other_datasets(result: dict) -> None:
    by_risk = result["risk"]["mean_pa_f1"]
    assert result["risk"]["grid"] == [f"{r:g}" for r in RISKS]
    for name, chosen in result["risk"]["chosen"].items():
        others = [by_risk[o] for o in by_risk if o != name]
        mean = {r: np.mean([o[r] for o in others]) for r in result["risk"]["grid"]}
        assert mean[chosen] == max(mean.values())
        mean_of_dataset = result["datasets"][name]["mean"]["thresholds"]
        assert mean_of_dataset["label_free_chosen"]["risk"] == chosen
    # The dataset mean is the mean over its machines.
    smd = result["datasets"]["smd"]
    f1s = [m["thresholds"]["label_free"]["0.001"]["adjusted"]["f1"] for m in smd["machines"]]
    assert smd["mean"]["thresholds"]["label_free"]["0.001"]["adjusted"]["f1"] == pytest.approx(
        np.mean(f1s)
    )


def test_choose_risks_leaves_one_dataset_out() -> None:
    f1 = {"a": {"0.01": 1.0, "0.001": 0.0}, "b": {"0.01": 0.2, "0.001": 0.9}}
    # Each dataset gets the other's best risk, not its own.
    assert choose_risks(f1, default="0.01") == {"a": "0.001", "b": "0.01"}
    assert choose_risks({"a": f1["a"]}, default="0.005") == {"a": "0.005"}


def test_scoreboard_rows(result: dict) -> None:
    rows = result["scoreboard"]
    assert {r["metric"] for r in rows} == {
        "PA F1, label-free threshold",
        "PA F1, best threshold",
        "F1, label-free threshold",
    }
    assert len(rows) == 9 and all(r["task"] == "multivariate" for r in rows)
    tuned = {r["dataset"]: r["tuned_on"] for r in rows}
    assert tuned == {"smd": True, "asd": True, "smd_extra": False}
    for r in rows:
        means = result["datasets"][r["dataset"]]["mean"]["thresholds"]
        if r["metric"] == "PA F1, label-free threshold":
            chosen = result["risk"]["chosen"][r["dataset"]]
            assert r["value"] == means["label_free"][chosen]["adjusted"]["f1"]
            assert chosen in r["protocol"]
        elif r["metric"] == "PA F1, best threshold":
            assert r["value"] == means["best"]["adjusted"]["f1"]
    assert any("OmniAnomaly" in r["anchor"] for r in rows if r["dataset"] == "smd")


def test_a_useless_model_falls_back_and_does_not_flood(tmp_path: Path) -> None:
    # One epoch: the network reconstructs held-out rows worse than the training mean, so the
    # per-feature baseline scores instead. The test's normal rows move to a new level from row
    # 400 on: a static threshold floods, the streaming one stays near its risk.
    _machine(tmp_path, "machine-u", 3, shift_from=400)
    m = eval_machine(tmp_path / "machine-u.npz", max_iter=1)
    assert m["skill"] < 0 and m["fallback"] is True
    assert m["thresholds"]["static"]["0.01"]["normal_alert_rate"] > 0.5
    for risk in ("0.01", "0.001"):
        assert m["thresholds"]["label_free"][risk]["normal_alert_rate"] < 3 * float(risk)
    assert m["thresholds"]["label_free"]["0.01"]["adjusted"]["recall"] == 1.0
    trained = eval_machine(tmp_path / "machine-u.npz")
    assert trained["fallback"] is False and trained["skill"] > 0.5


def test_stream_thresholds_follow_a_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.exponential(size=2000)
    shifted = rng.exponential(size=5000) + 10.0
    static = stream_thresholds(reference, shifted, 1e-2, update=False)
    moving = stream_thresholds(reference, shifted, 1e-2)
    assert np.mean(shifted > static) == 1.0  # a static threshold flags every row
    assert np.mean(shifted > moving) < 0.05


def test_cli_eval_smd_and_multivariate(folders: list[Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "smd.json"
    assert main(["eval", "smd", "--data", str(folders[0]), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "machine-9" in printed and "OmniAnomaly" in printed
    saved = json.loads(out.read_text())
    assert [m["machine"] for m in saved["datasets"]["smd"]["machines"]] == [
        "machine-0",
        "machine-9",
    ]
    assert saved["published"] == PUBLISHED
    assert saved["risk"]["chosen"] == {"smd": "0.01"}  # alone: the default risk
    assert len(saved["scoreboard"]) == 3
    buf = io.StringIO()
    print_eval_multivariate(saved, Console(file=buf, width=160))
    assert "label-free" in buf.getvalue() and "best-F1" in buf.getvalue()


def test_cli_without_data(tmp_path: Path) -> None:
    assert main(["eval", "smd", "--data", str(tmp_path)]) == 1
    assert main(["eval", "multivariate", "--data", str(tmp_path)]) == 1
