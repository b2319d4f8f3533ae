"""A robust, seasonality-aware online detector for one metric series.

It was the metrics flow's detector before `airis.operators.ensemble_detector.EnsembleDetector`
(whose level, hour-of-day profile and protection follow it); kept for comparison and as an
alternative `DetectorBank(make_detector=RobustSeasonalDetector)`.
"""

from __future__ import annotations

import inspect
import logging
import math
import statistics
from datetime import datetime

from airis.operators.base import SeriesDetector
from airis.operators.types import Assessment

logger = logging.getLogger(__name__)

__all__ = ["RobustSeasonalDetector"]

#: Ratio of a Gaussian's standard deviation to its mean absolute deviation.
_MAD_TO_SIGMA = math.sqrt(math.pi / 2)
#: Ratio of a Gaussian's standard deviation to its median absolute deviation.
_MEDIAN_MAD_TO_SIGMA = 1.4826
#: The difference of two independent Gaussian draws has sqrt(2) times their sigma.
_DIFF_TO_SIGMA = 1 / math.sqrt(2)
#: 90th percentile of |z| for a standard Gaussian.
_Q90_ABS_Z = 1.6449


class RobustSeasonalDetector(SeriesDetector):
    """Robust deviation from a recent level, corrected by a learned time-of-day profile.

    Four parts, all O(1) per point:

    * **recent level** — a Huber-clipped exponentially weighted mean: each residual is clipped
      to ``clip`` scales before it moves the level, so one outlier moves it by at most
      ``alpha * clip`` scales. Slow movements (daily seasonality) are tracked; steps and ramps
      faster than the level can follow stand out.
    * **noise scale** — the larger of two streaming 90th percentiles read as a Gaussian sigma:
      of first differences (trends cancel, so a slow leak is not mistaken for noise) and, more
      slowly, of residuals from the level (autocorrelated wobble that differences miss).
    * **seasonal profile** — per hour-of-day bin (hour-of-week with ``weekly=True``), the usual
      offset of the value from the recent level and its spread. Once a bin has been seen on an
      earlier day, recurring patterns at that time (a nightly batch job) are expected, not
      anomalous; the state is then ``"seasonal"``.
    * **protection** — points scored at or above ``protect_threshold`` move the level and the
      difference scale with weight ``protect_weight`` and the residual scale not at all, so
      that a fault is not absorbed into the baseline within minutes; after ``relearn_after``
      protected points in a row the new level is accepted.

    The score maps the robust z-score ``|observed - expected| / scale`` through a logistic
    curve: ``z_mid`` scales gives 0.5 and the score reaches 0.9 about 1.5 scales later. During
    the first ``warmup`` points the state is ``"warming"`` and the expected value is the median
    of what was seen so far (the caller should only alert on extreme scores then).

    Parameters
    ----------
    warmup
        Points before the recent level is trusted.
    alpha
        Weight of a new point in the recent level.
    scale_rate
        Log-step of the difference scale per point (a frugal streaming 90th percentile).
    residual_scale_share
        The residual scale's log-step as a share of ``scale_rate`` (it adapts more slowly).
    season_rate
        Weight of a new point in its seasonal bin, once the bin has seen ``1 / season_rate``
        points (about a day of memory at one point per 10 s).
    clip
        Residuals are clipped to this many scales before learning.
    z_mid
        z-score that maps to a score of 0.5.
    steepness
        Slope of the logistic map from z-score to score.
    min_scale
        Absolute floor of the scale (avoids infinite z-scores on flat series).
    min_relative_scale
        Floor of the scale relative to the level's magnitude.
    protect_threshold
        Score at or above which a point is learned with ``protect_weight``.
    protect_weight
        Learning weight of protected points.
    relearn_after
        Consecutive protected points after which the detector learns fully again.
    weekly
        Profile by hour of week (168 bins) instead of hour of day (24 bins).

    Examples
    --------
    >>> import random
    >>> from datetime import datetime, timedelta, timezone
    >>> rng = random.Random(42)
    >>> detector = RobustSeasonalDetector()
    >>> t0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> for i in range(200):
    ...     a = detector.update_one(t0 + timedelta(seconds=10 * i), 100 + rng.gauss(0, 2))
    >>> a.state, a.score < 0.5
    ('recent', True)
    >>> spike = detector.update_one(t0 + timedelta(seconds=2000), 160.0)
    >>> spike.score > 0.99, spike.direction, round(spike.expected)
    (True, 'spike', 100)

    References
    ----------
    [^1]: Huber, P. J. (1964). Robust Estimation of a Location Parameter.
    [^2]: Hochenbaum, Vallis, Kejariwal (2017). Automatic Anomaly Detection in the Cloud Via
          Statistical Learning (seasonal decomposition with robust statistics).
    """

    def __init__(
        self,
        warmup: int = 30,
        alpha: float = 0.05,
        scale_rate: float = 0.02,
        residual_scale_share: float = 0.2,
        season_rate: float = 0.005,
        clip: float = 3.0,
        z_mid: float = 4.0,
        steepness: float = 1.5,
        min_scale: float = 1e-6,
        min_relative_scale: float = 1e-3,
        protect_threshold: float = 0.9,
        protect_weight: float = 0.1,
        relearn_after: int = 360,
        weekly: bool = False,
    ) -> None:
        self.warmup = warmup
        self.alpha = alpha
        self.scale_rate = scale_rate
        self.residual_scale_share = residual_scale_share
        self.season_rate = season_rate
        self.clip = clip
        self.z_mid = z_mid
        self.steepness = steepness
        self.min_scale = min_scale
        self.min_relative_scale = min_relative_scale
        self.protect_threshold = protect_threshold
        self.protect_weight = protect_weight
        self.relearn_after = relearn_after
        self.weekly = weekly

        # Multiplicative steps whose balance point is P(|residual| > q90 * scale) = 10 %.
        self._scale_up = math.exp(scale_rate * 0.9)
        self._scale_down = math.exp(-scale_rate * 0.1)
        self._first: list[float] | None = []
        self._level = 0.0
        self._scale = 0.0
        self._protected_run = 0
        self._previous: float | None = None
        self._jump_scale = 0.0
        self._residual_scale = 0.0
        bins = 168 if weekly else 24
        self._bin_offset = [0.0] * bins
        self._bin_scale = [0.0] * bins
        self._bin_count = [0] * bins
        self._bin_first_day = [-1] * bins

    # -- state ---------------------------------------------------------------------------

    def __getstate__(self) -> dict:
        """Learned state plus only the parameters that differ from the defaults.

        A flow keeps one detector per series and snapshots them all: leaving the defaults
        (the same for every series) out keeps a series under 1 KiB pickled.
        """
        state = self.__dict__.copy()
        for name, default in _DEFAULTS.items():
            if state[name] == default:
                del state[name]
        del state["_scale_up"], state["_scale_down"]  # derived from scale_rate
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(_DEFAULTS)
        self.__dict__.update(state)
        self._scale_up = math.exp(self.scale_rate * 0.9)
        self._scale_down = math.exp(-self.scale_rate * 0.1)

    # -- scoring -------------------------------------------------------------------------

    def assess_one(self, ts: datetime, value: float) -> Assessment:
        if self._first is not None:
            return self._assess_warming(value)
        scale = self._floored(self._scale)
        expected = self._level
        state = "recent"
        b, day = self._bin(ts)
        if self._bin_first_day[b] >= 0 and day > self._bin_first_day[b]:
            state = "seasonal"
            expected += self._bin_offset[b]
            scale = max(scale, self._bin_scale[b])
        return self._assessment(value, expected, scale, state, 1.0)

    def _assess_warming(self, value: float) -> Assessment:
        seen = self._first or []
        if len(seen) < 5:
            return Assessment(0.0, value, value, value, value, "warming", "warming", 0.0)
        expected, scale = _robust_start(seen)
        return self._assessment(
            value, expected, self._floored(scale, expected), "warming", len(seen) / self.warmup
        )

    def _assessment(
        self, value: float, expected: float, scale: float, state: str, confidence: float
    ) -> Assessment:
        z = abs(value - expected) / scale
        exponent = -(z - self.z_mid) * self.steepness
        score = 0.0 if exponent > 700 else 1.0 / (1.0 + math.exp(exponent))
        band = (self.z_mid + 2.0 / self.steepness) * scale
        component = "level" if state != "seasonal" else "seasonal"
        return Assessment(
            score, value, expected, expected - band, expected + band, state, component, confidence
        )

    def _floored(self, scale: float, level: float | None = None) -> float:
        magnitude = abs(self._level if level is None else level)
        return max(scale, self.min_scale, self.min_relative_scale * magnitude)

    # -- learning ------------------------------------------------------------------------

    def learn_one(self, ts: datetime, value: float) -> None:
        self._learn(ts, value, self.assess_one(ts, value).score)

    def update_one(self, ts: datetime, value: float) -> Assessment:
        assessment = self.assess_one(ts, value)
        self._learn(ts, value, assessment.score)
        return assessment

    def _learn(self, ts: datetime, value: float, score: float) -> None:
        if self._first is not None:
            self._first.append(value)
            if len(self._first) >= self.warmup:
                self._level, scale = _robust_start(self._first)
                self._scale = self._jump_scale = self._residual_scale = self._floored(scale)
                self._previous = self._first[-1]
                self._first = None
            return

        protected = score >= self.protect_threshold
        self._protected_run = self._protected_run + 1 if protected else 0
        if protected and self._protected_run < self.relearn_after:
            rate = self.alpha * self.protect_weight
        else:
            rate, protected = self.alpha, False

        scale = self._floored(self._scale)
        residual = value - self._level
        bound = self.clip * scale
        self._level += rate * max(-bound, min(bound, residual))
        # Noise scale from first differences: smooth trends and seasonality cancel out, so a
        # slow ramp (a leak) cannot pass itself off as noise. A frugal streaming 90th
        # percentile: every point moves the scale by a fixed factor whatever its size, and a
        # high quantile keeps mostly-zero count ratios off a zero scale.
        if self._previous is not None:
            jump = abs(value - self._previous) * _DIFF_TO_SIGMA
            step = self._scale_up if jump > _Q90_ABS_Z * self._jump_scale else self._scale_down
            self._jump_scale = self._floored(self._jump_scale) * step ** (rate / self.alpha)
        self._previous = value
        # Residuals also carry slow autocorrelated wobble that differences miss: a slower
        # quantile of |residual| bounds the scale from below, learned from normal points only.
        if not protected:
            step = (
                self._scale_up
                if abs(residual) > _Q90_ABS_Z * self._residual_scale
                else self._scale_down
            )
            self._residual_scale = (
                self._floored(self._residual_scale) * step**self.residual_scale_share
            )
        self._scale = max(self._jump_scale, self._residual_scale)
        self._learn_season(ts, residual, 10 * bound)

    def _learn_season(self, ts: datetime, residual: float, bound: float) -> None:
        b, day = self._bin(ts)
        if self._bin_first_day[b] < 0:
            self._bin_first_day[b] = day
        self._bin_count[b] += 1
        # The running mean while a bin is young, then an exponential memory of about a day.
        weight = max(self.season_rate, 1.0 / self._bin_count[b])
        deviation = max(-bound, min(bound, residual - self._bin_offset[b]))
        self._bin_offset[b] += weight * deviation
        self._bin_scale[b] += weight * (abs(deviation) * _MAD_TO_SIGMA - self._bin_scale[b])

    def _bin(self, ts: datetime) -> tuple[int, int]:
        day = ts.toordinal()
        if self.weekly:
            return ts.weekday() * 24 + ts.hour, day // 7
        return ts.hour, day


def _robust_start(values: list[float]) -> tuple[float, float]:
    """Median and sigma estimate of the first values: the larger of the MAD's and the 90th
    percentile of |deviation|'s, so mostly-zero count ratios do not start at zero scale."""
    level = statistics.median(values)
    deviations = sorted(abs(v - level) for v in values)
    mad = deviations[len(deviations) // 2] * _MEDIAN_MAD_TO_SIGMA
    q90 = deviations[int(0.9 * (len(deviations) - 1))] / _Q90_ABS_Z
    return level, max(mad, q90)


_DEFAULTS = {
    name: param.default
    for name, param in inspect.signature(RobustSeasonalDetector.__init__).parameters.items()
    if param.default is not inspect.Parameter.empty
}
