"""`EnsembleDetector` compiled over columns: many series' state as rows of one array.

A flow holds one detector per series, and Python spends about 6 µs per point walking one
`EnsembleDetector` object. `update_rows` runs the same arithmetic, in the same order, over
a batch of points of many series at once, compiled by numba: the state of series ``r`` is
row ``r`` of a float64 array (`ROW_WIDTH` columns, 936 bytes), and a point names its row.
It is a second implementation of one specification, so the tests feed both the same series
and require the same assessments, bit for bit; `row_from_detector` and `detector_from_row`
convert between the two.

Differences, by design: the hour of day and the day are taken in UTC from the point's epoch
seconds (`EnsembleDetector` reads them from the ``datetime``, which is the same for UTC and
naive timestamps, the only kind the flows make), and only ``min_scale`` may differ between
rows; every other parameter is the class's default.
"""

from __future__ import annotations

import math
from array import array

import numba
import numpy as np

from airis.operators.detectors.ensemble_detector import (
    _DEFAULTS,
    _DIFF_TO_SIGMA,
    _FLOOR_GATE,
    _INTERVAL_RATE,
    _MAX_PROTECT_TAIL,
    _MIN_HISTORY,
    _MIN_TAIL,
    EnsembleDetector,
)
from airis.operators.gaussian import MEAN_AD_TO_SIGMA, MEDIAN_AD_TO_SIGMA

__all__ = [
    "COMPONENTS",
    "ROW_WIDTH",
    "STATES",
    "VERDICT_WIDTH",
    "detector_from_row",
    "new_row",
    "row_from_detector",
    "supports",
    "update_rows",
]

#: The codes of an assessment's ``state`` and ``component`` in `update_rows`' output.
STATES = ("warming", "recent", "seasonal")
COMPONENTS = ("warming", "invalid", "level", "drift", "profile")
#: The columns of `update_rows`' output, one row per point.
VERDICT_SCORE, VERDICT_EXPECTED, VERDICT_LOWER, VERDICT_UPPER = 0, 1, 2, 3
VERDICT_STATE, VERDICT_COMPONENT, VERDICT_CONFIDENCE = 4, 5, 6
VERDICT_WIDTH = 7

# Columns of a row. The warm-up's values live where the hour bins will be: the bins are
# untouched until the warm-up ends, and `_start` clears them then.
N, LEVEL, SCALE, PROTECTED_SINCE, LAST_SEEN, INTERVAL, SLOW, STEP_SCALE, PREVIOUS, DAY0 = range(10)
SMOOTHED, MEAN, VAR, COUNT, ABOVE = 10, 12, 14, 16, 18  # two columns each: level, drift
MIN_SCALE = 20
BIN_OFFSET, BIN_SCALE, BIN_COUNT, BIN_FIRST_DAY = 21, 45, 69, 93
FIRST = BIN_OFFSET
ROW_WIDTH = 117

_UNIX_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()
_SQRT2 = math.sqrt(2)

# The shared parameters, in the order `_params` packs them.
_PARAM_NAMES = (
    "warmup",
    "settle",
    "level_rate",
    "scale_rate",
    "clip",
    "smoothing",
    "likelihood_rate",
    "min_relative_scale",
    "tail_power",
    "drift_rate",
    "gate",
    "profile_rate",
    "profile_band",
    "protect_horizon",
    "protect_weight",
    "relearn_after",
)


def _params() -> np.ndarray:
    values = []
    for name in _PARAM_NAMES:
        value = _DEFAULTS[name]
        values.append(value.total_seconds() if hasattr(value, "total_seconds") else value)
    return np.array(values, dtype=np.float64)


_PARAMS = _params()


def supports(detector: object) -> bool:
    """Whether ``detector`` can live as a row: an `EnsembleDetector` whose parameters are
    the defaults, but for ``min_scale``."""
    if type(detector) is not EnsembleDetector:
        return False
    return all(getattr(detector, name) == _DEFAULTS[name] for name in _PARAM_NAMES)


