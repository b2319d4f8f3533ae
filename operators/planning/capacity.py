"""Resource-exhaustion prediction: how long until a rising percentage (disk, memory) hits a limit.

`ExhaustionPredictor` fits a robust trend to the recent past of one series and raises an
`ExhaustionWarning` before the value crosses its threshold, while there is still time to act.
"""

from __future__ import annotations

import functools
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import NormalDist

import numba
import numpy as np

from airis.operators.gaussian import MEDIAN_AD_TO_SIGMA

__all__ = ["ExhaustionPredictor", "ExhaustionWarning"]


@dataclass(frozen=True, slots=True)
class ExhaustionWarning:
    """The series is expected to reach ``threshold`` in about ``eta_seconds``.

    ``value`` is the fitted current level (the trend line at ``ts``, less noisy than the last
    raw value); ``eta_low_seconds``/``eta_high_seconds`` bound the time to the crossing from
    the slope's ``interval`` confidence band (``eta_high_seconds`` is infinite when a flat
    trend is inside that band); ``confidence`` is the probability, under the fitted slope's
    uncertainty, that the crossing comes within the predictor's warning horizon.
    """

    ts: datetime
    value: float
    threshold: float
    eta_seconds: float
    eta_low_seconds: float
    eta_high_seconds: float
    confidence: float
    slope_per_hour: float


