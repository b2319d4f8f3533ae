"""Online multi-step forecasts with conformal prediction intervals, for every series of the flow.

`IntervalForecaster` combines a few simple forecasters (exponential smoothing with and without a
seasonal profile, seasonal-naive, a rolling median) by their recent error at each horizon step,
and wraps the result in intervals from its own past errors (conformal-style, per horizon step).
"""

from __future__ import annotations

import functools
import math
import statistics
from array import array
from collections import deque
from dataclasses import dataclass
from statistics import NormalDist

from airis.operators.gaussian import MEAN_AD_TO_SIGMA

__all__ = ["Forecast", "IntervalForecaster"]


#: Smoothing weights of the level of each component: 1.0 is the naive "last value" forecast,
#: the smaller ones revert to a recent mean (what a noisy, stationary series wants).
_LEVEL_RATES = (1.0, 0.3, 0.05)
#: Floor of every tracked error, relative to the series' typical magnitude: stops a component
#: that was exact for a while (a flat stretch) from taking all the weight forever.
_ERROR_FLOOR = 1e-9
#: Sharpness of the blend: weights are (error floor / error) ** _POWER (measured on NAB:
#: 2 blends too evenly, 6 and 20 do about equally well).
_POWER = 6
_MEDIAN_OF = 5
_WEIGHTED_MEDIAN = True


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