def new_row(min_scale: float = _DEFAULTS["min_scale"]) -> np.ndarray:
    """The row of a new detector (what `EnsembleDetector(min_scale=...)` starts from)."""
    row = np.zeros(ROW_WIDTH)
    row[MIN_SCALE] = min_scale
    row[BIN_FIRST_DAY : BIN_FIRST_DAY + 24] = -1.0
    return row


def row_from_detector(detector: EnsembleDetector) -> np.ndarray:
    """``detector``'s state as a row (see `supports` for which detectors fit)."""
    if not supports(detector):
        raise ValueError("only an EnsembleDetector with default parameters (but min_scale) fits")
    d = detector
    row = new_row(d.min_scale)
    scalars = (d._n, d._level, d._scale, d._protected_since, d._last_seen, d._interval,
               d._slow, d._step_scale, d._previous, d._day0)  # fmt: skip
    row[:10] = scalars
    for c in range(2):
        row[SMOOTHED + c], row[MEAN + c], row[VAR + c] = d._smoothed[c], d._mean[c], d._var[c]
        row[COUNT + c], row[ABOVE + c] = d._count[c], float(d._above[c])
    if d._first:
        row[FIRST : FIRST + len(d._first)] = d._first
    else:
        row[BIN_OFFSET : BIN_OFFSET + 24] = d._bin_offset
        row[BIN_SCALE : BIN_SCALE + 24] = d._bin_scale
        row[BIN_COUNT : BIN_COUNT + 24] = d._bin_count
        row[BIN_FIRST_DAY : BIN_FIRST_DAY + 24] = d._bin_first_day
    return row


def detector_from_row(row: np.ndarray) -> EnsembleDetector:
    """The `EnsembleDetector` whose state ``row`` holds."""
    d = EnsembleDetector(min_scale=float(row[MIN_SCALE]))
    n = int(row[N])
    d._n = n
    (d._level, d._scale, d._protected_since, d._last_seen, d._interval, d._slow,
     d._step_scale, d._previous) = (float(v) for v in row[LEVEL:DAY0])  # fmt: skip
    d._day0 = int(row[DAY0])
    d._smoothed = [float(v) for v in row[SMOOTHED : SMOOTHED + 2]]
    d._mean = [float(v) for v in row[MEAN : MEAN + 2]]
    d._var = [float(v) for v in row[VAR : VAR + 2]]
    d._count = [int(v) for v in row[COUNT : COUNT + 2]]
    d._above = [bool(v) for v in row[ABOVE : ABOVE + 2]]
    if n < d.warmup:
        d._first = array("d", row[FIRST : FIRST + n])
    else:
        d._bin_offset = array("d", row[BIN_OFFSET : BIN_OFFSET + 24])
        d._bin_scale = array("d", row[BIN_SCALE : BIN_SCALE + 24])
        d._bin_count = array("I", (int(v) for v in row[BIN_COUNT : BIN_COUNT + 24]))
        d._bin_first_day = array("i", (int(v) for v in row[BIN_FIRST_DAY : BIN_FIRST_DAY + 24]))
    return d