class ExhaustionPredictor:
    """Time until a rising series reaches a threshold, from a robust trend, with confidence.

    Values are averaged into buckets of ``lookback_seconds / buckets`` seconds; the last
    ``lookback_seconds`` of buckets are kept (bounded state whatever the point rate). Each
    time a bucket completes, a Theil–Sen line (the median of pairwise slopes, so a garbage
    collection drop or a spike barely moves it) is fitted to the bucket means. Its noise is
    the scaled median absolute residual; the slope's standard error is that noise over
    ``sqrt(sum((t - mean t)^2))``, the ordinary least-squares formula (a normal approximation;
    it ignores autocorrelation of the residuals, so it is on the optimistic side).

    With ``level`` the line's value now and ``gap = threshold - level``, the time to the
    crossing is ``gap / slope``, bounded by the slope's ``interval`` band. The confidence is
    the probability that the slope is at least ``gap / warn_within_seconds``, i.e. that the
    threshold is reached within the warning horizon. A warning is raised when the confidence
    reaches ``min_confidence`` while the level is still below the threshold. The decision
    always rests on the whole window (half a window would take the rising phase of a
    garbage-collection sawtooth for a trend); but a trend that just began is diluted there by
    the flat past, so when the recent half of the window rises clearly faster (by two of its
    standard errors), the ETA, its band and ``value`` come from the recent half's line.

    After a warning the predictor stays quiet while the trend goes on; it warns again only
    when the expected crossing moves earlier by more than ``rewarn_fraction`` of the ETA it
    last warned of, or after a recovery: ``rearm_buckets`` consecutive fits with confidence
    under one half and the level below the threshold (the trend is gone, e.g. after a
    restart freed the memory). A level already at or over the threshold raises nothing:
    that is the alerting's business, not an early warning. Fits need at least
    ``min_buckets`` buckets spanning half the lookback, so the first minutes are quiet.
    Non-finite values and points older than the latest one are ignored.

    Parameters
    ----------
    threshold
        The limit, in the series' unit (e.g. 90 % used).
    lookback_seconds
        Recent history the trend is fitted to.
    warn_within_seconds
        Warning horizon: warn when the crossing is expected within this many seconds.
    buckets
        Buckets the lookback is divided into.
    min_buckets
        Buckets needed before a fit.
    min_confidence
        Confidence needed to warn.
    interval
        Coverage of the ETA band (``eta_low_seconds``, ``eta_high_seconds``).
    rewarn_fraction
        Relative move of the expected crossing (earlier) that warrants a new warning.
    rearm_buckets
        Consecutive low-confidence fits after which the predictor warns again.

    Examples
    --------
    >>> import random
    >>> from datetime import datetime, timedelta, timezone
    >>> rng = random.Random(42)
    >>> t0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> predictor = ExhaustionPredictor(threshold=90.0)
    >>> # Two flat hours: nothing. Then a leak of 1 point a minute from 50 %.
    >>> flat = [predictor.update_one(t0 + timedelta(seconds=10 * i), 50 + rng.gauss(0, 0.3))
    ...         for i in range(720)]
    >>> any(flat)
    False
    >>> warnings = []
    >>> for i in range(1, 360):
    ...     w = predictor.update_one(t0 + timedelta(hours=2, seconds=10 * i),
    ...                              50 + i / 6 + rng.gauss(0, 0.3))
    ...     if w:
    ...         warnings.append((i, w))
    >>> len(warnings)
    1
    >>> i, w = warnings[0]
    >>> crossing = 40 * 60  # seconds after the leak began
    >>> lead = crossing - 10 * i
    >>> round(lead / 60, 1), round(w.eta_seconds / 60, 1), w.confidence >= 0.9
    (31.5, 31.1, True)
    >>> w.eta_low_seconds <= w.eta_seconds <= w.eta_high_seconds
    True

    References
    ----------
    [^1]: Sen, P. K. (1968). Estimates of the regression coefficient based on Kendall's tau.
       Journal of the American Statistical Association, 63(324), 1379–1389.
    """

    def __init__(
        self,
        threshold: float = 90.0,
        lookback_seconds: float = 900.0,
        warn_within_seconds: float = 3600.0,
        buckets: int = 30,
        min_buckets: int = 10,
        min_confidence: float = 0.9,
        interval: float = 0.9,
        rewarn_fraction: float = 0.25,
        rearm_buckets: int = 15,
    ) -> None:
        if not (lookback_seconds > 0 and warn_within_seconds > 0):
            raise ValueError("ExhaustionPredictor: lookback and warning horizon must be > 0")
        if not 2 <= min_buckets <= buckets:
            raise ValueError(
                f"ExhaustionPredictor: need 2 <= min_buckets <= buckets, got {min_buckets}"
            )
        if not (0.5 <= min_confidence < 1 and 0 < interval < 1):
            raise ValueError("ExhaustionPredictor: min_confidence in [0.5, 1), interval in (0, 1)")
        self.threshold = threshold
        self.lookback_seconds = lookback_seconds
        self.warn_within_seconds = warn_within_seconds
        self.buckets = buckets
        self.min_buckets = min_buckets
        self.min_confidence = min_confidence
        self.interval = interval
        self.rewarn_fraction = rewarn_fraction
        self.rearm_buckets = rearm_buckets

        self._width = lookback_seconds / buckets
        self._z = NormalDist().inv_cdf(0.5 + interval / 2)
        # Completed buckets, oldest first, the first ``_n`` of two arrays with room for one
        # more than the lookback holds: mid times (epoch seconds) and mean values. Arrays
        # that a compiled loop (`_run_buckets`) updates in place: a predictor with its
        # lookback full holds about 1 KB (with a deque of (mid, mean) float pairs, 4.9 KB).
        self._mids = np.zeros(buckets + 1)
        self._means = np.zeros(buckets + 1)
        self._n = 0
        # The highest and lowest of the means (nan: not known, worked out when next needed):
        # kept as buckets come and go, since `_surely_quiet` asks at every bucket.
        self._high = self._low = math.nan
        self._bucket_start = math.nan
        self._sum = 0.0
        self._count = 0
        self._last_ts = -math.inf
        self._warned_at = math.nan  # expected crossing (epoch s) last warned of; nan: armed
        self._warned_eta = math.nan  # the ETA of that warning
        self._quiet_fits = 0

    def update_one(self, ts: datetime, value: float) -> ExhaustionWarning | None:
        """Add one point; return a warning when one is due (at most one per bucket)."""
        return self.update_at(ts.timestamp(), ts, value)

    def update_at(self, t: float, ts: datetime, value: float) -> ExhaustionWarning | None:
        """`update_one` with ``ts`` in epoch seconds (``t``) as well, for a caller that has it."""
        return self.update_many([t], [ts], [value]).get(0)

    def update_many(
        self, times: Sequence[float], stamps: Sequence[datetime], values: Sequence[float | None]
    ) -> dict[int, ExhaustionWarning]:
        """`update_at` for each point in order (``times`` in epoch seconds, ``stamps`` the
        same as datetimes; a None value is no point); the warnings by the point's index.

        One compiled call (`_run_buckets`) adds the points to their buckets and, at each
        completed bucket, drops those past the lookback and skips the fit where
        `_surely_quiet` allows (most buckets of most series): it stops only at a bucket that
        needs its fit, which `_fit` makes here."""
        warnings = {}
        at = np.asarray(times, dtype=np.float64)
        points = np.asarray(values, dtype=np.float64)  # None is nan: no point either way
        i, ranks = 0, _ranks(self.buckets)
        while True:
            (
                i, self._n, self._high, self._low, self._bucket_start, self._sum, self._count,
                self._last_ts, self._quiet_fits, self._warned_at,
            ) = _run_buckets(
                at, points, i, self._mids, self._means, self._n, self._high, self._low,
                self._bucket_start, self._sum, self._count, self._last_ts, self._quiet_fits,
                self._warned_at, self._width, self.lookback_seconds, self.buckets,
                self.min_buckets, self.threshold, self.warn_within_seconds, self.rearm_buckets,
                ranks, self._screens,
            )  # fmt: skip
            if i < 0:
                return warnings
            warning = self._fit(stamps, i, float(at[i]))
            if warning is not None:
                warnings[i] = warning
            i += 1

    #: Whether buckets that `_surely_quiet` finds quiet skip their fit (tests turn it off).
    _screens = True

    def _fit(self, stamps: Sequence[datetime], i: int, now: float) -> ExhaustionWarning | None:
        """The fit of the buckets at point ``i`` (at ``now``, epoch seconds) and the warning
        it makes, if any (``stamps[i]`` is read only for a warning: a caller's stamps may be
        made when read)."""
        x = self._mids[: self._n] - now
        y = self._means[: self._n]
        slope, level, se = _theil_sen(x, y)
        gap = self.threshold - level
        if gap <= 0:
            confidence = 1.0
        else:
            needed = gap / self.warn_within_seconds
            confidence = _NORMAL.cdf((slope - needed) / se)
        if confidence < 0.5 and gap > 0:
            self._quiet_fits, self._warned_at = _quiet_fit(
                self._quiet_fits, self._warned_at, self.rearm_buckets
            )
        else:
            self._quiet_fits = 0
        if gap <= 0 or confidence < self.min_confidence or slope <= 0:
            return None
        # A fresh trend is diluted by the flat past in the window: its ETA would come out long.
        half = len(x) // 2
        if half >= self.min_buckets // 2 + 2:
            r_slope, r_level, r_se = _theil_sen(x[half:], y[half:])
            if r_slope - slope > 2 * r_se and r_level < self.threshold:
                slope, level, se = r_slope, r_level, r_se
                gap = self.threshold - level
        eta = gap / slope
        earlier = self._warned_at - self.rewarn_fraction * self._warned_eta
        if not math.isnan(self._warned_at) and now + eta > earlier:
            return None
        self._warned_at, self._warned_eta = now + eta, eta
        fast, slow = slope + self._z * se, slope - self._z * se
        return ExhaustionWarning(
            ts=stamps[i],
            value=level,
            threshold=self.threshold,
            eta_seconds=eta,
            eta_low_seconds=gap / fast,
            eta_high_seconds=gap / slow if slow > 0 else math.inf,
            confidence=confidence,
            slope_per_hour=slope * 3600,
        )

    def __setstate__(self, state: dict) -> None:
        done = state.pop("_done", None)  # pickled with a deque of (mid, mean) pairs
        self.__dict__.update({"_high": math.nan, "_low": math.nan, **state})  # before extremes
        if done is not None:
            mids, means = [mid for mid, _ in done], [mean for _, mean in done]
        elif isinstance(self._mids, array):  # pickled with arrays of the buckets alone
            mids, means = list(self._mids), list(self._means)
        else:
            return
        self._mids, self._means = np.zeros(self.buckets + 1), np.zeros(self.buckets + 1)
        self._mids[: len(mids)], self._means[: len(means)] = mids, means
        self._n = len(mids)

    def _surely_quiet(self, now: float) -> bool:
        """Whether the fit would surely find confidence under one half with the level below
        the threshold (`_quiet`: then the fit changes nothing but the count of quiet fits)."""
        quiet, self._high, self._low = _quiet(
            self._mids, self._means, self._n, self._high, self._low, now, self._width,
            self.threshold, self.warn_within_seconds, _ranks(self.buckets),
        )  # fmt: skip
        return quiet


