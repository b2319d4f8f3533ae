"""How well anomaly scores find labelled anomalies: precision, recall and F1 with point
adjustment, the best threshold, streaming thresholds."""

from __future__ import annotations

import numpy as np

from airis.operators.detectors.pot_threshold import DEFAULT_LEVEL, PotThreshold


def point_adjust(pred: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Flag every row of a labelled segment in which at least one row is flagged.

    >>> point_adjust(np.array([0, 1, 0, 0, 0, 1]), np.array([1, 1, 1, 0, 1, 0])).tolist()
    [True, True, True, False, False, True]
    """
    pred, label = np.asarray(pred, dtype=bool).copy(), np.asarray(label, dtype=bool)
    for start, stop in label_segments(label):
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
        segments = label_segments(label)
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


def stream_thresholds(
    reference: np.ndarray, scores: np.ndarray, risk: float, *, update: bool = True
) -> np.ndarray:
    """The label-free threshold in force before each of ``scores``: a `PotThreshold` started
    on ``reference`` (scores of normal-ish rows) that learns each score after judging it
    (``update=False``: never learns from ``scores``, one static threshold).

    >>> import random
    >>> rng = random.Random(42)
    >>> ref = np.array([rng.expovariate(1.0) for _ in range(3000)])
    >>> th = stream_thresholds(ref, np.r_[ref[:500], [50.0]], 1e-3)
    >>> th.shape, bool(th[-1] < 50.0), bool(abs(th[0] - th[-1]) < 1.0)
    ((501,), True, True)
    """
    pot = PotThreshold(risk=risk, level=DEFAULT_LEVEL, grace_period=len(reference))
    for score in np.asarray(reference, dtype=np.float64).tolist():
        pot.learn_one(score)
    if not update:
        return np.full(len(scores), pot.threshold)
    out = np.empty(len(scores))
    for i, score in enumerate(np.asarray(scores, dtype=np.float64).tolist()):
        out[i] = pot.threshold
        pot.learn_one(score)
    return out


def ewma(x: np.ndarray, weight: float) -> np.ndarray:
    """``y[i] = weight * x[i] + (1 - weight) * y[i - 1]``, ``y[0] = x[0]``: past rows only."""
    from scipy.signal import lfilter

    y, _ = lfilter([weight], [1.0, weight - 1.0], x, zi=[(1.0 - weight) * x[0]])
    return y


def label_segments(label: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of true labels."""
    padded = np.r_[False, np.asarray(label, dtype=bool), False].astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
