"""An ensemble of online baselines with one calibrated anomaly score.

`EnsembleDetector` is the one detector of both `airis detect` and the metrics flow. It reports
the calibrated score of every point, which stays high while a fault lasts (what the flow's
alert step needs: several anomalous windows in a row). `airis detect` wraps it in
`airis.operators.detectors.event_onset.EventOnset`, which passes a score on only at the onset
of an event.
"""

from __future__ import annotations

import inspect
import math
from array import array
from datetime import datetime, timedelta

from airis.operators.base import SeriesDetector
from airis.operators.gaussian import MEAN_AD_TO_SIGMA, MEDIAN_AD_TO_SIGMA
from airis.operators.types import Assessment

__all__ = ["EnsembleDetector", "seconds_of"]

#: The difference of two independent Gaussian draws has sqrt(2) times their sigma.
_DIFF_TO_SIGMA = 1 / math.sqrt(2)
#: Smallest tail probability we represent (keeps the logarithm finite).
_MIN_TAIL = 1e-300
#: Floors (``min_scale``) a residual must exceed to count at all.
_FLOOR_GATE = 5.0
#: Points a component's score distribution needs before its tail probability is trusted.
_MIN_HISTORY = 30
#: Weight of a new gap between points in the typical spacing.
_INTERVAL_RATE = 0.05
#: Protection starts at a tail this small however sparse the series (a daily series would
#: otherwise protect one point in seven).
_MAX_PROTECT_TAIL = 1e-3


