"""`airis eval smd`: the ONNX autoencoder on the Server Machine Dataset, per machine and on average.

For each ``machine-*.npz`` (``train``, ``test``, ``test_label``; 38 min-max scaled metrics per
row) the same configuration is trained on ``train`` with
`airis.models.autoencoder.train_autoencoder` and every ``test`` row is scored on its own by
`airis.operators.onnx_detector.OnnxDetector` (online-compatible: no future rows, no test
statistics). Two thresholds, each scored without and with point adjustment:

* **(a) from training data only**, no test label used, at two levels of the calibrated score
  (calibrated inside the model on held-out training rows): ``p99`` — score ≥ 0.749, the 99th
  percentile of training errors (tail probability 1 %); ``0.9`` — score ≥ 0.9, a tail of
  about 5e-4 (the flow's alert threshold).
* **(b) best F1 on the test labels** — the threshold that maximises F1 over all score values,
  chosen separately per machine and per adjustment: what most papers report. Optimistic by
  construction.

Point adjustment is the usual one: if any row of a labelled anomaly segment is flagged, every
row of that segment counts as flagged. The published figures (`PUBLISHED`) are point-adjusted
F1s on all 28 machines; this corpus holds 4 of them, so they are context, not a comparison on
equal terms.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from airis.models.autoencoder import DEFAULT_HIDDEN, DEFAULT_MAX_ITER, train_autoencoder
from airis.operators.onnx_detector import DEFAULT_TAIL_POWER, OnnxDetector

__all__ = [
    "PUBLISHED",
    "TRAIN_THRESHOLDS",
    "best_f1",
    "eval_machine",
    "eval_smd",
    "point_adjust",
    "prf",
    "print_eval_smd",
]

#: Published point-adjusted F1 on all 28 SMD machines (../shared/data/README.md, section smd).
PUBLISHED: dict[str, float] = {
    "OmniAnomaly": 0.962,
    "TranAD": 0.961,
    "USAD": 0.938,
    "Anomaly Transformer": 0.923,
}
#: Thresholds (a), on the calibrated score, from training data only: name → score. ``p99`` is
#: the score of the 99th percentile of held-out training errors (``1 - 0.01 ** 0.3``).
TRAIN_THRESHOLDS: dict[str, float] = {"p99": 1 - 0.01**DEFAULT_TAIL_POWER, "0.9": 0.9}
#: Rows per `OnnxDetector.score_batch` call while scoring ``test``.
SCORE_BATCH = 4096

Progress = Callable[[str], None]


def point_adjust(pred: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Flag every row of a labelled segment in which at least one row is flagged.

    >>> point_adjust(np.array([0, 1, 0, 0, 0, 1]), np.array([1, 1, 1, 0, 1, 0])).tolist()
    [True, True, True, False, False, True]
    """
    pred, label = np.asarray(pred, dtype=bool).copy(), np.asarray(label, dtype=bool)
    for start, stop in _segments(label):
        if pred[start:stop].any():
            pred[start:stop] = True
    return pred