@numba.njit(cache=True)
def _run_buckets(  # pragma: no cover - compiled
    times, values, i, mids, means, n, high, low, start, total, count, last_ts, quiet_fits,
    warned_at, width, lookback, buckets, min_buckets, threshold, warn_within, rearm, ranks,
    screens,
):  # fmt: skip
    """`ExhaustionPredictor.update_many`'s points from ``i`` on, until one completes a
    bucket that needs its fit: that point's index and the state (index -1: all done)."""
    while i < len(values):
        value, t = values[i], times[i]
        if not math.isfinite(value) or t < last_ts:
            i += 1
            continue
        last_ts = t
        if math.isnan(start):
            start = t
        fit = False
        if t >= start + width:
            if count:
                mean = total / count
                mids[n], means[n] = start + width / 2, mean
                n += 1
                if mean > high:  # False while not known (nan): stays so
                    high = mean
                if mean < low:
                    low = mean
                if n > buckets:
                    n, high, low = _forget(mids, means, n, 1, high, low)
            # Buckets stay aligned to the first one; a gap skips the empty ones.
            start += math.floor((t - start) / width) * width
            total, count = 0.0, 0
            old = np.searchsorted(mids[:n], t - lookback)  # mids only increase
            if old:
                n, high, low = _forget(mids, means, n, old, high, low)
            if n >= min_buckets and mids[n - 1] - mids[0] >= lookback / 2:
                quiet = False
                if screens:
                    quiet, high, low = _quiet(
                        mids, means, n, high, low, t, width, threshold, warn_within, ranks
                    )
                if quiet:
                    quiet_fits, warned_at = _quiet_fit(quiet_fits, warned_at, rearm)
                else:
                    fit = True
        total += value
        count += 1
        if fit:
            return i, n, high, low, start, total, count, last_ts, quiet_fits, warned_at
        i += 1
    return -1, n, high, low, start, total, count, last_ts, quiet_fits, warned_at