class EnsembleDetector(SeriesDetector):
    """Forecast residuals of robust baselines, as one calibrated tail probability.

    Per point, O(1):

    * **level** — a Huber-clipped exponentially weighted mean and mean absolute residual: the
      point forecast of a series without structure. A spike or a step stands out against it.
    * **drift** — a much slower Huber-clipped mean (weight ``drift_rate``), against the typical
      difference of consecutive values: a slow ramp (a leak) that the level follows, and
      whose residuals therefore look normal against it, does not inflate that noise scale.
    * **calibration** — each component's surprise ``log1p(|residual| / scale)`` is smoothed
      (weight ``smoothing``, so that a burst of moderate surprises adds up, as in HTM's
      anomaly likelihood) and compared to the long-run distribution of that same smoothed
      surprise (exponential mean and variance, memory about ``1 / likelihood_rate``
      points). The Gaussian upper-tail probability of the most surprised component is the
      evidence. A component only counts while the point itself lies more than ``gate``
      scales from its forecast: the smoothed surprise of a one-point spike lingers for a few
      points, the anomaly does not.
    * **hour-of-day profile** — per hour of the day, the usual offset of the value from the
      slow level and its spread. Once an hour has been seen on an earlier day, a value within
      ``profile_band`` spreads of what that hour usually looks like (a nightly batch job) is
      not anomalous, whatever the other components say. This is the season, in time units:
      it works the same for points 10 s or 1 h apart, in 24 bins of state.
    * **protection** — points as improbable as chance makes them only once per
      ``protect_horizon`` (a week: a tail of ``interval / week``, learned from the spacing of
      the points — 1.7e-5 for 10-s points, 5e-4 for 5-minute ones, at most 1e-3) teach the
      baselines and the calibration with weight ``protect_weight`` only, so a fault is not
      absorbed within minutes; once such points have lasted ``relearn_after`` (a duration),
      the new normal is learned fully. A fixed tail would protect a 10-s series' ordinary
      surprises 30 times as often as a 5-minute series', and so hold its baseline back from
      every slow daily change (measured: 4 false incidents in 6 simulated days at 5e-4, none
      with the horizon).

    The score is ``1 - tail ** tail_power``: with the default 0.15, 0.5 at a tail of 1 %,
    0.68 at 5e-4, 0.9 at 2e-7, so the scores of different series mean the same thing and an
    alert threshold of 0.9 is beyond what a day of a hundred noisy series reaches by chance.
    Any increasing map ranks the points alike: the map is presentation, nothing learns from it.

    ``expected`` is the forecast of the component that fired (the level while none does) and
    ``lower``/``upper`` are ``gate`` scales around it: a point inside the band is never scored.
    The first ``warmup`` points only set the starting level and scale; then the score stays
    0 (state ``"warming"``) until point ``settle``, while the components' score
    distributions fill. Both are sample sizes (how many values a spread and a distribution
    need), not durations; what a detector can say before then is
    `airis.operators.detectors.cold_start`'s. Non-finite values are reported with score 0 and
    component
    ``"invalid"``, and are not learned. There is no randomness: the same series always gives
    the same scores.

    Parameters
    ----------
    warmup
        Points whose median and spread start the level and scale.
    settle
        Points (counted from the first) before a score is reported at all.
    level_rate
        Weight of a new point in the recent level.
    scale_rate
        Weight of a new point in the residual scales.
    clip
        Residuals are clipped to this many scales before they are learned.
    smoothing
        Weight of a new surprise in its component's smoothed surprise.
    likelihood_rate
        Weight of a new smoothed surprise in its long-run mean and variance.
    min_scale
        Absolute floor of every scale, in the series' unit; a residual under five floors
        never counts (a mostly-zero error ratio must not make one stray error an anomaly).
    min_relative_scale
        Floor of every scale relative to the level's magnitude.
    tail_power
        Exponent of the map from tail probability to score.
    drift_rate
        Weight of a new point in the drift component's slow level.
    gate
        Scales a point must lie from a component's forecast for that component to count.
    profile_rate
        Weight of a new point in its hour's offset, once the hour has seen ``1 / profile_rate``
        points; 0 turns the profile off.
    profile_band
        Spreads around an hour's usual value within which a point is normal.
    protect_horizon
        A point is protected when chance makes it only once in this long (of the series'
        points).
    protect_weight
        Learning weight of protected points.
    relearn_after
        How long protected points must have lasted before the detector learns fully again.

    Examples
    --------
    >>> import random
    >>> from datetime import datetime, timedelta, timezone
    >>> rng = random.Random(42)
    >>> detector = EnsembleDetector()
    >>> t0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> scores = [
    ...     detector.update_one(t0 + timedelta(minutes=5 * i), 100 + rng.gauss(0, 2)).score
    ...     for i in range(2000)
    ... ]
    >>> max(scores) < 0.9
    True
    >>> spike = detector.update_one(t0 + timedelta(minutes=5 * 2000), 160.0)
    >>> spike.score > 0.9, spike.direction, round(spike.expected), spike.component
    (True, 'spike', 100, 'level')
    >>> spike.upper < spike.observed
    True

    References
    ----------
    [^1]: Ahmad, Lavin, Purdy, Agha (2017). Unsupervised real-time anomaly detection for
          streaming data (the anomaly likelihood).
    [^2]: Huber, P. J. (1964). Robust Estimation of a Location Parameter.
    [^3]: Hochenbaum, Vallis, Kejariwal (2017). Automatic Anomaly Detection in the Cloud Via
          Statistical Learning (seasonal decomposition with robust statistics).
    """

    # Slots, not a __dict__: a flow holds one detector per series, and a dict of this
    # many attributes costs 1.6 KB.
    __slots__ = (
        "_above",
        "_bin_count",
        "_bin_first_day",
        "_bin_offset",
        "_bin_scale",
        "_count",
        "_day0",
        "_first",
        "_interval",
        "_last_seen",
        "_level",
        "_mean",
        "_n",
        "_previous",
        "_protected_since",
        "_scale",
        "_slow",
        "_smoothed",
        "_step_scale",
        "_var",
        "clip",
        "drift_rate",
        "gate",
        "level_rate",
        "likelihood_rate",
        "min_relative_scale",
        "min_scale",
        "profile_band",
        "profile_rate",
        "protect_horizon",
        "protect_weight",
        "relearn_after",
        "scale_rate",
        "settle",
        "smoothing",
        "tail_power",
        "warmup",
    )

    def __init__(
        self,
        warmup: int = 30,
        settle: int = 100,
        level_rate: float = 0.1,
        scale_rate: float = 0.02,
        clip: float = 4.0,
        smoothing: float = 0.3,
        likelihood_rate: float = 0.0005,
        min_scale: float = 1e-9,
        min_relative_scale: float = 1e-6,
        tail_power: float = 0.15,
        drift_rate: float = 0.0003,
        gate: float = 2.0,
        profile_rate: float = 0.005,
        profile_band: float = 4.0,
        protect_horizon: timedelta = timedelta(days=7),
        protect_weight: float = 0.1,
        relearn_after: timedelta = timedelta(hours=1),
    ) -> None:
        self.warmup = warmup
        self.settle = settle
        self.level_rate = level_rate
        self.scale_rate = scale_rate
        self.clip = clip
        self.smoothing = smoothing
        self.likelihood_rate = likelihood_rate
        self.min_scale = min_scale
        self.min_relative_scale = min_relative_scale
        self.tail_power = tail_power
        self.drift_rate = drift_rate
        self.gate = gate
        self.profile_rate = profile_rate
        self.profile_band = profile_band
        self.protect_horizon = protect_horizon
        self.protect_weight = protect_weight
        self.relearn_after = relearn_after

        self._n = 0  # finite points learned
        self._first = array("d")  # the warm-up's values
        self._level = 0.0
        self._scale = 0.0
        self._protected_since = 0.0  # start of the current run of anomalous points (0: none)
        self._last_seen = 0.0  # when the last point came (seconds since the epoch)
        self._interval = 0.0  # typical seconds between two points
        self._slow = 0.0  # the drift component's slow level
        self._step_scale = 0.0  # typical |difference| of consecutive values
        self._previous = 0.0
        # Per hour of day: the usual offset from the slow level, its spread, points seen (up
        # to 1 / profile_rate) and the day the hour was first seen (counted from _day0, so
        # that these stay small numbers in a snapshot).
        self._day0 = 0
        # Arrays, not lists: a flow holds one detector per series, and a list of 24 floats
        # costs 24 float objects besides itself (3.3 times the bytes).
        bins = 24 if profile_rate > 0 else 0
        self._bin_offset = array("d", bytes(8 * bins))
        self._bin_scale = array("d", bytes(8 * bins))
        self._bin_count = array("I", bytes(4 * bins))
        self._bin_first_day = array("i", [-1] * bins)
        # Per component (level, drift): smoothed surprise, its long-run mean and variance,
        # and how many surprises it has seen.
        self._smoothed = [0.0, 0.0]
        self._mean = [0.0, 0.0]
        self._var = [0.0, 0.0]
        self._count = [0, 0]
        self._above = [False, False]  # whether the last residual was positive

    # -- state ---------------------------------------------------------------------------

    def __getstate__(self) -> dict:
        """Learned state plus only the parameters that differ from the defaults.

        A flow keeps one detector per series and snapshots them all: leaving out the defaults
        (the same for every series) keeps a series under 1 KiB.
        """
        state = {name: getattr(self, name) for name in self.__slots__}
        for name, default in _DEFAULTS.items():
            if state[name] == default:
                del state[name]
        for name in _ARRAYS:
            state[name] = state[name].tolist()
        if not self._first:  # past the warm-up
            del state["_first"]
        return state

    def __setstate__(self, state: dict) -> None:
        for name, value in {**_DEFAULTS, "_first": [], **state}.items():
            setattr(self, name, array(_ARRAYS[name], value) if name in _ARRAYS else value)

    @property
    def interval(self) -> float:
        """Typical seconds between two points (0 until two points have been seen)."""
        return self._interval

    def tail_of(self, score: float) -> float:
        """The tail probability per point that ``score`` stands for (the score map inverted)."""
        return max(_MIN_TAIL, max(0.0, 1.0 - score) ** (1.0 / self.tail_power))

    # -- scoring -------------------------------------------------------------------------

    def assess_one(self, ts: datetime, value: float) -> Assessment:
        return self._evaluate(ts, value)[0]

    def learn_one(self, ts: datetime, value: float) -> None:
        self._learn(ts, value, self._evaluate(ts, value)[1])

    def update_one(self, ts: datetime, value: float) -> Assessment:
        assessment, update = self._evaluate(ts, value)
        self._learn(ts, value, update)
        return assessment

    def _evaluate(self, ts: datetime, value: float) -> tuple[Assessment, tuple | None]:
        """The assessment of ``value`` and what learning it would change; mutates nothing."""
        if not math.isfinite(value):
            expected = self._level if self._n >= self.warmup else value
            return Assessment(
                0.0, value, expected, expected, expected, "warming", "invalid", 0.0
            ), None
        if self._n < self.warmup:
            return Assessment(0.0, value, value, value, value, "warming", "warming", 0.0), None

        floor = self._floor(self._level)
        scale = max(self._scale, floor)
        expected, band_scale, component = self._level, scale, "level"
        residuals = (value - self._level, value - self._slow)
        scales = (scale, max(self._step_scale, floor))
        components = 2 if self.drift_rate > 0 else 1

        # The absolute floor is a promise about the unit (an error ratio must change by more
        # than FLOOR_GATE floors to matter), which the calibration alone cannot keep: against
        # the history of an almost always zero series, any change is improbable.
        gate = _FLOOR_GATE * self.min_scale
        cap = math.log1p(self.clip)
        tail, stats = 1.0, []
        for c in range(components):
            c_scale = scales[c]
            surprise = math.log1p(abs(residuals[c]) / c_scale)
            count = self._count[c]
            before = self._smoothed[c]
            if self._protected_since and (residuals[c] > 0) != self._above[c]:
                # The way back from an anomaly is not more of it: the evidence starts afresh.
                before = self._mean[c]
            s = surprise if count == 0 else before + self.smoothing * (surprise - before)
            mean = s if count == 0 else self._mean[c]
            if count >= _MIN_HISTORY and abs(residuals[c]) > max(gate, self.gate * c_scale):
                # A perfectly predicted series is not infinitely sure of itself.
                sd = math.sqrt(self._var[c]) + 1e-3
                t = 0.5 * math.erfc((s - mean) / sd / math.sqrt(2))
                if t < tail:
                    tail = t
                    if c == 1:
                        expected, band_scale, component = self._slow, c_scale, "drift"
            # The drift component is there for slow ramps: it remembers at most `clip` scales
            # of surprise, so a one-point spike scores in full but does not linger in it.
            remembered = s
            if count and c == 1:
                remembered -= self.smoothing * max(0.0, surprise - cap)
            stats.append((s, mean, remembered))

        if self.profile_rate > 0 and tail < 1.0:
            b, day = ts.hour, ts.toordinal()
            first = self._bin_first_day[b]
            if 0 <= first < day - self._day0:
                usual = self._slow + self._bin_offset[b]
                spread = max(self._bin_scale[b], floor)
                if abs(value - usual) <= self.profile_band * spread:
                    # What this hour of the day usually looks like: no anomaly, and the
                    # hour's usual value is the expectation to show.
                    tail, expected, component = 1.0, usual, "profile"
                    band_scale = self.profile_band * spread / self.gate
        score = 1.0 - max(tail, _MIN_TAIL) ** self.tail_power
        index = self._n + 1
        if index < self.settle:
            score, tail, state = 0.0, 1.0, "warming"
        else:
            state = "seasonal" if component == "profile" else "recent"
        band = self.gate * band_scale
        assessment = Assessment(
            score,
            value,
            expected,
            expected - band,
            expected + band,
            state,
            component,
            min(1.0, index / self.settle),
        )
        return assessment, (residuals, stats, tail)

    # -- learning ------------------------------------------------------------------------

    def _learn(self, ts: datetime, value: float, update: tuple | None) -> None:
        if not math.isfinite(value):
            return
        self._n += 1
        now = seconds_of(ts)
        gap = now - self._last_seen
        if self._last_seen and gap > 0:
            # The typical spacing of the points: a mean of the gaps, each capped at ten times
            # it so that an outage does not count as the series' rhythm.
            if self._interval:
                self._interval += _INTERVAL_RATE * (min(gap, 10 * self._interval) - self._interval)
            else:
                self._interval = gap
        self._last_seen = now
        if update is None:
            self._previous = value
            self._first.append(value)
            if self._n == self.warmup:
                self._start()
            return
        residuals, stats, tail = update
        # An anomalous point teaches the baselines only a little, so that a fault is not
        # absorbed within minutes and its score stays up while it lasts; once such points
        # have lasted `relearn_after`, the new normal is learned at the full rate.
        if tail > self._protect_tail():
            self._protected_since = 0.0
        elif not self._protected_since:
            self._protected_since = now
        relearn = now - self._protected_since >= self.relearn_after.total_seconds()
        k = 1.0 if not self._protected_since or relearn else self.protect_weight
        floor = self._floor(self._level)
        scale = max(self._scale, floor)
        bound = self.clip * scale
        residual = residuals[0]
        self._level += k * self.level_rate * max(-bound, min(bound, residual))
        self._scale += k * self.scale_rate * (min(abs(residual), bound) - self._scale)
        if self.profile_rate > 0:
            b, day = ts.hour, ts.toordinal()
            if not self._day0:
                self._day0 = day
            if self._bin_first_day[b] < 0:
                self._bin_first_day[b] = day - self._day0
            if self._bin_count[b] * self.profile_rate < 1:
                self._bin_count[b] += 1
            w = k * max(self.profile_rate, 1.0 / self._bin_count[b])
            d = value - self._slow - self._bin_offset[b]
            self._bin_offset[b] += w * d
            self._bin_scale[b] += w * (abs(d) - self._bin_scale[b])
        if self.drift_rate > 0:
            step_bound = self.clip * max(self._step_scale, floor)
            step = min(abs(value - self._previous) * _DIFF_TO_SIGMA, step_bound)
            self._step_scale += k * self.scale_rate * (step - self._step_scale)
            self._slow += k * self.drift_rate * max(-step_bound, min(step_bound, residuals[1]))
        self._previous = value
        for c, (s, mean, remembered) in enumerate(stats):
            self._count[c] += 1
            # A running mean at first, then an exponential memory.
            w = k * max(self.likelihood_rate, 1.0 / self._count[c])
            d = s - mean
            self._smoothed[c] = remembered
            self._above[c] = residuals[c] > 0
            self._mean[c] = mean + w * d
            self._var[c] = (1 - w) * (self._var[c] + w * d * d)

    def _protect_tail(self) -> float:
        """The tail probability that chance reaches once per ``protect_horizon`` of points."""
        horizon = self.protect_horizon.total_seconds()
        return min(_MAX_PROTECT_TAIL, self._interval / horizon) if self._interval else 0.0

    def _start(self) -> None:
        first = sorted(self._first)
        level = first[len(first) // 2]
        mad = sorted(abs(v - level) for v in first)[len(first) // 2] * MEDIAN_AD_TO_SIGMA
        spread = max(mad, (first[-1] - first[0]) / 6)
        self._level = level
        self._scale = max(spread / MEAN_AD_TO_SIGMA, self._floor(level))
        self._first = array("d")
        self._slow, self._step_scale = level, self._scale

    def _floor(self, level: float) -> float:
        return max(self.min_scale, self.min_relative_scale * abs(level))


def seconds_of(ts: datetime) -> float:
    """Seconds since the epoch; a naive timestamp is taken as UTC."""
    return ts.timestamp() if ts.tzinfo is not None else (ts - _NAIVE_EPOCH).total_seconds()


_NAIVE_EPOCH = datetime(1970, 1, 1)

#: State kept in arrays (pickled as lists, which are smaller for a few small numbers).
_ARRAYS = {
    "_first": "d",
    "_bin_offset": "d",
    "_bin_scale": "d",
    "_bin_count": "I",
    "_bin_first_day": "i",
}

_DEFAULTS = {
    name: param.default
    for name, param in inspect.signature(EnsembleDetector.__init__).parameters.items()
    if param.default is not inspect.Parameter.empty
}
