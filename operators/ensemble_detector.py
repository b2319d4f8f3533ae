"""An ensemble of online baselines with one calibrated, event-onset anomaly score."""

from __future__ import annotations

import math
from array import array
from collections import deque
from datetime import datetime

import numpy as np

from airis.operators.base import SeriesDetector
from airis.operators.types import Assessment

__all__ = ["EnsembleDetector"]

#: Ratio of a Gaussian's standard deviation to its mean absolute deviation.
_MAD_TO_SIGMA = math.sqrt(math.pi / 2)
#: Ratio of a Gaussian's standard deviation to its median absolute deviation.
_MEDIAN_MAD_TO_SIGMA = 1.4826
#: Smallest tail probability we represent (keeps the logarithm finite).
_MIN_TAIL = 1e-300
#: Points a component's score distribution needs before its tail probability is trusted.
_MIN_HISTORY = 30


class EnsembleDetector(SeriesDetector):
    """Forecast residuals of a robust level and of a detected season, as one tail probability.

    Per point, O(1) apart from an occasional FFT:

    * **level** — a Huber-clipped exponentially weighted mean and mean absolute residual: the
      point forecast of a series without structure. A spike or a step stands out against it.
    * **seasonal** — every ``period_every`` points the autocorrelation of the last
      ``buffer`` values (by FFT) names the dominant period, if its correlation reaches
      ``min_autocorrelation``; the forecast is then the median of the values one, two and
      three periods ago (the closest of those medians taken up to ``jitter`` points earlier
      or later, as real cycles drift a little). A pattern that breaks its daily shape (a
      missing jump, a flat stretch) stands out against it, though it may look normal against
      the level.
    * **calibration** — each component's surprise ``log1p(|residual| / scale)`` is smoothed
      (weight ``smoothing``, so that a burst of moderate surprises adds up, as in HTM's
      anomaly likelihood) and compared to the long-run distribution of that same smoothed
      surprise (exponential mean and variance, memory about ``1 / likelihood_rate``
      points). The Gaussian upper-tail probability of the most surprised component is the
      evidence; its score is ``1 - tail ** 0.3`` (0.5 at a tail of 10 %, 0.9 at 5e-4, 0.99
      at 2e-7), so the scores of different series mean the same thing.
    * **event onset** — what is reported is the score only where it is a new maximum of the
      last ``refractory`` points and no other new maximum came in the ``gap`` points before
      it; elsewhere the score is 0. One incident therefore raises one alert, at its start,
      rather than a run of them while the evidence keeps growing; a stronger event
      inside the refractory period still gets through. The rule only looks backwards.

    The first ``warmup`` points only set the starting level and scale; then the score stays
    0 (state ``"warming"``) for ``settle`` points while the components' score distributions
    fill. Non-finite values are reported with score 0 and component ``"invalid"``, and
    are not learned. There is no randomness: the same series always gives the same scores.

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
    refractory
        Points during which a reported score suppresses lower ones.
    gap
        A new maximum right after another one (within this many points) is the same event.
    buffer
        Recent values kept to find the period (at least three periods must fit).
    period_every
        Points between two period searches.
    min_autocorrelation
        Autocorrelation the dominant period needs to be used.
    jitter
        Phase shifts (in points, each way) the seasonal forecast tolerates.

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
    >>> max(scores) < 0.95
    True
    >>> spike = detector.update_one(t0 + timedelta(minutes=5 * 2000), 160.0)
    >>> spike.score > 0.9, spike.direction, round(spike.expected), spike.component
    (True, 'spike', 100, 'level')

    References
    ----------
    [^1]: Ahmad, Lavin, Purdy, Agha (2017). Unsupervised real-time anomaly detection for
          streaming data (the anomaly likelihood).
    [^2]: Huber, P. J. (1964). Robust Estimation of a Location Parameter.
    """

    def __init__(
        self,
        warmup: int = 30,
        settle: int = 150,
        level_rate: float = 0.1,
        scale_rate: float = 0.02,
        clip: float = 4.0,
        smoothing: float = 0.3,
        likelihood_rate: float = 0.0005,
        refractory: int = 350,
        gap: int = 5,
        buffer: int = 4096,
        period_every: int = 128,
        min_autocorrelation: float = 0.3,
        jitter: int = 2,
    ) -> None:
        self.warmup = warmup
        self.settle = settle
        self.level_rate = level_rate
        self.scale_rate = scale_rate
        self.clip = clip
        self.smoothing = smoothing
        self.likelihood_rate = likelihood_rate
        self.refractory = refractory
        self.gap = gap
        self.buffer = buffer
        self.period_every = period_every
        self.min_autocorrelation = min_autocorrelation
        self.jitter = jitter

        self._n = 0  # finite points learned
        self._first: list[float] = []
        self._level = 0.0
        self._scale = 0.0
        self._season_scale = 0.0
        self._period = 0
        self._ring = array("d", bytes(8 * buffer))
        # Per component (level, seasonal): smoothed surprise, its long-run mean and variance,
        # and how many surprises it has seen.
        self._smoothed = [0.0, 0.0]
        self._mean = [0.0, 0.0]
        self._var = [0.0, 0.0]
        self._count = [0, 0]
        # Decreasing (index, score) pairs: the running maximum of the last `refractory` scores.
        self._peaks: deque[tuple[int, float]] = deque()
        self._last_peak = -(10**9)

    # -- scoring -------------------------------------------------------------------------

    def assess_one(self, ts: datetime, value: float) -> Assessment:
        return self._evaluate(value)[0]

    def learn_one(self, ts: datetime, value: float) -> None:
        self._learn(value, self._evaluate(value)[1])

    def update_one(self, ts: datetime, value: float) -> Assessment:
        assessment, update = self._evaluate(value)
        self._learn(value, update)
        return assessment

    def _evaluate(self, value: float) -> tuple[Assessment, tuple | None]:
        """The assessment of ``value`` and what learning it would change; mutates nothing."""
        if not math.isfinite(value):
            expected = self._level if self._n >= self.warmup else value
            return Assessment(
                0.0, value, expected, expected, expected, "warming", "invalid", 0.0
            ), None
        if self._n < self.warmup:
            return Assessment(0.0, value, value, value, value, "warming", "warming", 0.0), None

        floor = max(1e-9, 1e-6 * abs(self._level))
        scale = max(self._scale, floor)
        expected, band_scale, component = self._level, scale, "level"
        residuals = [value - self._level, 0.0]
        active = [True, False]
        season = self._season_forecast(value)
        if season is not None:
            residuals[1] = value - season
            active[1] = True

        tail, stats = 1.0, []
        for c in (0, 1):
            if not active[c]:
                stats.append(None)
                continue
            c_scale = scale if c == 0 else max(self._season_scale, floor)
            surprise = math.log1p(abs(residuals[c]) / c_scale)
            count = self._count[c]
            s = (
                surprise
                if count == 0
                else self._smoothed[c] + self.smoothing * (surprise - self._smoothed[c])
            )
            mean = s if count == 0 else self._mean[c]
            if count >= _MIN_HISTORY:
                # A perfectly predicted series is not infinitely sure of itself.
                sd = math.sqrt(self._var[c]) + 1e-3
                t = 0.5 * math.erfc((s - mean) / sd / math.sqrt(2))
                if t < tail:
                    tail = t
                    if c == 1:
                        expected, band_scale, component = season, c_scale, "seasonal"
            stats.append((s, mean))

        raw = 1.0 - max(tail, _MIN_TAIL) ** 0.3
        index = self._n + 1
        if index < self.settle:
            score, state = 0.0, "warming"
        else:
            peaks = self._peaks
            start = 0
            while start < len(peaks) and peaks[start][0] <= index - self.refractory:
                start += 1
            new_max = start == len(peaks) or raw > peaks[start][1]
            quiet = index - self._last_peak > self.gap
            score = raw if new_max and quiet else 0.0
            state = "seasonal" if component == "seasonal" else "recent"
        band = 3.0 * _MAD_TO_SIGMA * band_scale
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
        return assessment, (residuals, active, stats, raw, index)

    def _season_forecast(self, value: float) -> float | None:
        period = self._period
        if not period or self._n <= 3 * period + self.jitter:
            return None
        jitter = min(self.jitter, period - 1)  # never reach the current point's slot
        ring, size, at = self._ring, self.buffer, self._n
        best = math.nan
        for shift in range(-jitter, jitter + 1):
            a, b, c = (ring[(at - k * period + shift) % size] for k in (1, 2, 3))
            # The median of three periods: one anomalous day does not echo a period later.
            forecast = max(min(a, b), min(max(a, b), c))
            # Real cycles drift by a point or two: a sharp daily edge one point early or late
            # is the season, not an anomaly, so the closest of the shifted forecasts counts.
            if not abs(value - best) <= abs(value - forecast):
                best = forecast
        return best

    # -- learning ------------------------------------------------------------------------

    def _learn(self, value: float, update: tuple | None) -> None:
        if not math.isfinite(value):
            return
        self._ring[self._n % self.buffer] = value
        self._n += 1
        if update is None:
            self._first.append(value)
            if self._n == self.warmup:
                self._start()
            return
        residuals, active, stats, raw, index = update
        floor = max(1e-9, 1e-6 * abs(self._level))
        scale = max(self._scale, floor)
        bound = self.clip * scale
        residual = residuals[0]
        self._level += self.level_rate * max(-bound, min(bound, residual))
        self._scale += self.scale_rate * (min(abs(residual), bound) - self._scale)
        if active[1]:
            r = abs(residuals[1])
            if self._season_scale > 0:
                limit = self.clip * max(self._season_scale, floor)
                self._season_scale += self.scale_rate * (min(r, limit) - self._season_scale)
            else:
                self._season_scale = r
        for c in (0, 1):
            if stats[c] is None:
                continue
            s, mean = stats[c]
            self._count[c] += 1
            # A running mean at first, then an exponential memory.
            w = max(self.likelihood_rate, 1.0 / self._count[c])
            d = s - mean
            self._smoothed[c] = s
            self._mean[c] = mean + w * d
            self._var[c] = (1 - w) * (self._var[c] + w * d * d)
        if index >= self.settle:
            peaks = self._peaks
            while peaks and peaks[0][0] <= index - self.refractory:
                peaks.popleft()
            if not peaks or raw > peaks[0][1]:
                self._last_peak = index
            while peaks and peaks[-1][1] <= raw:
                peaks.pop()
            peaks.append((index, raw))
        if self._n % self.period_every == 0 and self._n >= 2 * self.period_every:
            self._period = self._find_period()

    def _start(self) -> None:
        first = sorted(self._first)
        level = first[len(first) // 2]
        mad = sorted(abs(v - level) for v in first)[len(first) // 2] * _MEDIAN_MAD_TO_SIGMA
        spread = max(mad, (first[-1] - first[0]) / 6)
        self._level = level
        self._scale = max(spread / _MAD_TO_SIGMA, 1e-9, 1e-6 * abs(level))
        self._first = []

    def _find_period(self) -> int:
        """The lag of the highest autocorrelation peak after its first zero crossing, or 0."""
        n = min(self._n, self.buffer)
        ring = np.frombuffer(self._ring, dtype=np.float64)
        x = np.roll(ring, -(self._n % self.buffer))[-n:] if self._n >= self.buffer else ring[:n]
        x = x - x.mean()
        if not x.any():
            return 0
        spectrum = np.fft.rfft(x, 2 * n)
        acf = np.fft.irfft(spectrum * np.conj(spectrum))[: n // 3]
        acf /= acf[0]
        # Smooth series correlate at short lags: a period must come after the first dip.
        negative = np.flatnonzero(acf < 0)
        if not negative.size:
            return 0
        start = int(negative[0])
        lag = start + int(np.argmax(acf[start:]))
        return lag if acf[lag] >= self.min_autocorrelation else 0