@numba.njit(cache=True)
def _forget(mids, means, n, count, high, low):  # pragma: no cover - compiled
    """Drop the ``count`` oldest of ``n`` buckets; an extreme among them is no longer known."""
    for k in range(count):
        if means[k] == high or means[k] == low:
            high = low = math.nan
    mids[: n - count] = mids[count:n].copy()
    means[: n - count] = means[count:n].copy()
    mids[n - count : n] = 0.0  # what is not a bucket stays zero: equal states pickle alike
    means[n - count : n] = 0.0
    return n - count, high, low


@numba.njit(cache=True)
def _quiet_fit(quiet_fits, warned_at, rearm):  # pragma: no cover - compiled
    """A fit with confidence under one half and the level below the threshold: after
    ``rearm`` in a row, the predictor may warn again."""
    quiet_fits += 1
    if quiet_fits >= rearm:
        warned_at = math.nan
    return quiet_fits, warned_at


@numba.njit(cache=True)
def _quiet(  # pragma: no cover - compiled
    mids, means, n, high, low, now, width, threshold, warn_within, ranks
):  # fmt: skip
    """Whether the fit would surely find confidence under one half with the level below
    the threshold, from bounds that need no fit (most series, most of the time: a flat
    disk far from full); and the means' highest and lowest, worked out if not known.

    Bucket mid-times lie at least a bucket width apart, so for the ``d`` of `_span_rank`
    more than half of the pairwise slopes, hence their median (the Theil–Sen slope), are
    at most ``range(y) / (d * width)``; the line's level now is at most
    ``max(y) + slope_bound * (now - oldest mid-time)``. If even at that level the
    threshold stays farther than the bound slope covers within the horizon, the slope
    is below the one needed and the confidence under one half.
    """
    if math.isnan(high):
        high, low = means[:n].max(), means[:n].min()
    # 0.999: float rounding of the mid-times must not make the bound too tight.
    slope_bound = (high - low) / (ranks[n] * width * 0.999)
    gap_low = threshold - (high + slope_bound * (now - mids[0]))
    return gap_low > 0 and slope_bound < 0.999 * gap_low / warn_within, high, low


