"""NAB scoring: anomaly windows, cost profiles, the corpus threshold sweep, normalisation.

A reimplementation of the scoring of the Numenta Anomaly Benchmark (Lavin & Ahmad 2015,
"Evaluating Real-time Anomaly Detection Algorithms – the Numenta Anomaly Benchmark"), with the
semantics of NAB v1.1's ``nab/sweeper.py``, ``nab/optimizer.py`` and ``nab/runner.py``:

* The first ``min(floor(0.15 n), 750)`` rows of a file (its probationary period) are not scored.
* A window scores ``tp * S(p) / S(-1)`` for its earliest detection, where ``p = -(e - i + 1) / w``
  is the detection's position relative to the window end ``e`` (width ``w``) and
  ``S(p) = 2 sigmoid(-5 p) - 1`` is the scaled sigmoid; so a detection at the window's first row
  earns exactly ``tp``. A window without a detection costs ``fn``.
* A detection outside every window scores ``fp * S(d)`` with ``d = (i - e) / (w - 1)`` its distance
  past the end of the preceding window (``S = -1`` beyond ``d = 3``), or ``-fp`` before the first
  window: an FP just after a window is nearly free, one far after costs the full ``fp``.
* One threshold per detector and profile is chosen over the whole corpus: every distinct
  anomaly score is tried (detections are the rows scoring at least the threshold) and the best
  raw score wins, ties going to the highest threshold.
* ``score = 100 (raw - null) / (perfect - null)``: the null detector never fires (``-fn`` per
  window) and the perfect one fires at the first row of every window (``tp`` per window).

Everything here is pure (arrays in, numbers out); reading files and the CLI live in
`airis.evals.nab`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "PROFILES",
    "CostProfile",
    "FileLayout",
    "HoldoutScore",
    "ProfileScore",
    "ScoredFile",
    "Sweep",
    "holdout_score",
    "layout_file",
    "load_profiles",
    "load_windows",
    "nab_score",
    "parse_timestamps",
    "probation_length",
    "raw_score",
    "scaled_sigmoid",
    "sweep",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Window = tuple[np.datetime64, np.datetime64]

#: NAB's probationary fraction, and the row count whose fraction caps the period (0.15 * 5000).
PROBATION_FRACTION = 0.15
_PROBATION_CAP_ROWS = 5000


@dataclass(frozen=True)
class CostProfile:
    """The weights of one NAB application profile (``profiles.json``'s ``CostMatrix``)."""

    name: str
    tp: float
    fp: float
    fn: float


#: NAB's three profiles, as in its ``config/profiles.json``.
PROFILES: dict[str, CostProfile] = {
    "standard": CostProfile("standard", tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": CostProfile("reward_low_FP_rate", tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": CostProfile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0),
}


@dataclass(frozen=True)
class ScoredFile:
    """One data file's timestamps, a detector's anomaly scores for it and its label windows."""

    name: str
    timestamps: npt.NDArray[np.datetime64]
    scores: FloatArray
    windows: Sequence[Window]


@dataclass(frozen=True)
class FileLayout:
    """Where each row of a file stands relative to its windows; independent of the detector.

    ``window`` is the row's window index (``-1`` outside every window) and ``unit`` the
    unweighted reward of a detection there: ``S(p) / S(-1)`` inside a window (times ``tp``),
    ``S(d)`` or ``-1`` outside (times ``fp``). ``scored`` is False in the probationary period.
    """

    window: IntArray
    unit: FloatArray
    scored: npt.NDArray[np.bool_]
    n_windows: int

    @property
    def scored_windows(self) -> int:
        """Windows with at least one scored row: the ones a detector can hit or miss."""
        return int(np.unique(self.window[self.scored & (self.window >= 0)]).size)


@dataclass(frozen=True)
class ProfileScore:
    """The corpus score of one detector under one profile, at its best threshold.

    ``threshold`` is ``inf`` when firing never pays (the detector then scores as the null one).
    ``tp``/``fp``/``fn``/``tn`` count scored rows; ``windows_hit`` counts detected windows.
    """

    profile: str
    score: float
    raw: float
    null: float
    perfect: float
    threshold: float
    tp: int
    fp: int
    fn: int
    tn: int
    windows_hit: int
    windows: int


def scaled_sigmoid(position: npt.ArrayLike) -> FloatArray:
    """NAB's reward at a relative position: ``2 sigmoid(-5 p) - 1``, and -1 beyond ``p = 3``.

    >>> scaled_sigmoid([-1.0, -0.5, 0.0, 1.0, 3.5]).round(5)
    array([ 0.98661,  0.84828,  0.     , -0.98661, -1.     ])
    """
    p = np.asarray(position, dtype=np.float64)
    # 2 sigmoid(-5p) - 1 == -tanh(2.5p), which cannot overflow for large |p|.
    return np.where(p > 3.0, -1.0, -np.tanh(2.5 * p))


_MAX_TP = float(scaled_sigmoid(-1.0))


def probation_length(rows: int, fraction: float = PROBATION_FRACTION) -> int:
    """Rows at the start of a file that are not scored: ``min(floor(fraction n), 750)``.

    >>> probation_length(4032), probation_length(22695)
    (604, 750)
    """
    return int(min(math.floor(fraction * rows), fraction * _PROBATION_CAP_ROWS))


def parse_timestamps(texts: Sequence[str]) -> npt.NDArray[np.datetime64]:
    """NAB's ``2014-04-01 00:00:00[.000000]`` timestamps as ``datetime64[us]``."""
    return np.array([t.strip() for t in texts], dtype="datetime64[us]")


def _window_bounds(
    timestamps: npt.NDArray[np.datetime64], windows: Sequence[Window], name: str
) -> list[tuple[int, int]]:
    """Row indices ``(first, last)`` of each window, matched on exact timestamps like NAB.

    NAB enters a window at the row whose timestamp equals its start and leaves it at the
    row equal to its end; a limit matching no row would silently drop that window and every
    later one, so it is an error here.
    """
    bounds: list[tuple[int, int]] = []
    after = 0
    for start, end in sorted(windows):
        first = _first_match(timestamps, start, after)
        last = _first_match(timestamps, end, first)
        if first < 0 or last < 0:
            missing = start if first < 0 else end
            raise ValueError(f"{name}: window limit {missing} is not a row timestamp")
        bounds.append((first, last))
        after = last + 1
    return bounds


def _first_match(timestamps: npt.NDArray[np.datetime64], value: np.datetime64, after: int) -> int:
    hits = np.flatnonzero(timestamps[after:] == value)
    return after + int(hits[0]) if hits.size else -1


def layout_file(
    timestamps: npt.NDArray[np.datetime64],
    windows: Sequence[Window],
    name: str = "",
    fraction: float = PROBATION_FRACTION,
) -> FileLayout:
    """Each row's window and unweighted detection reward (see `FileLayout`)."""
    n = len(timestamps)
    rows = np.arange(n)
    window = np.full(n, -1, dtype=np.int64)
    # Outside any window before the first one, an FP costs the full weight.
    unit = np.full(n, -1.0)
    bounds = _window_bounds(timestamps, windows, name)
    for k, (first, last) in enumerate(bounds):
        width = last - first + 1
        inside = slice(first, last + 1)
        window[inside] = k
        unit[inside] = scaled_sigmoid(-(last - rows[inside] + 1) / width) / _MAX_TP
        following = bounds[k + 1][0] if k + 1 < len(bounds) else n
        after = slice(last + 1, following)
        # A one-row window has no width to scale by: NAB divides by zero there, so treat
        # every FP after it as far away.
        distance = (
            (rows[after] - last) / (width - 1) if width > 1 else np.full(rows[after].size, 4.0)
        )
        unit[after] = scaled_sigmoid(distance)
    scored = rows >= probation_length(n, fraction)
    return FileLayout(window=window, unit=unit, scored=scored, n_windows=len(bounds))


def raw_score(layout: FileLayout, detections: npt.NDArray[np.bool_], profile: CostProfile) -> float:
    """A file's raw NAB score for boolean ``detections``, computed directly (no sweep).

    >>> ts = np.datetime64("2020-01-01T00:00") + np.arange(100).astype("timedelta64[m]")
    >>> layout = layout_file(ts, [(ts[50], ts[59])])
    >>> fire = np.zeros(100, dtype=bool)
    >>> raw_score(layout, fire, PROFILES["standard"])  # one missed window
    -1.0
    >>> fire[50] = True
    >>> raw_score(layout, fire, PROFILES["standard"])  # hit at the window start
    1.0
    """
    fired = detections & layout.scored
    outside = fired & (layout.window < 0)
    total = profile.fp * float(layout.unit[outside].sum())
    for k in np.unique(layout.window[layout.scored & (layout.window >= 0)]):
        hits = fired & (layout.window == k)
        total += profile.tp * float(layout.unit[hits].max()) if hits.any() else -profile.fn
    return total


@dataclass(frozen=True)
class Sweep:
    """Raw corpus score at every candidate threshold, highest threshold (``inf``) first."""

    thresholds: FloatArray
    raw: FloatArray
    tp: IntArray
    fp: IntArray
    windows_hit: IntArray
    in_window_rows: int
    outside_rows: int


def sweep(
    scores: FloatArray, window: IntArray, unit: FloatArray, n_windows: int, profile: CostProfile
) -> Sweep:
    """Score every distinct threshold at once over the scored rows of a corpus.

    ``window`` holds corpus-wide window ids (``-1`` outside), ``n_windows`` how many windows
    have scored rows. Rows are taken in decreasing score order; each adds its FP cost, or
    raises its window's reward when it is that window's earliest detection so far (a window
    is rewarded for its earliest detection, and earlier rows of a window earn more).
    """
    if np.isnan(scores).any():
        raise ValueError("anomaly scores contain NaN")
    order = np.argsort(-scores, kind="stable")
    s, w = scores[order], window[order]
    inside = w >= 0
    delta = np.where(inside, 0.0, profile.fp * unit[order])
    first_hit = np.zeros(s.size, dtype=np.int64)
    pos = np.flatnonzero(inside)
    if pos.size:
        delta[pos], first_hit[pos] = _window_gains(order[pos], w[pos], unit, profile)
    raw = -profile.fn * n_windows + np.cumsum(delta)
    # The score of threshold t counts every row scoring >= t: take the last row of each tie.
    ends = np.flatnonzero(np.append(s[1:] != s[:-1], True)) if s.size else np.zeros(0, np.int64)
    return Sweep(
        thresholds=np.concatenate(([np.inf], s[ends])),
        raw=np.concatenate(([-profile.fn * n_windows], raw[ends])),
        tp=np.concatenate(([0], np.cumsum(inside)[ends])),
        fp=np.concatenate(([0], np.cumsum(~inside)[ends])),
        windows_hit=np.concatenate(([0], np.cumsum(first_hit)[ends])),
        in_window_rows=int(inside.sum()),
        outside_rows=int((~inside).sum()),
    )


def _window_gains(
    rows: IntArray, wids: IntArray, unit: FloatArray, profile: CostProfile
) -> tuple[FloatArray, IntArray]:
    """Score change of each in-window row (in sweep order), and whether it is a first hit.

    ``rows`` are corpus row indices: within a window a smaller index is an earlier row, so a
    window's reward so far is that of its smallest detected index. Grouping the rows by window
    (stably, keeping sweep order) and offsetting each group below the previous one lets one
    `np.minimum.accumulate` compute the running minimum of every group at once.
    """
    group = np.argsort(wids, kind="stable")
    g_rows, g_wids = rows[group], wids[group]
    span = int(rows.max()) + 1
    offset = (int(g_wids.max()) - g_wids) * span
    earliest = np.minimum.accumulate(offset + g_rows) - offset
    value = profile.tp * unit[earliest]
    starts = np.append(True, g_wids[1:] != g_wids[:-1])
    before = np.where(starts, -profile.fn, np.roll(value, 1))
    gain, first = np.empty(rows.size), np.empty(rows.size, dtype=np.int64)
    gain[group], first[group] = value - before, starts
    return gain, first


def nab_score(
    files: Sequence[ScoredFile], profile: CostProfile, threshold: float | None = None
) -> ProfileScore:
    """The normalised NAB score of one detector's ``files`` under ``profile``.

    The threshold is optimised over all files together, as NAB's optimizer does, unless
    ``threshold`` is given (e.g. one optimised on other files): then rows scoring at least
    ``threshold`` fire.

    >>> ts = np.datetime64("2020-01-01T00:00") + np.arange(100).astype("timedelta64[m]")
    >>> windows = [(ts[50], ts[59])]
    >>> early, late = np.zeros(100), np.zeros(100)
    >>> early[50] = late[59] = 0.9
    >>> s = nab_score([ScoredFile("a.csv", ts, early, windows)], PROFILES["standard"])
    >>> s.score, s.threshold, s.windows_hit
    (100.0, 0.9, 1)
    >>> round(nab_score([ScoredFile("a.csv", ts, late, windows)], PROFILES["standard"]).score, 2)
    62.41
    >>> nab_score([ScoredFile("a.csv", ts, np.zeros(100), windows)], PROFILES["standard"]).score
    0.0
    >>> nab_score([ScoredFile("a.csv", ts, late, windows)], PROFILES["standard"], 0.95).score
    0.0
    """
    scores, window, unit, scored_windows, all_windows = _concat(files)
    result = sweep(scores, window, unit, scored_windows, profile)
    if threshold is None:
        best = int(np.argmax(result.raw))  # first maximum: the highest threshold among ties
    else:
        # Sweep thresholds descend: take the last one still >= threshold (inf: fire never).
        best = int(np.searchsorted(-result.thresholds, -threshold, side="right")) - 1
    null = -profile.fn * scored_windows
    # NAB's perfect score counts every labelled window, scored or not.
    perfect = profile.tp * all_windows
    raw = float(result.raw[best])
    tp, fp = int(result.tp[best]), int(result.fp[best])
    return ProfileScore(
        profile=profile.name,
        score=100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0,
        raw=raw,
        null=null,
        perfect=perfect,
        threshold=float(result.thresholds[best]) if threshold is None else threshold,
        tp=tp,
        fp=fp,
        fn=result.in_window_rows - tp,
        tn=result.outside_rows - fp,
        windows_hit=int(result.windows_hit[best]),
        windows=all_windows,
    )


@dataclass(frozen=True)
class HoldoutScore:
    """Leave-one-category-out: the combined normalised score and each held-out category's."""

    score: float
    categories: dict[str, ProfileScore]


def holdout_score(files: Sequence[ScoredFile], profile: CostProfile) -> HoldoutScore:
    """Score each category (``category/file`` names) at a threshold optimised on the others.

    NAB optimises one threshold over the very files it scores, which flatters a detector
    whose score scale differs between kinds of series. Here a category never sees its own
    threshold; the held-out raw, null and perfect scores are summed and normalised as usual.

    >>> ts = np.datetime64("2020-01-01T00:00") + np.arange(100).astype("timedelta64[m]")
    >>> a, b = np.zeros(100), np.zeros(100)
    >>> a[50], b[50] = 0.9, 0.5  # both perfect, at their own threshold
    >>> files = [ScoredFile("A/a.csv", ts, a, [(ts[50], ts[59])]),
    ...          ScoredFile("B/b.csv", ts, b, [(ts[50], ts[59])])]
    >>> nab_score(files, PROFILES["standard"]).score
    100.0
    >>> held = holdout_score(files, PROFILES["standard"])  # B's threshold from A: 0.9, missed
    >>> held.score, held.categories["A"].score, held.categories["B"].score
    (50.0, 100.0, 0.0)
    """
    categories = sorted({f.name.split("/", 1)[0] for f in files})
    if len(categories) < 2:
        raise ValueError("leave-one-category-out needs files from at least two categories")
    held: dict[str, ProfileScore] = {}
    for category in categories:
        inside = [f for f in files if f.name.split("/", 1)[0] == category]
        others = [f for f in files if f.name.split("/", 1)[0] != category]
        held[category] = nab_score(inside, profile, nab_score(others, profile).threshold)
    raw = sum(s.raw for s in held.values())
    null = sum(s.null for s in held.values())
    perfect = sum(s.perfect for s in held.values())
    score = 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0
    return HoldoutScore(score, held)


def _concat(files: Sequence[ScoredFile]) -> tuple[FloatArray, IntArray, FloatArray, int, int]:
    """The scored rows of all files, with window ids made unique across the corpus."""
    scores, windows, units = [], [], []
    next_id, scored_windows, all_windows = 0, 0, 0
    for f in files:
        if len(f.scores) != len(f.timestamps):
            raise ValueError(f"{f.name}: {len(f.scores)} scores for {len(f.timestamps)} rows")
        layout = layout_file(f.timestamps, f.windows, f.name)
        keep = layout.scored
        scores.append(np.asarray(f.scores, dtype=np.float64)[keep])
        wid = layout.window[keep]
        windows.append(np.where(wid >= 0, wid + next_id, -1))
        units.append(layout.unit[keep])
        next_id += layout.n_windows
        scored_windows += layout.scored_windows
        all_windows += layout.n_windows
    if not scores:
        raise ValueError("no files to score")
    return (
        np.concatenate(scores),
        np.concatenate(windows),
        np.concatenate(units),
        scored_windows,
        all_windows,
    )


def load_profiles(path: Path) -> dict[str, CostProfile]:
    """NAB's ``profiles.json``: profile name → its cost matrix."""
    raw = json.loads(path.read_text())
    return {
        name: CostProfile(
            name,
            tp=float(p["CostMatrix"]["tpWeight"]),
            fp=float(p["CostMatrix"]["fpWeight"]),
            fn=float(p["CostMatrix"]["fnWeight"]),
        )
        for name, p in raw.items()
    }


def load_windows(path: Path) -> dict[str, list[Window]]:
    """NAB's ``combined_windows.json``: ``category/file.csv`` → its (start, end) windows."""
    raw = json.loads(path.read_text())
    return {
        name: [(np.datetime64(s.strip(), "us"), np.datetime64(e.strip(), "us")) for s, e in limits]
        for name, limits in raw.items()
    }