def update_rows(
    state: np.ndarray, rows: np.ndarray, seconds: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """Assess, then learn, each point in order: point ``i`` is ``values[i]`` at
    ``seconds[i]`` (since the epoch) of the series in row ``rows[i]`` of ``state``.

    Returns a ``(len(values), VERDICT_WIDTH)`` array, one assessment per point (its observed
    value is ``values[i]``): score, expected, lower, upper, the codes of state and component
    (`STATES`, `COMPONENTS`), confidence (the ``VERDICT_*`` columns).
    """
    out = np.empty((len(values), VERDICT_WIDTH))
    _update_rows(state, rows, seconds, values, _PARAMS, out)
    return out


@numba.njit(cache=True)
def _update_rows(state, rows, seconds, values, params, out):  # pragma: no cover - compiled
    for i in range(len(values)):
        _update(state[rows[i]], seconds[i], values[i], params, out[i])


@numba.njit(cache=True)
def _floor(s, level, min_relative_scale):  # pragma: no cover - compiled
    return max(s[MIN_SCALE], min_relative_scale * abs(level))


@numba.njit(cache=True)
def _update(s, now, value, params, out):  # pragma: no cover - compiled
    warmup, settle = params[0], params[1]
    level_rate, scale_rate, clip, smoothing = params[2], params[3], params[4], params[5]
    likelihood_rate, min_relative_scale, tail_power = params[6], params[7], params[8]
    drift_rate, gate, profile_rate, profile_band = params[9], params[10], params[11], params[12]
    horizon, protect_weight, relearn_after = params[13], params[14], params[15]

    if not math.isfinite(value):
        expected = s[LEVEL] if s[N] >= warmup else value
        out[0], out[1], out[2], out[3] = 0.0, expected, expected, expected
        out[4], out[5], out[6] = 0.0, 1.0, 0.0
        return
    hour = int((now // 3600.0) % 24.0)
    day = int(now // 86400.0) + _UNIX_EPOCH_ORDINAL

    if s[N] < warmup:
        out[0], out[1], out[2], out[3] = 0.0, value, value, value
        out[4], out[5], out[6] = 0.0, 0.0, 0.0
        _learn_clock(s, now)
        s[PREVIOUS] = value
        s[FIRST + int(s[N]) - 1] = value
        if s[N] == warmup:
            _start(s, int(warmup), min_relative_scale)
        return

    # -- evaluate (EnsembleDetector._evaluate) --
    floor = _floor(s, s[LEVEL], min_relative_scale)
    scale = max(s[SCALE], floor)
    expected, band_scale, component = s[LEVEL], scale, 2.0
    r0, r1 = value - s[LEVEL], value - s[SLOW]
    scale1 = max(s[STEP_SCALE], floor)
    components = 2 if drift_rate > 0 else 1
    floor_gate = _FLOOR_GATE * s[MIN_SCALE]
    cap = math.log1p(clip)
    tail, sm0, mean0, rem0 = _component(s, 0, r0, scale, smoothing, floor_gate, gate, cap)
    sm1 = mean1 = rem1 = 0.0
    if components == 2:
        t1, sm1, mean1, rem1 = _component(s, 1, r1, scale1, smoothing, floor_gate, gate, cap)
        if t1 < tail:
            tail = t1
            expected, band_scale, component = s[SLOW], scale1, 3.0

    if profile_rate > 0 and tail < 1.0:
        first = s[BIN_FIRST_DAY + hour]
        if 0 <= first < day - s[DAY0]:
            usual = s[SLOW] + s[BIN_OFFSET + hour]
            spread = max(s[BIN_SCALE + hour], floor)
            if abs(value - usual) <= profile_band * spread:
                tail, expected, component = 1.0, usual, 4.0
                band_scale = profile_band * spread / gate
    score = 1.0 - max(tail, _MIN_TAIL) ** tail_power
    index = s[N] + 1
    if index < settle:
        score, tail, state_code = 0.0, 1.0, 0.0
    else:
        state_code = 2.0 if component == 4.0 else 1.0
    band = gate * band_scale
    out[0], out[1], out[2], out[3] = score, expected, expected - band, expected + band
    out[4], out[5], out[6] = state_code, component, min(1.0, index / settle)

    # -- learn (EnsembleDetector._learn) --
    _learn_clock(s, now)
    interval = s[INTERVAL]
    protect_tail = min(_MAX_PROTECT_TAIL, interval / horizon) if interval != 0.0 else 0.0
    if tail > protect_tail:
        s[PROTECTED_SINCE] = 0.0
    elif s[PROTECTED_SINCE] == 0.0:
        s[PROTECTED_SINCE] = now
    relearn = now - s[PROTECTED_SINCE] >= relearn_after
    k = 1.0 if s[PROTECTED_SINCE] == 0.0 or relearn else protect_weight
    bound = clip * scale  # the level and scale have not moved since the evaluation
    s[LEVEL] += k * level_rate * max(-bound, min(bound, r0))
    s[SCALE] += k * scale_rate * (min(abs(r0), bound) - s[SCALE])
    if profile_rate > 0:
        if s[DAY0] == 0.0:
            s[DAY0] = day
        if s[BIN_FIRST_DAY + hour] < 0:
            s[BIN_FIRST_DAY + hour] = day - s[DAY0]
        if s[BIN_COUNT + hour] * profile_rate < 1:
            s[BIN_COUNT + hour] += 1
        w = k * max(profile_rate, 1.0 / s[BIN_COUNT + hour])
        d = value - s[SLOW] - s[BIN_OFFSET + hour]
        s[BIN_OFFSET + hour] += w * d
        s[BIN_SCALE + hour] += w * (abs(d) - s[BIN_SCALE + hour])
    if drift_rate > 0:
        step_bound = clip * max(s[STEP_SCALE], floor)
        step = min(abs(value - s[PREVIOUS]) * _DIFF_TO_SIGMA, step_bound)
        s[STEP_SCALE] += k * scale_rate * (step - s[STEP_SCALE])
        s[SLOW] += k * drift_rate * max(-step_bound, min(step_bound, r1))
    s[PREVIOUS] = value
    _learn_component(s, 0, r0, sm0, mean0, rem0, k, likelihood_rate)
    if components == 2:
        _learn_component(s, 1, r1, sm1, mean1, rem1, k, likelihood_rate)


@numba.njit(cache=True)
def _component(s, c, r, c_scale, smoothing, floor_gate, gate, cap):  # pragma: no cover
    """Component ``c``'s tail probability (1: it does not count), smoothed surprise, the
    mean it is compared to, and what it remembers of the surprise."""
    surprise = math.log1p(abs(r) / c_scale)
    count = s[COUNT + c]
    before = s[SMOOTHED + c]
    if s[PROTECTED_SINCE] != 0.0 and (r > 0) != (s[ABOVE + c] != 0.0):
        before = s[MEAN + c]
    sm = surprise if count == 0 else before + smoothing * (surprise - before)
    mean = sm if count == 0 else s[MEAN + c]
    tail = 1.0
    if count >= _MIN_HISTORY and abs(r) > max(floor_gate, gate * c_scale):
        sd = math.sqrt(s[VAR + c]) + 1e-3
        tail = 0.5 * math.erfc((sm - mean) / sd / _SQRT2)
    remembered = sm
    if count != 0 and c == 1:
        remembered -= smoothing * max(0.0, surprise - cap)
    return tail, sm, mean, remembered


@numba.njit(cache=True)
def _learn_component(s, c, r, sm, mean, remembered, k, likelihood_rate):  # pragma: no cover
    s[COUNT + c] += 1
    w = k * max(likelihood_rate, 1.0 / s[COUNT + c])
    d = sm - mean
    s[SMOOTHED + c] = remembered
    s[ABOVE + c] = 1.0 if r > 0 else 0.0
    s[MEAN + c] = mean + w * d
    s[VAR + c] = (1 - w) * (s[VAR + c] + w * d * d)


@numba.njit(cache=True)
def _learn_clock(s, now):  # pragma: no cover - compiled
    """The count of points and the typical spacing, as `EnsembleDetector._learn` keeps them."""
    s[N] += 1
    gap = now - s[LAST_SEEN]
    if s[LAST_SEEN] != 0.0 and gap > 0:
        if s[INTERVAL] != 0.0:
            s[INTERVAL] += _INTERVAL_RATE * (min(gap, 10 * s[INTERVAL]) - s[INTERVAL])
        else:
            s[INTERVAL] = gap
    s[LAST_SEEN] = now


@numba.njit(cache=True)
def _start(s, warmup, min_relative_scale):  # pragma: no cover - compiled
    first = np.sort(s[FIRST : FIRST + warmup].copy())
    level = first[warmup // 2]
    mad = np.sort(np.abs(first - level))[warmup // 2] * MEDIAN_AD_TO_SIGMA
    spread = max(mad, (first[-1] - first[0]) / 6)
    s[LEVEL] = level
    s[SCALE] = max(spread / MEAN_AD_TO_SIGMA, _floor(s, level, min_relative_scale))
    s[BIN_OFFSET:BIN_FIRST_DAY] = 0.0
    s[BIN_FIRST_DAY : BIN_FIRST_DAY + 24] = -1.0
    s[SLOW], s[STEP_SCALE] = level, s[SCALE]