class IntervalForecaster:
    """Blended exponential smoothing with per-step conformal prediction intervals.

    Components, each a forecast of the next ``horizon`` values:

    * **level** ``a`` for each rate ``a`` in (1.0, 0.3, 0.05): an exponentially weighted level,
      flat over the horizon (rate 1.0 is the naive "last value" forecast);
    * **median**: the median of the last 5 values (robust; exactly 0 on a mostly-zero series);
    * with a ``season`` only — **seasonal** ``a``: the same levels of the deseasonalised series
      plus a seasonal profile of ``min(season, bins)`` bins, each the exponentially weighted
      offset (weight ``season_rate`` per visit) of its values from the slowest level; and
      **seasonal-naive**: the latest value of the step's bin. A season longer than ``bins``
      points shares one bin between neighbouring points, so a daily profile of 10-second
      points still costs ``bins`` floats.

    Each component's exponentially weighted mean absolute error (weight ``error_rate``) is
    tracked at a few *anchor* steps (1, 2, 4, … and ``horizon``) and interpolated in
    log-step in between; the forecast at step ``h`` is the weighted median of the components,
    weighted by ``error ** -6``: in effect the component that has lately been best at that
    step, so the naive forecast may lead at step 1 and a seasonal one at step 12.

    Intervals are ``forecast ± k_h * mae_h``: ``mae_h`` is the forecast's own mean absolute
    error at step ``h``, and ``k_h`` starts at the Gaussian value for ``coverage`` and moves
    after each scored error by ``quantile_rate * coverage`` up on a miss and
    ``quantile_rate * (1 - coverage)`` down on a hit (adaptive conformal inference), so the
    long-run share of values inside settles at ``coverage``. Everything is strictly causal:
    the forecast after ``learn_one(y_t)`` uses values up to ``y_t`` only, and an error at step
    ``h`` is only known ``h`` points later.

    State: ``bins`` profile and ``bins`` seasonal-naive floats plus about
    ``9 * sum(anchors)`` pending forecasts (a few KiB at the defaults; pickled about 5 KiB for
    ``horizon=12, season=288``). Points are assumed regularly spaced (a gap shifts the seasonal
    phase). The first ``warmup`` points only learn: `forecast` works from the first point on,
    but its ``ready`` flag is False until then. Non-finite values are ignored.

    Parameters
    ----------
    horizon
        Steps to forecast.
    season
        Points per season (e.g. one day), or None for none.
    coverage
        Target probability that a value falls inside its interval.
    bins
        Largest number of seasonal profile bins.
    season_rate
        Weight of a new value in its seasonal bin.
    error_rate
        Weight of a new absolute error in the blend's error tracking.
    quantile_rate
        Step of the interval widths (in mean absolute errors) after each scored error.
    warmup
        Points learned before the forecast counts as ready.

    Examples
    --------
    >>> import math, random
    >>> rng = random.Random(42)
    >>> model = IntervalForecaster(horizon=3, season=24)
    >>> inside = total = 0
    >>> pending = []
    >>> for t in range(24 * 40):
    ...     y = 10 + 3 * math.sin(2 * math.pi * t / 24) + rng.gauss(0, 0.5)
    ...     if len(pending) == 3 and t > 24 * 20:
    ...         lo, hi = pending[0]
    ...         inside += lo <= y <= hi
    ...         total += 1
    ...     model.learn_one(y)
    ...     f = model.forecast()
    ...     pending = (pending + [(f.lower[2], f.upper[2])])[-3:]
    >>> f.ready, len(f.mean), round(inside / total, 1)
    (True, 3, 0.9)
    >>> round(f.upper[0] - f.lower[0], 1) < 2.5
    True

    References
    ----------
    [^1]: Hyndman, R. J., & Athanasopoulos, G. (2021). Forecasting: principles and practice,
       3rd ed., ch. 8 (exponential smoothing).
    [^2]: Gibbs, I., & Candès, E. (2021). Adaptive conformal inference under distribution
       shift. NeurIPS.
    """

    def __init__(
        self,
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

        anchors = sorted({min(2**k, horizon) for k in range(horizon.bit_length() + 1)})
        self._anchors = tuple(anchors)
        self._n_bins = min(season, bins) if season else 0
        self._n_comp = len(_LEVEL_RATES) * (2 if season else 1) + (1 if self._n_bins else 0) + 1
        self._recent: deque[float] = deque(maxlen=_MEDIAN_OF)
        self._last_season = array("f", [math.nan] * self._n_bins)
        # Single precision where the state scales with the season or horizon: half the bytes.
        self._profile = array("f", [0.0] * self._n_bins)
        self._seen = array("B", [0] * self._n_bins)
        self._levels = array("d", [math.nan] * len(_LEVEL_RATES))
        self._plain = array("d", [math.nan] * len(_LEVEL_RATES))
        self._count = 0
        self._scale = 0.0  # mean absolute value: the floor of errors and quantile steps
        # Per anchor: the pending component forecasts (a ring of `anchor` vectors) and the
        # pending blended forecasts, each stored when made and scored `anchor` points later.
        self._pending_comp = [array("f") for _ in anchors]
        self._pending_mean = [array("f") for _ in anchors]
        self._comp_error = [array("d", [math.nan] * self._n_comp) for _ in anchors]
        self._abs_error = array("d", [math.nan] * len(anchors))
        self._means: list[float] | None = None  # cache of the latest blended forecast
        # Interval half-widths in mean absolute errors, starting where a Gaussian's would be.
        z = NormalDist().inv_cdf(0.5 + coverage / 2)
        self._width = array("d", [z * MEAN_AD_TO_SIGMA] * len(anchors))

    # ---- learning --------------------------------------------------------------------------

    def learn_one(self, y: float) -> None:
        """Learn the next value of the series (score the pending forecasts, then update)."""
        if not math.isfinite(y):
            return
        self._score_pending(y)
        self._update_state(y)
        self._count += 1
        self._store_pending()

    def _score_pending(self, y: float) -> None:
        rate = self.error_rate
        for i, anchor in enumerate(self._anchors):
            comp, mean = self._pending_comp[i], self._pending_mean[i]
            if len(mean) < anchor:
                continue
            errors = self._comp_error[i]
            for c in range(self._n_comp):
                err = abs(y - comp[c])
                errors[c] = err if math.isnan(errors[c]) else errors[c] + rate * (err - errors[c])
            del comp[: self._n_comp]
            err = abs(y - mean[0])
            del mean[:1]
            prev = self._abs_error[i]
            if not math.isnan(prev):
                # Adaptive conformal step on the interval's width in mean absolute errors: up
                # by `coverage` * rate when missed, down by (1 - coverage) * rate when covered,
                # so the long-run miss rate settles at 1 - coverage.
                miss = 1.0 if err > self._width[i] * max(prev, self._floor()) else 0.0
                step = self.quantile_rate * (miss - (1 - self.coverage))
                self._width[i] = max(0.0, self._width[i] + step)
            self._abs_error[i] = err if math.isnan(prev) else prev + rate * (err - prev)

    def _update_state(self, y: float) -> None:
        self._recent.append(y)
        self._scale += (abs(y) - self._scale) / min(self._count + 1, 1000)
        offset = 0.0
        b = -1
        if self._n_bins:
            b = self._bin(self._count)
            offset = self._profile[b] if self._seen[b] else 0.0
        for k, a in enumerate(_LEVEL_RATES):
            for levels, value in ((self._levels, y - offset), (self._plain, y)):
                prev = levels[k]
                levels[k] = value if math.isnan(prev) else prev + a * (value - prev)
        if b >= 0:
            base = self._levels[-1]
            rate = self.season_rate if self._seen[b] else 1.0
            self._profile[b] += rate * (y - base - self._profile[b])
            self._seen[b] = 1
            # The latest season, bin by bin (exactly the values when season <= bins): the
            # seasonal-naive forecast, best where each day repeats the previous one.
            self._last_season[b] = y

    def _store_pending(self) -> None:
        comps = self._components()
        self._means = self._blend(comps)
        for i, anchor in enumerate(self._anchors):
            self._pending_comp[i].extend(comps[anchor - 1])
            self._pending_mean[i].append(self._means[anchor - 1])

    # ---- forecasting -----------------------------------------------------------------------

    def forecast(self) -> Forecast:
        """The next ``horizon`` values with their intervals (all zeros before the first value)."""
        if self._count == 0:
            zeros = (0.0,) * self.horizon
            return Forecast(zeros, zeros, zeros, self.coverage, False)
        if self._means is None:  # just unpickled: the cache is rebuilt from the state
            self._means = self._blend(self._components())
        half_widths = [w * e for w, e in zip(self._width, self._abs_error, strict=True)]
        means, lows, highs = [], [], []
        for h, (lo, hi, x) in enumerate(_plan(self._anchors, self.horizon)):
            mean = self._means[h]
            q = _between(half_widths[lo], half_widths[hi], x)
            q = 0.0 if math.isnan(q) else q
            means.append(mean)
            lows.append(mean - q)
            highs.append(mean + q)
        ready = self._count >= self.warmup and not math.isnan(self._abs_error[-1])
        return Forecast(tuple(means), tuple(lows), tuple(highs), self.coverage, ready)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_means"] = None  # a cache: not worth its bytes in every snapshot
        return state

    def _components(self) -> list[list[float]]:
        """Per step 1..horizon, the forecast of every component."""
        plain = list(self._plain)
        plain.append(statistics.median(self._recent))
        if not self._n_bins:
            return [plain] * self.horizon
        out = []
        for h in range(1, self.horizon + 1):
            b = self._bin(self._count - 1 + h)
            offset = self._profile[b] if self._seen[b] else 0.0
            last = self._last_season[b]
            out.append(
                plain
                + [level + offset for level in self._levels]
                + [self._plain[0] if math.isnan(last) else last]
            )
        return out

    def _blend(self, comps: list[list[float]]) -> list[float]:
        """Per step, the weighted median of the components' forecasts."""
        floor = self._floor()
        errors = self._comp_error
        means = []
        for h, (lo, hi, x) in enumerate(_plan(self._anchors, self.horizon)):
            weights = []
            for c in range(self._n_comp):
                err = _between(errors[lo][c], errors[hi][c], x)
                weights.append(1.0 if math.isnan(err) else (floor / max(err, floor)) ** _POWER)
            # A median, not a mean: it returns one component's value, so a series that is
            # mostly exactly 0 gets exactly 0 (measured on NAB: the weighted mean lost to
            # seasonal-naive on sMAPE there, and did no better elsewhere).
            half = sum(weights) / 2
            acc = 0.0
            pairs = sorted(zip(comps[h], weights, strict=True))
            value = pairs[-1][0]
            for v, w in pairs:
                acc += w
                if acc >= half:
                    value = v
                    break
            means.append(value)
        return means

    def _bin(self, position: int) -> int:
        season = self.season or 1
        return (position % season) * self._n_bins // season

    def _floor(self) -> float:
        return max(_ERROR_FLOOR, 1e-6 * self._scale)


@functools.cache
def _plan(anchors: tuple[int, ...], horizon: int) -> tuple[tuple[int, int, float], ...]:
    """Per step 1..horizon: the anchors around it and its position between them in log-step."""
    plan = []
    for h in range(1, horizon + 1):
        hi = next(i for i, a in enumerate(anchors) if a >= h)
        lo = hi if anchors[hi] == h else hi - 1
        x = 0.0 if lo == hi else math.log(h / anchors[lo]) / math.log(anchors[hi] / anchors[lo])
        plan.append((lo, hi, x))
    return tuple(plan)


def _between(a: float, b: float, x: float) -> float:
    """Linear interpolation from ``a`` (x = 0) to ``b`` (x = 1); one side if the other is nan."""
    if math.isnan(a):
        return b
    if math.isnan(b):
        return a
    return a + x * (b - a)
