"""`ForecasterRows`: many `IntervalForecaster`s of one configuration as rows of arrays, learned
by one compiled call (numba).

A service's planner keeps a forecaster per signal and teaches all of them at every step; in
Python each learned value cost about 60 µs (horizon 3, a daily season), mostly interpreting
small loops. Here forecaster ``r`` is row ``r`` of a few arrays and `learn` updates the rows
given in one call. The arithmetic is `IntervalForecaster`'s (see it for the method), in the
same order, with the same single-precision storage of the seasonal profile and the pending
forecasts, so a forecaster pickled before rows existed goes on with the same forecasts
(a test holds it to that, bit for bit).

Row layout (float64): the count of values learned, their mean absolute value (the error
floor's scale), the three plain and three deseasonalised levels, a ring of the last five
values, and per anchor step the components' mean absolute errors, the blend's, the interval
width in those errors and the ring of its pending forecasts. Single precision: the seasonal
profile and latest season (``bins`` each) and the pending forecasts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numba
import numpy as np

from airis.operators.gaussian import MEAN_AD_TO_SIGMA

__all__ = ["PARAMETERS", "Forecast", "ForecasterRows", "anchors_of", "plan_of"]

#: A forecaster's parameters, in the order `ForecasterRows` takes them after ``rows``.
PARAMETERS = (
    "horizon", "season", "coverage", "bins", "season_rate", "error_rate", "quantile_rate",
    "warmup",
)  # fmt: skip

#: Smoothing weights of the level of each component: 1.0 is the naive "last value" forecast,
#: the smaller ones revert to a recent mean (what a noisy, stationary series wants).
LEVEL_RATES = (1.0, 0.3, 0.05)
#: Floor of every tracked error, relative to the series' typical magnitude: stops a component
#: that was exact for a while (a flat stretch) from taking all the weight forever.
ERROR_FLOOR = 1e-9
#: Sharpness of the blend: weights are (error floor / error) ** POWER (measured on NAB:
#: 2 blends too evenly, 6 and 20 do about equally well).
POWER = 6.0
MEDIAN_OF = 5

# Columns of a row (float64).
_COUNT, _SCALE, _LEVELS, _PLAIN, _RECENT = 0, 1, 2, 5, 8
_RECENT_N, _RECENT_AT = _RECENT + MEDIAN_OF, _RECENT + MEDIAN_OF + 1
_ANCHORS = _RECENT_AT + 1
# Per anchor, after its components' errors: the blend's error, the width, the ring's length
# and the position of its oldest forecast.
_ABS, _WIDTH, _RING_N, _RING_AT = 0, 1, 2, 3
#: The arrays that hold the rows, in `_blank`'s order.
_ARRAYS = ("_state", "_season_state", "_seen", "_pending", "_means")


@dataclass(frozen=True, slots=True)
class Forecast:
    """Forecasts for the next ``len(mean)`` steps, with a prediction interval around each.

    ``lower[i] <= mean[i] <= upper[i]``; the interval of step ``i + 1`` is meant to hold the
    value with probability ``coverage`` (empirically calibrated on past errors, not assumed).
    ``ready`` is False during warm-up, while the intervals still rest on too few errors.
    """

    mean: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    coverage: float
    ready: bool


def anchors_of(horizon: int) -> tuple[int, ...]:
    """The steps whose errors are tracked: 1, 2, 4, … and ``horizon``."""
    return tuple(sorted({min(2**k, horizon) for k in range(horizon.bit_length() + 1)}))


def plan_of(anchors: tuple[int, ...], horizon: int) -> tuple[tuple[int, int, float], ...]:
    """Per step 1..horizon: the anchors around it and its position between them in log-step."""
    plan = []
    for h in range(1, horizon + 1):
        hi = next(i for i, a in enumerate(anchors) if a >= h)
        lo = hi if anchors[hi] == h else hi - 1
        x = 0.0 if lo == hi else math.log(h / anchors[lo]) / math.log(anchors[hi] / anchors[lo])
        plan.append((lo, hi, x))
    return tuple(plan)


class ForecasterRows:
    """``rows`` forecasters of one configuration (`IntervalForecaster`'s parameters).

    Examples
    --------
    >>> import math
    >>> rows = ForecasterRows(2, horizon=2, season=None, warmup=3)
    >>> for t in range(20):
    ...     rows.learn([0, 1], [10.0, 5 + math.sin(t)])
    >>> f = rows.forecast(0)
    >>> f.ready, f.mean, f.lower == f.upper == f.mean
    (True, (10.0, 10.0), True)
    >>> rows.forecast(1).upper[1] > rows.forecast(1).mean[1] > rows.forecast(1).lower[1]
    True
    """

    def __init__(
        self,
        rows: int,
        horizon: int = 12,
        season: int | None = None,
        coverage: float = 0.9,
        bins: int = 288,
        season_rate: float = 0.2,
        error_rate: float = 0.02,
        quantile_rate: float = 0.05,
        warmup: int = 50,
    ) -> None:
        if horizon < 1:
            raise ValueError(f"IntervalForecaster: horizon must be >= 1, got {horizon}")
        if season is not None and season < 2:
            raise ValueError(f"IntervalForecaster: season must be None or >= 2, got {season}")
        if not 0 < coverage < 1:
            raise ValueError(f"IntervalForecaster: coverage must be in (0, 1), got {coverage}")
        if bins < 1:
            raise ValueError(f"IntervalForecaster: bins must be >= 1, got {bins}")
        self.horizon = horizon
        self.season = season
        self.coverage = coverage
        self.bins = bins
        self.season_rate = season_rate
        self.error_rate = error_rate
        self.quantile_rate = quantile_rate
        self.warmup = warmup
        self._setup()
        self._state, self._season_state, self._seen, self._pending, self._means = self._blank(rows)

    def _blank(self, rows: int) -> tuple[np.ndarray, ...]:
        """The arrays of ``rows`` forecasters that have learned nothing."""
        n_bins, n_comp, anchors = self._n_bins, self._n_comp, self._anchors
        state = np.zeros((rows, self._width), dtype=np.float64)
        state[:, _LEVELS : _LEVELS + 6] = math.nan
        # Interval half-widths in mean absolute errors, starting where a Gaussian's would be.
        z = NormalDist().inv_cdf(0.5 + self.coverage / 2) * MEAN_AD_TO_SIGMA
        for i in range(len(anchors)):
            base = _ANCHORS + i * (n_comp + 4)
            state[:, base : base + n_comp + 1] = math.nan
            state[:, base + n_comp + _WIDTH] = z
        season_state = np.zeros((rows, 2 * n_bins), dtype=np.float32)
        season_state[:, n_bins:] = math.nan  # the latest season: none yet
        seen = np.zeros((rows, n_bins), dtype=np.uint8)
        pending = np.zeros((rows, sum(anchors) * (n_comp + 1)), dtype=np.float32)
        means = np.zeros((rows, self.horizon), dtype=np.float64)
        return state, season_state, seen, pending, means

    def add_row(self) -> int:
        """Add a forecaster that has learned nothing; return its row."""
        row = len(self._state)
        for name, blank in zip(_ARRAYS, self._blank(1), strict=True):
            setattr(self, name, np.concatenate([getattr(self, name), blank]))
        return row

    def _setup(self) -> None:
        """What follows from the parameters (not pickled)."""
        horizon, season = self.horizon, self.season
        self._anchors = anchors_of(horizon)
        self._n_bins = min(season, self.bins) if season else 0
        self._n_comp = len(LEVEL_RATES) * (2 if season else 1) + (1 if self._n_bins else 0) + 1
        self._width = _ANCHORS + len(self._anchors) * (self._n_comp + 4)
        self._plan = plan_of(self._anchors, horizon)
        #: Where each anchor's errors start in a row (`forecast` reads their width and size).
        self._bases = [
            _ANCHORS + i * (self._n_comp + 4) + self._n_comp for i in range(len(self._anchors))
        ]
        self._config = (
            np.array(self._anchors, dtype=np.int64),
            np.array(self._plan, dtype=np.float64).reshape(horizon, 3),
            np.array(
                [season or 0, self._n_bins, self._n_comp, self.season_rate, self.error_rate,
                 self.quantile_rate, self.coverage, POWER, horizon],
                dtype=np.float64,
            ),
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self._state)

    def __repr__(self) -> str:
        return f"ForecasterRows({len(self)}, horizon={self.horizon}, season={self.season})"

    def learn(self, rows: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray) -> None:
        """Learn ``values[i]`` as the next value of forecaster ``rows[i]``, in order
        (non-finite values are ignored)."""
        _learn_rows(
            self._state, self._season_state, self._seen, self._pending, self._means,
            np.asarray(rows, dtype=np.int64), np.asarray(values, dtype=np.float64),
            *self._config,
        )  # fmt: skip

    def learned(self, row: int) -> int:
        """How many values forecaster ``row`` has learned."""
        return int(self._state[row, _COUNT])

    def forecast(self, row: int) -> Forecast:
        """Forecaster ``row``'s next ``horizon`` values with their intervals (all zeros before
        its first value)."""
        state = self._state[row].tolist()  # Python floats: the same arithmetic, less of it
        count = state[_COUNT]
        if count == 0:
            zeros = (0.0,) * self.horizon
            return Forecast(zeros, zeros, zeros, self.coverage, False)
        bases = self._bases
        half_widths = [state[b + _WIDTH] * state[b + _ABS] for b in bases]
        means, lows, highs = [], [], []
        for mean, (lo, hi, x) in zip(self._means[row].tolist(), self._plan, strict=True):
            q = _between(half_widths[lo], half_widths[hi], x)
            q = 0.0 if math.isnan(q) else q
            means.append(mean)
            lows.append(mean - q)
            highs.append(mean + q)
        ready = count >= self.warmup and not math.isnan(state[bases[-1] + _ABS])
        return Forecast(tuple(means), tuple(lows), tuple(highs), self.coverage, ready)

    @classmethod
    def stacked(cls, parts: Sequence[ForecasterRows]) -> ForecasterRows:
        """The rows of ``parts`` (one configuration) as one `ForecasterRows`, in order."""
        first = parts[0]
        out = cls.__new__(cls)
        out.__dict__.update({k: v for k, v in first.__getstate__().items()})
        for name in _ARRAYS:
            setattr(out, name, np.concatenate([getattr(p, name) for p in parts]))
        out._setup()
        return out

    @classmethod
    def from_objects(cls, old: dict) -> ForecasterRows:
        """The row of an `IntervalForecaster` pickled when it kept its state in Python
        objects (``old`` is that pickle's state)."""
        rows = cls(1, *(old[k] for k in PARAMETERS))
        s, n_comp = rows._state[0], rows._n_comp
        s[_COUNT], s[_SCALE] = old["_count"], old["_scale"]
        s[_LEVELS : _LEVELS + 3], s[_PLAIN : _PLAIN + 3] = old["_levels"], old["_plain"]
        recent = list(old["_recent"])
        s[_RECENT : _RECENT + len(recent)] = recent
        s[_RECENT_N], s[_RECENT_AT] = len(recent), len(recent) % MEDIAN_OF
        ring = 0
        for i, anchor in enumerate(rows._anchors):
            base = _ANCHORS + i * (n_comp + 4)
            at = base + n_comp
            s[base:at] = old["_comp_error"][i]
            s[at + _ABS], s[at + _WIDTH] = old["_abs_error"][i], old["_width"][i]
            comps, means = old["_pending_comp"][i], old["_pending_mean"][i]
            s[at + _RING_N], s[at + _RING_AT] = len(means), 0
            for k, mean in enumerate(means):
                slot = ring + k * (n_comp + 1)
                rows._pending[0, slot : slot + n_comp] = comps[k * n_comp : (k + 1) * n_comp]
                rows._pending[0, slot + n_comp] = mean
            ring += anchor * (n_comp + 1)
        n_bins = rows._n_bins
        if n_bins:
            rows._season_state[0, :n_bins] = np.frombuffer(old["_profile"], dtype=np.float32)
            rows._season_state[0, n_bins:] = np.frombuffer(old["_last_season"], dtype=np.float32)
            rows._seen[0] = np.frombuffer(old["_seen"], dtype=np.uint8)
        rows.refresh()
        return rows

    def __getstate__(self) -> dict:
        # The blended means are a cache (rebuilt from the state); the config follows from the
        # parameters.
        skip = {"_means", "_anchors", "_n_bins", "_n_comp", "_width", "_plan", "_bases", "_config"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._setup()
        self._means = np.zeros((len(self._state), self.horizon), dtype=np.float64)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the blended means from the state (after unpickling or editing rows)."""
        _refresh_rows(
            self._state, self._season_state, self._seen, self._means, *self._config
        )  # fmt: skip


def _between(a: float, b: float, x: float) -> float:
    """Linear interpolation from ``a`` (x = 0) to ``b`` (x = 1); one side if the other is nan."""
    if math.isnan(a):
        return b
    if math.isnan(b):
        return a
    return a + x * (b - a)


# ---- compiled --------------------------------------------------------------------------------


@numba.njit(cache=True)
def _learn_rows(  # pragma: no cover - compiled
    state, season, seen, pending, means, rows, values, anchors, plan, p
):
    horizon, n_comp = int(p[8]), int(p[2])
    comps = np.empty((horizon, n_comp))
    for i in range(len(rows)):
        y = values[i]
        if not math.isfinite(y):
            continue
        r = rows[i]
        s = state[r]
        _score_pending(s, pending[r], y, anchors, p)
        _update_state(s, season[r], seen[r], y, p)
        s[_COUNT] += 1.0
        _components(s, season[r], seen[r], comps, p)
        _blend(s, comps, means[r], anchors, plan, p)
        _store_pending(s, pending[r], comps, means[r], anchors, p)


@numba.njit(cache=True)
def _refresh_rows(state, season, seen, means, anchors, plan, p):  # pragma: no cover - compiled
    horizon, n_comp = int(p[8]), int(p[2])
    comps = np.empty((horizon, n_comp))
    for r in range(len(state)):
        if state[r, _COUNT] > 0:
            _components(state[r], season[r], seen[r], comps, p)
            _blend(state[r], comps, means[r], anchors, plan, p)


@numba.njit(cache=True)
def _floor(s):  # pragma: no cover - compiled
    return max(ERROR_FLOOR, 1e-6 * s[_SCALE])


@numba.njit(cache=True)
def _bin(position, p):  # pragma: no cover - compiled
    period = int(p[0]) if p[0] > 0 else 1
    return (position % period) * int(p[1]) // period


@numba.njit(cache=True)
def _score_pending(s, pending, y, anchors, p):  # pragma: no cover - compiled
    n_comp, rate, quantile_rate, coverage = int(p[2]), p[4], p[5], p[6]
    ring = 0  # where anchor i's pending forecasts start
    for i in range(len(anchors)):
        anchor = anchors[i]
        base = _ANCHORS + i * (n_comp + 4)
        at = base + n_comp
        start = ring
        ring += anchor * (n_comp + 1)
        n = int(s[at + _RING_N])
        if n < anchor:
            continue
        oldest = int(s[at + _RING_AT])
        slot = start + oldest * (n_comp + 1)
        for c in range(n_comp):
            err = abs(y - pending[slot + c])
            prev = s[base + c]
            s[base + c] = err if math.isnan(prev) else prev + rate * (err - prev)
        err = abs(y - pending[slot + n_comp])
        s[at + _RING_AT] = (oldest + 1) % anchor
        s[at + _RING_N] = n - 1
        prev = s[at + _ABS]
        if not math.isnan(prev):
            # Adaptive conformal step on the interval's width in mean absolute errors: up by
            # `coverage` * rate when missed, down by (1 - coverage) * rate when covered, so
            # the long-run miss rate settles at 1 - coverage.
            miss = 1.0 if err > s[at + _WIDTH] * max(prev, _floor(s)) else 0.0
            step = quantile_rate * (miss - (1 - coverage))
            s[at + _WIDTH] = max(0.0, s[at + _WIDTH] + step)
        s[at + _ABS] = err if math.isnan(prev) else prev + rate * (err - prev)


@numba.njit(cache=True)
def _update_state(s, season, seen, y, p):  # pragma: no cover - compiled
    n_bins, season_rate = int(p[1]), p[3]
    at = int(s[_RECENT_AT])
    s[_RECENT + at] = y
    s[_RECENT_AT] = (at + 1) % MEDIAN_OF
    s[_RECENT_N] = min(s[_RECENT_N] + 1.0, MEDIAN_OF)
    count = int(s[_COUNT])
    s[_SCALE] += (abs(y) - s[_SCALE]) / min(count + 1, 1000)
    offset = 0.0
    b = -1
    if n_bins:
        b = _bin(count, p)
        offset = season[b] if seen[b] else 0.0
    for k in range(len(LEVEL_RATES)):
        a = LEVEL_RATES[k]
        prev = s[_LEVELS + k]
        value = y - offset
        s[_LEVELS + k] = value if math.isnan(prev) else prev + a * (value - prev)
        prev = s[_PLAIN + k]
        s[_PLAIN + k] = y if math.isnan(prev) else prev + a * (y - prev)
    if b >= 0:
        base = s[_LEVELS + len(LEVEL_RATES) - 1]
        rate = season_rate if seen[b] else 1.0
        season[b] = season[b] + rate * (y - base - season[b])
        seen[b] = 1
        # The latest season, bin by bin (exactly the values when season <= bins): the
        # seasonal-naive forecast, best where each day repeats the previous one.
        season[n_bins + b] = y


@numba.njit(cache=True)
def _median_of_recent(s):  # pragma: no cover - compiled
    n = int(s[_RECENT_N])
    data = np.sort(s[_RECENT : _RECENT + n])
    if n % 2:
        return data[n // 2]
    return (data[n // 2 - 1] + data[n // 2]) / 2


@numba.njit(cache=True)
def _components(s, season, seen, comps, p):  # pragma: no cover - compiled
    """Per step 1..horizon, the forecast of every component."""
    n_bins, horizon = int(p[1]), int(p[8])
    median = _median_of_recent(s)
    count = int(s[_COUNT])
    for h in range(horizon):
        comps[h, 0] = s[_PLAIN]
        comps[h, 1] = s[_PLAIN + 1]
        comps[h, 2] = s[_PLAIN + 2]
        comps[h, 3] = median
        if n_bins:
            b = _bin(count + h, p)
            offset = season[b] if seen[b] else 0.0
            comps[h, 4] = s[_LEVELS] + offset
            comps[h, 5] = s[_LEVELS + 1] + offset
            comps[h, 6] = s[_LEVELS + 2] + offset
            last = season[n_bins + b]
            comps[h, 7] = s[_PLAIN] if math.isnan(last) else last


@numba.njit(cache=True)
def _blend(s, comps, means, anchors, plan, p):  # pragma: no cover - compiled
    """Per step, the weighted median of the components' forecasts."""
    n_comp, power, horizon = int(p[2]), p[7], int(p[8])
    floor = _floor(s)
    weights = np.empty(n_comp)
    order = np.empty(n_comp, dtype=np.int64)
    for h in range(horizon):
        lo, hi, x = int(plan[h, 0]), int(plan[h, 1]), plan[h, 2]
        lo_base, hi_base = _ANCHORS + lo * (n_comp + 4), _ANCHORS + hi * (n_comp + 4)
        total = 0.0
        for c in range(n_comp):
            a, b = s[lo_base + c], s[hi_base + c]
            err = b if math.isnan(a) else (a if math.isnan(b) else a + x * (b - a))
            weights[c] = 1.0 if math.isnan(err) else (floor / max(err, floor)) ** power
            total += weights[c]
        half = total / 2
        # A median, not a mean: it returns one component's value, so a series that is mostly
        # exactly 0 gets exactly 0 (measured on NAB: the weighted mean lost to seasonal-naive
        # on sMAPE there, and did no better elsewhere). Sorted by (value, weight), stably.
        for c in range(n_comp):
            j = c
            while j > 0 and _before(comps[h, c], weights[c], comps[h, order[j - 1]],
                                    weights[order[j - 1]]):  # fmt: skip
                order[j] = order[j - 1]
                j -= 1
            order[j] = c
        value = comps[h, order[n_comp - 1]]
        acc = 0.0
        for k in range(n_comp):
            acc += weights[order[k]]
            if acc >= half:
                value = comps[h, order[k]]
                break
        means[h] = value


@numba.njit(cache=True)
def _before(v, w, v_other, w_other):  # pragma: no cover - compiled
    return v < v_other or (v == v_other and w < w_other)


@numba.njit(cache=True)
def _store_pending(s, pending, comps, means, anchors, p):  # pragma: no cover - compiled
    n_comp = int(p[2])
    ring = 0
    for i in range(len(anchors)):
        anchor = anchors[i]
        at = _ANCHORS + i * (n_comp + 4) + n_comp
        n = int(s[at + _RING_N])
        slot = ring + ((int(s[at + _RING_AT]) + n) % anchor) * (n_comp + 1)
        for c in range(n_comp):
            pending[slot + c] = comps[anchor - 1, c]
        pending[slot + n_comp] = means[anchor - 1]
        s[at + _RING_N] = n + 1
        ring += anchor * (n_comp + 1)