_NORMAL = NormalDist()


@functools.cache
def _ranks(buckets: int) -> np.ndarray:
    """`_span_rank` of every count of buckets a predictor may hold (a fit needs two)."""
    return np.array([_span_rank(max(n, 2)) for n in range(buckets + 2)], dtype=np.int64)


def _span_rank(n: int) -> int:
    """The largest ``d`` such that more than half of the ``n (n - 1) / 2`` pairs ``i < j``
    have ``j - i >= d``."""
    half = n * (n - 1) / 4
    d = 1
    while (n - d - 1) * (n - d) / 2 > half:
        d += 1
    return d


def _theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Theil–Sen slope, the line's value at ``x = 0``, and the slope's standard error."""
    slope, level, sigma = _robust_line(x, y)
    dx = x - x.sum() / len(x)  # `x.mean()`'s sum and division, without its overhead
    return slope, level, sigma / math.sqrt(float(dx @ dx))


@numba.njit(cache=True, error_model="numpy")
def _robust_line(x, y):  # pragma: no cover - compiled
    """`_theil_sen`'s slope (the median of the pairs' slopes, ``i < j``), its level and the
    residuals' robust noise: one compiled call instead of a dozen numpy ones."""
    n = len(x)
    slopes = np.empty(n * (n - 1) // 2)
    k = 0
    for i in range(n):
        for j in range(i + 1, n):
            slopes[k] = (y[j] - y[i]) / (x[j] - x[i])
            k += 1
    slope = _median(slopes)
    level = _median(y - slope * x)
    residuals = y - (level + slope * x)
    sigma = MEDIAN_AD_TO_SIGMA * _median(np.abs(residuals - _median(residuals)))
    # A perfectly smooth series still gets a tiny noise floor (no division by zero); the
    # comparisons are Python's ``max``'s, nan included.
    floor = 1e-9 * (abs(level) if abs(level) > 1.0 else 1.0)
    return slope, level, floor if floor > sigma else sigma


@numba.njit(cache=True)
def _median(a):  # pragma: no cover - compiled
    """The middle value of ``a`` (the mean of the two middle ones), nan counted largest: a
    selection, not a sort (the pairs' slopes of a full lookback are 435 values, in a new
    order every fit)."""
    k = len(a) // 2
    part = np.partition(a, k)  # the k-th in place, the smaller ones before it
    if len(a) % 2:
        return part[k]
    return (np.max(part[:k]) + part[k]) / 2