def prf(pred: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of boolean predictions."""
    pred, label = np.asarray(pred, dtype=bool), np.asarray(label, dtype=bool)
    tp = int((pred & label).sum())
    fp = int((pred & ~label).sum())
    fn = int((~pred & label).sum())
    return _prf(tp, fp, fn)


def best_f1(scores: np.ndarray, label: np.ndarray, *, adjust: bool) -> dict[str, float]:
    """The best F1 over every threshold ``score >= t`` (exact sweep), with its P, R and ``t``.

    With ``adjust``, a segment counts as found from its highest score on (point adjustment).

    >>> s, y = np.array([0.1, 0.9, 0.2, 0.8, 0.3]), np.array([0, 1, 1, 0, 0])
    >>> best_f1(s, y, adjust=False)["f1"], best_f1(s, y, adjust=True)["f1"]
    (0.666..., 1.0)
    """
    scores = np.asarray(scores, dtype=np.float64)
    label = np.asarray(label, dtype=bool)
    positives = int(label.sum())
    if positives == 0:
        return {"threshold": float("nan"), **_prf(0, 0, 0)}
    if adjust:
        # Items: each normal row (1 false positive) and each segment (its length in true
        # positives), found once the threshold drops to its score (a segment's: its maximum).
        segments = _segments(label)
        item_score = np.concatenate(
            [scores[~label], np.array([scores[a:b].max() for a, b in segments])]
        )
        item_tp = np.concatenate([np.zeros(int((~label).sum())), [b - a for a, b in segments]])
        item_fp = np.concatenate([np.ones(int((~label).sum())), np.zeros(len(segments))])
    else:
        item_score, item_tp, item_fp = scores, label.astype(float), (~label).astype(float)
    order = np.argsort(-item_score, kind="mergesort")
    sorted_scores = item_score[order]
    tp = np.cumsum(item_tp[order])
    fp = np.cumsum(item_fp[order])
    # Only the last item of a run of equal scores is a reachable threshold.
    ends = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    f1 = 2 * tp[ends] / (2 * tp[ends] + fp[ends] + (positives - tp[ends]))
    k = ends[int(np.argmax(f1))]
    return {
        "threshold": float(sorted_scores[k]),
        **_prf(int(tp[k]), int(fp[k]), positives - int(tp[k])),
    }


def eval_machine(
    path: Path, *, seed: int = 0, hidden: tuple[int, ...] = DEFAULT_HIDDEN, smooth: float = 0.0
) -> dict[str, Any]:
    """Train on one machine's ``train``, score its ``test``, and evaluate both thresholds.

    ``smooth`` > 0 replaces each score by a causal exponentially weighted mean of the scores
    so far (weight ``smooth`` on the newest row): still online, fewer isolated false alarms.
    """
    if not 0.0 <= smooth <= 1.0:
        raise ValueError(f"eval_smd: smooth must be in [0, 1], got {smooth}")
    with np.load(path) as data:
        missing = {"train", "test", "test_label"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: missing arrays {sorted(missing)}")
        train, test = data["train"], data["test"]
        label = data["test_label"].astype(bool)
    if len(test) != len(label) or train.shape[1] != test.shape[1]:
        raise ValueError(f"{path}: shapes train {train.shape}, test {test.shape}, {label.shape}")
    names = [f"dim{i:02d}" for i in range(train.shape[1])]
    model = train_autoencoder(
        train, names, hidden=hidden, seed=seed, max_iter=DEFAULT_MAX_ITER, model_name="smd"
    )
    detector = OnnxDetector(model.onnx_bytes, providers="cpu", model_name="smd")
    started = time.perf_counter()
    scores = np.concatenate(
        [detector.score_batch(test[i : i + SCORE_BATCH]) for i in range(0, len(test), SCORE_BATCH)]
    )
    if smooth > 0:
        scores = _ewma(scores, smooth)
    score_seconds = time.perf_counter() - started
    return {
        "machine": path.stem,
        "train_rows": len(train),
        "test_rows": len(test),
        "features": train.shape[1],
        "anomaly_ratio": float(label.mean()),
        "segments": len(_segments(label)),
        "train_seconds": model.metrics["train_seconds"],
        "score_seconds": score_seconds,
        "thresholds": {
            **{f"train_{name}": _at(scores >= t, label, t) for name, t in TRAIN_THRESHOLDS.items()},
            "best": {
                "raw": best_f1(scores, label, adjust=False),
                "adjusted": best_f1(scores, label, adjust=True),
            },
        },
        "score_quantiles": {
            f"p{q:g}": float(np.quantile(scores[~label], q / 100)) for q in (50, 90, 99)
        },
    }


def eval_smd(
    data: Path,
    progress: Progress | None = None,
    *,
    seed: int = 0,
    hidden: tuple[int, ...] = DEFAULT_HIDDEN,
    smooth: float = 0.0,
) -> dict[str, Any]:
    """Evaluate every ``machine-*.npz`` under ``data``; see the module docstring.

    Returns ``{"machines": [eval_machine results], "mean": {...}, "published": PUBLISHED,
    "config": {...}, "seconds"}``; ``mean`` averages the per-machine precision, recall and F1.
    """
    paths = sorted(Path(data).glob("machine-*.npz"))
    if not paths:
        raise FileNotFoundError(f"no SMD machine-*.npz files under {data}")
    started = time.perf_counter()
    machines = []
    for k, path in enumerate(paths, start=1):
        result = eval_machine(path, seed=seed, hidden=hidden, smooth=smooth)
        machines.append(result)
        if progress is not None:
            progress(
                f"[{k}/{len(paths)}] {result['machine']}: trained in "
                f"{result['train_seconds']:.2f} s, F1 best (PA) "
                f"{result['thresholds']['best']['adjusted']['f1']:.3f}"
            )
    return {
        "machines": machines,
        "mean": _mean(machines),
        "published": dict(PUBLISHED),
        "config": {
            "model": "MLP autoencoder (tanh), ONNX",
            "hidden": list(hidden),
            "seed": seed,
            "smooth": smooth,
            "train_thresholds": dict(TRAIN_THRESHOLDS),
            "scoring": (
                "each test row alone, calibrated score in [0, 1]"
                if smooth == 0
                else f"causal EWMA (weight {smooth:g}) of each row's calibrated score"
            ),
        },
        "seconds": time.perf_counter() - started,
    }


def print_eval_smd(result: dict[str, Any], console: Any) -> None:
    """Print `eval_smd`'s result as one rich table per threshold, published figures last."""
    from rich.table import Table

    n = len(result["machines"])
    titles = {
        f"train_{name}": f"(a) train-only threshold {name} (score >= {t:.3f})"
        for name, t in result["config"]["train_thresholds"].items()
    }
    titles["best"] = "(b) best-F1 threshold on the test labels, per machine (as papers report)"
    for key, title in titles.items():
        table = Table(title=f"SMD, ONNX autoencoder, {n} machines: {title}")
        table.add_column("machine")
        for column in ("P", "R", "F1", "P (PA)", "R (PA)", "F1 (PA)"):
            table.add_column(column, justify="right")
        for name, m in [*((m["machine"], m) for m in result["machines"]), ("mean", result["mean"])]:
            if name == "mean":
                table.add_section()
            e = m["thresholds"][key]
            table.add_row(name, *_cells(e["raw"]), *_cells(e["adjusted"]))
        if key == "best":
            table.add_section()
            for pub, f1 in result["published"].items():
                table.add_row(
                    f"[dim]{pub} (28 machines)[/dim]", "", "", "", "", "", f"[dim]{f1:.3f}[/dim]"
                )
        console.print(table)
    train = ", ".join(f"{m['machine']} {m['train_seconds']:.2f} s" for m in result["machines"])
    console.print(
        f"PA: point-adjusted. Training: {train}. Scores: {result['config']['scoring']}. "
        f"{result['seconds']:.1f} s in all."
    )


def _ewma(x: np.ndarray, weight: float) -> np.ndarray:
    """``y[i] = weight * x[i] + (1 - weight) * y[i - 1]``, ``y[0] = x[0]``: past rows only."""
    from scipy.signal import lfilter

    y, _ = lfilter([weight], [1.0, weight - 1.0], x, zi=[(1.0 - weight) * x[0]])
    return y


def _segments(label: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of true labels."""
    padded = np.r_[False, np.asarray(label, dtype=bool), False].astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _mean(machines: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("precision", "recall", "f1")
    return {
        "train_seconds": float(np.mean([m["train_seconds"] for m in machines])),
        "thresholds": {
            name: {
                adj: {
                    k: float(np.mean([m["thresholds"][name][adj][k] for m in machines]))
                    for k in keys
                }
                for adj in ("raw", "adjusted")
            }
            for name in machines[0]["thresholds"]
        },
    }


def _at(flagged: np.ndarray, label: np.ndarray, threshold: float) -> dict[str, Any]:
    return {
        "threshold": threshold,
        "raw": prf(flagged, label),
        "adjusted": prf(point_adjust(flagged, label), label),
    }


def _cells(e: dict[str, float]) -> tuple[str, str, str]:
    return f"{e['precision']:.3f}", f"{e['recall']:.3f}", f"{e['f1']:.3f}"
