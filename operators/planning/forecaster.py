"""Online multi-step forecasts with conformal prediction intervals, for every series of the flow.

`IntervalForecaster` combines a few simple forecasters (exponential smoothing with and without a
seasonal profile, seasonal-naive, a rolling median) by their recent error at each horizon step,
and wraps the result in intervals from its own past errors (conformal-style, per horizon step).
"""

from __future__ import annotations

from typing import Any

from airis.operators.planning.forecaster_rows import PARAMETERS, Forecast, ForecasterRows

__all__ = ["Forecast", "IntervalForecaster"]


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
    ``horizon=12, season=288``), as one row of a `ForecasterRows`, whose compiled code does
    the learning. Points are assumed regularly spaced (a gap shifts the seasonal
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
        self._rows = ForecasterRows(
            1, horizon, season, coverage, bins, season_rate, error_rate, quantile_rate, warmup
        )

    def __getattr__(self, name: str) -> Any:
        if name in PARAMETERS:  # horizon, season, ...: the rows hold them
            return getattr(self._rows, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def learn_one(self, y: float) -> None:
        """Learn the next value of the series (score the pending forecasts, then update)."""
        self._rows.learn((0,), (y,))

    def forecast(self) -> Forecast:
        """The next ``horizon`` values with their intervals (all zeros before the first value)."""
        return self._rows.forecast(0)

    @property
    def count(self) -> int:
        """Values learned (the non-finite ones not counted)."""
        return self._rows.learned(0)

    @property
    def rows(self) -> ForecasterRows:
        """This forecaster's state: one row."""
        return self._rows

    def __setstate__(self, state: dict) -> None:
        # Pickled before the state was a row: its objects become the row.
        self._rows = state["_rows"] if "_rows" in state else ForecasterRows.from_objects(state)
