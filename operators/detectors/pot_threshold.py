"""An alert threshold at a chosen risk, from the tail of the scores seen (streaming POT, SPOT).

`PotThreshold` turns any anomaly score into an alert decision without labels: it fits a
generalised Pareto distribution (GPD) to the peaks of the scores over a high quantile and
extrapolates the score that only ``risk`` of them exceed.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

__all__ = ["PotThreshold"]

#: Share of scores expected above the threshold; 1e-2 of 1-minute rows is about 14 a day.
DEFAULT_RISK = 1e-2
#: Quantile of the warm-up scores over which a score counts as a peak (SPOT's initial level).
DEFAULT_LEVEL = 0.98
#: Scores seen before the first threshold.
DEFAULT_GRACE_PERIOD = 1000
#: The most recent peaks kept for the fit (older ones still count in the peak rate).
DEFAULT_MAX_PEAKS = 5000
#: Below this many peaks the tail is taken as exponential (shape 0): a shape needs more data.
_MIN_PEAKS_FOR_SHAPE = 10
#: Refit once the new peaks reach this share of those kept (at least one): a fit costs about
#: its peaks, so each peak costs about the same however many are kept.
_REFIT_SHARE = 0.01


class PotThreshold:
    """Threshold that a score exceeds with probability ``risk``, learned from the scores.

    Peaks over threshold (POT): the first ``grace_period`` scores set a level ``t`` (their
    ``level`` quantile); the excesses of later scores over ``t`` ("peaks") are fitted with a
    generalised Pareto distribution (maximum likelihood, profiled over one parameter), and the
    threshold is its quantile for the tail probability ``risk``:
    ``t + sigma / gamma * ((risk * n / peaks) ** -gamma - 1)``, ``n`` being the scores seen.
    Extrapolating the tail is what makes small risks (1e-3 .. 1e-5) usable with few scores.

    The fit is updated as new peaks come (after each one while they are few, after every
    1 % more once they are many), so the threshold follows the stream (SPOT, Siffer et al.).
    Unlike SPOT, scores above the threshold are learned too by default: after a lasting shift
    of a score (a new machine, a changed workload) the threshold rises with it and the
    long-run share of alerts stays near ``risk`` instead of every later score being an
    alert. ``protect=True`` keeps them out (the original SPOT), which keeps the threshold low
    while an anomaly lasts but never lets it adapt to a shift upwards.

    During warm-up (fewer than ``grace_period`` scores) the threshold is ``inf``: nothing is
    flagged. `classify` is ``score > threshold``, so a constant score never alerts. The level
    is fixed at the end of warm-up: a stream much quieter than its warm-up brings the
    threshold down to that level, not below.

    Parameters
    ----------
    risk
        Share of scores expected above the threshold, in ``(0, 1 - level)``.
    level
        Quantile of the warm-up scores over which scores are peaks, in ``(0, 1)``.
    grace_period
        Scores learned before the level and the first threshold are set (at least 10).
    protect
        Do not learn scores above the current threshold (original SPOT).
    max_peaks
        The most recent peaks the distribution is fitted on.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(42)
    >>> pot = PotThreshold(risk=1e-3, grace_period=2000)
    >>> for _ in range(20000):
    ...     pot.learn_one(rng.expovariate(1.0))
    >>> round(pot.threshold, 1)  # the exact quantile of Exp(1) is -ln(1e-3) = 6.91
    6.7
    >>> pot.classify(3.0), pot.classify(12.0)
    (False, True)

    References
    ----------
    [^1]: Siffer, A., Fouque, P.-A., Termier, A., Largouet, C. (2017). Anomaly detection in
          streams with extreme value theory. KDD 2017.
    [^2]: Grimshaw, S. D. (1993). Computing maximum likelihood estimates for the generalized
          Pareto distribution. Technometrics 35(2).
    """

    def __init__(
        self,
        risk: float = DEFAULT_RISK,
        level: float = DEFAULT_LEVEL,
        grace_period: int = DEFAULT_GRACE_PERIOD,
        protect: bool = False,
        max_peaks: int = DEFAULT_MAX_PEAKS,
    ) -> None:
        if not 0.0 < level < 1.0:
            raise ValueError(f"PotThreshold: level must be in (0, 1), got {level!r}")
        if not 0.0 < risk < 1.0 - level:
            raise ValueError(
                f"PotThreshold: risk must be in (0, 1 - level = {1 - level:g}), got {risk!r}"
            )
        if grace_period < 10:
            raise ValueError(f"PotThreshold: grace_period must be >= 10, got {grace_period}")
        if max_peaks < _MIN_PEAKS_FOR_SHAPE:
            raise ValueError(f"PotThreshold: max_peaks must be >= 10, got {max_peaks}")
        self.risk = risk
        self.level = level
        self.grace_period = grace_period
        self.protect = protect
        self.max_peaks = max_peaks
        self._warmup: list[float] = []
        self._level_score = math.nan
        self._peaks: deque[float] = deque(maxlen=max_peaks)
        self._n = 0
        self._n_peaks = 0
        self._since_fit = 0
        self._shape = 0.0
        self._scale = 0.0
        self._threshold = math.inf

    @property
    def threshold(self) -> float:
        """The current threshold (``inf`` during warm-up)."""
        return self._threshold

    @property
    def shape(self) -> float:
        """The fitted GPD shape ``gamma`` (0: exponential tail, > 0: heavier)."""
        return self._shape

    def classify(self, score: float) -> bool:
        """Whether ``score`` is above the current threshold."""
        return score > self._threshold

    def learn_one(self, score: float) -> None:
        """Learn one score (non-finite scores are ignored)."""
        if not math.isfinite(score):
            return
        if math.isnan(self._level_score):
            self._warmup.append(float(score))
            if len(self._warmup) >= self.grace_period:
                self._start()
            return
        if self.protect and score > self._threshold:
            return
        self._n += 1
        if score > self._level_score:
            self._peaks.append(float(score) - self._level_score)
            self._n_peaks += 1
            self._since_fit += 1
            if self._since_fit >= max(1.0, _REFIT_SHARE * len(self._peaks)):
                self._fit()
        self._update()

    # -- internals ------------------------------------------------------------------------

    def _start(self) -> None:
        warmup = np.asarray(self._warmup)
        self._level_score = float(np.quantile(warmup, self.level))
        excess = warmup[warmup > self._level_score] - self._level_score
        self._peaks.extend(excess.tolist())
        self._n = len(warmup)
        self._n_peaks = len(excess)
        self._warmup = []
        self._fit()
        self._update()

    def _fit(self) -> None:
        self._since_fit = 0
        self._shape, self._scale = _fit_gpd(np.fromiter(self._peaks, float, len(self._peaks)))

    def _update(self) -> None:
        if self._n_peaks == 0 or self._scale <= 0.0:
            self._threshold = self._level_score
            return
        ratio = self.risk * self._n / self._n_peaks
        if abs(self._shape) < 1e-9:
            excess = -self._scale * math.log(ratio)
        else:
            excess = self._scale / self._shape * (ratio**-self._shape - 1.0)
        self._threshold = self._level_score + max(excess, 0.0)


def _fit_gpd(excess: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood ``(shape, scale)`` of a GPD for positive ``excess``.

    Profiled over ``theta = shape / scale`` (Grimshaw's reduction): for a given ``theta`` the
    best shape is ``mean(log1p(theta * y))``, leaving a one-dimensional search, done on a grid
    and refined between the best point's neighbours. ``theta = 0`` is the exponential tail.
    """
    y = excess[excess > 0]
    if len(y) == 0:
        return 0.0, 0.0
    mean = float(y.mean())
    if len(y) < _MIN_PEAKS_FOR_SHAPE or float(y.max()) <= float(y.min()) * (1 + 1e-12):
        return 0.0, mean
    y_max = float(y.max())
    n = len(y)

    def neg_loglik(theta: float) -> float:
        if theta == 0.0:
            return n * (math.log(mean) + 1.0)
        shape = float(np.log1p(theta * y).mean())
        scale = shape / theta
        if scale <= 0.0 or not math.isfinite(scale):
            return math.inf
        return n * (math.log(scale) + 1.0 + shape)

    lower = -(1.0 - 1e-6) / y_max
    grid = np.r_[np.linspace(lower, 0.0, 30)[:-1], 0.0, np.geomspace(1e-4, 1e4, 40) / mean]
    values = np.array([neg_loglik(float(t)) for t in grid])
    i = int(np.argmin(values))
    theta = float(grid[i])
    if 0 < i < len(grid) - 1:
        # scipy.optimize costs 0.15 s to import: paid at the first fit, not by every flow.
        from scipy.optimize import minimize_scalar

        found = minimize_scalar(
            neg_loglik, bounds=(float(grid[i - 1]), float(grid[i + 1])), method="bounded"
        )
        if found.fun < values[i]:
            theta = float(found.x)
    if theta == 0.0:
        return 0.0, mean
    shape = float(np.log1p(theta * y).mean())
    return shape, shape / theta
