"""Per-service capacity planning: forecasts with intervals, exhaustion warnings, replica advice."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numba
import numpy as np

from airis.operators.planning.capacity import ExhaustionPredictor, ExhaustionWarning
from airis.operators.planning.forecaster import Forecast, IntervalForecaster
from airis.operators.planning.forecaster_rows import ForecasterRows
from airis.operators.planning.scaling import ScalingAdvisor, ScalingRecommendation

__all__ = ["Plan", "ServicePlanner"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Plan:
    """What one update of a `ServicePlanner` produced (mostly nothing).

    ``forecasts``: per signal, the forecast made at ``ts`` for the next steps of
    ``step_seconds``; ``warnings``: per signal, an exhaustion warning; ``advice``: a replica
    recommendation from the forecast load, when it changed.
    """

    ts: datetime | None = None
    step_seconds: float = 300.0
    forecasts: dict[str, Forecast] = field(default_factory=dict)
    warnings: dict[str, ExhaustionWarning] = field(default_factory=dict)
    advice: tuple[str, ScalingRecommendation] | None = None


class ServicePlanner:
    """Forecasts a service's load and resources, warns before exhaustion, advises replicas.

    Every update gives one value per signal (a service window). Resource signals
    (``capacity_signals``, percent) go straight to an `ExhaustionPredictor` each, which
    warns when the threshold is expected within its horizon. Forecast signals are averaged
    into steps of ``step_seconds`` (forecasting every 10-s window would cost far more, and
    hold more state, than planning needs); each closed step teaches that signal's
    `IntervalForecaster` (the service's forecasters are rows of one `ForecasterRows`, taught
    in one call). Every ``report_every`` steps, once the forecasts are ready, the
    plan carries them (the flow writes the ``report_steps`` of them), and the upper bound of
    ``scaling_signal``'s forecast over the horizon goes through a `ScalingAdvisor`: the
    advice is reported when its desired replicas change.

    Parameters
    ----------
    step_seconds
        Forecast step.
    horizon_steps
        Steps ahead forecast.
    season_steps
        Steps per season (one day by default), or None.
    report_every
        Steps between reported forecasts.
    forecast_signals
        Signals forecast.
    capacity_signals
        Percent signals watched for exhaustion.
    threshold
        Percent whose crossing the capacity warnings predict.
    warn_within_seconds
        Warn when the crossing is expected within this long.
    scaling_signal
        Per-replica utilisation signal the replica advice follows (one of forecast_signals).
    scaling_target
        Utilisation to run each replica at.
    replicas
        Replicas the service runs now (telemetry does not say).

    Examples
    --------
    >>> import random
    >>> rng = random.Random(42)
    >>> planner = ServicePlanner(step_seconds=60, season_steps=None, horizon_steps=5)
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> plans = []
    >>> for i in range(6 * 180):  # three hours of 10-s windows; cpu climbs, memory leaks
    ...     values = {"request_rate": 100 + rng.gauss(0, 5), "cpu": 40 + i / 20,
    ...               "memory": 50 + max(0, i - 360) / 20 + rng.gauss(0, 0.3), "disk": 30.0}
    ...     plans.append(planner.update_one(t0 + timedelta(seconds=10 * i), values))
    >>> warned = [p for p in plans if "memory" in p.warnings]
    >>> first = warned[0].warnings["memory"]
    >>> first.value < 90 and 15 * 60 < first.eta_seconds < 3600
    True
    >>> advice = [p.advice[1] for p in plans if p.advice]
    >>> advice[-1].action, advice[-1].desired_replicas > 1
    ('scale_up', True)
    """

    def __init__(
        self,
        step_seconds: float = 300.0,
        horizon_steps: int = 3,
        season_steps: int | None = 288,
        report_every: int = 1,
        forecast_signals: Sequence[str] = ("request_rate", "cpu", "memory", "disk"),
        capacity_signals: Sequence[str] = ("memory", "disk"),
        threshold: float = 90.0,
        warn_within_seconds: float = 3600.0,
        scaling_signal: str = "cpu",
        scaling_target: float = 70.0,
        replicas: int = 1,
    ) -> None:
        if step_seconds <= 0 or horizon_steps < 1 or report_every < 1:
            raise ValueError("ServicePlanner: step_seconds, horizon_steps, report_every > 0")
        if scaling_signal and scaling_signal not in forecast_signals:
            raise ValueError(f"ServicePlanner: scaling_signal {scaling_signal!r} is not forecast")
        self.step_seconds = step_seconds
        self.horizon_steps = horizon_steps
        self.season_steps = season_steps
        self.report_every = report_every
        self.forecast_signals = tuple(forecast_signals)
        self.capacity_signals = tuple(capacity_signals)
        self.threshold = threshold
        self.warn_within_seconds = warn_within_seconds
        self.scaling_signal = scaling_signal
        self.scaling_target = scaling_target
        self.replicas = replicas
        # A signal gets its forecaster row and its predictor with its first value: a service
        # that never reports one (most report some of the signals) holds nothing for it.
        self._forecasters: ForecasterRows | None = None
        self._rows: dict[str, int] = {}
        self._predictors: dict[str, ExhaustionPredictor] = {}
        self._advisor = ScalingAdvisor(target=scaling_target) if scaling_signal else None
        self._step: int | None = None
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._steps_seen = 0
        self._advised: int | None = None

    def update_one(self, ts: datetime, values: Mapping[str, float]) -> Plan:
        """Learn one window's values (signal → value) at ``ts``; what that produced."""
        return self.update_many([ts], [values])[0]

    @property
    def signals(self) -> tuple[str, ...]:
        """The signals the planner reads (forecast, then capacity)."""
        return tuple(dict.fromkeys(self.forecast_signals + self.capacity_signals))

    def update_many(
        self, stamps: Sequence[datetime], rows: Sequence[Mapping[str, float]]
    ) -> list[Plan]:
        """`update_one` for each window in order (its end, its values): one call for a
        service's batch of windows."""
        columns = {signal: [row.get(signal) for row in rows] for signal in self.signals}
        return self.update_columns([ts.timestamp() for ts in stamps], stamps, columns)

    def update_columns(
        self,
        times: Sequence[float],
        stamps: Sequence[datetime],
        columns: Mapping[str, Sequence[float | None] | None],
    ) -> list[Plan]:
        """`update_many` with the windows' values as columns: ``columns[signal][i]`` is the
        value of window ``i`` (None: none; a signal missing or None: none in any window);
        ``times`` are the ends in epoch seconds, ``stamps`` the same as datetimes (only
        those a plan reports are read)."""
        warned: dict[int, dict[str, ExhaustionWarning]] = {}
        for signal in self.capacity_signals:  # the predictors learn apart from the forecasts
            column = columns.get(signal)
            if column is None or column.count(None) == len(column):
                continue
            predictor = self._predictors.get(signal) or self._predictor(signal)
            for i, warning in predictor.update_many(times, stamps, column).items():
                warned.setdefault(i, {})[signal] = warning
        forecast = [(s, c) for s in self.forecast_signals if (c := columns.get(s)) is not None]
        closes = self._fold_steps(times, forecast)
        plans = [_NOTHING] * len(times)
        for i in sorted(closes.keys() | warned.keys()):
            plan_ts, forecasts, advice = closes.get(i, (None, {}, None))
            warnings = warned.get(i)
            if warnings or forecasts or advice is not None:
                ts = plan_ts or stamps[i]
                plans[i] = Plan(ts, self.step_seconds, forecasts, warnings or {}, advice)
        return plans

    def _fold_steps(
        self, times: Sequence[float], forecast: list[tuple[str, Sequence[float | None]]]
    ) -> dict[int, tuple[datetime, dict[str, Forecast], Any]]:
        """Add each window's values to its step's sums, closing each step as the next one
        opens (what `_close_step` gives, by the window that opened the next step).

        One compiled call (`_step_sums`) finds the steps and sums them, in the order a loop
        over the windows would (the same floats); Python then runs once per step, not once
        per window."""
        names = [signal for signal, _ in forecast]
        values = np.array([column for _, column in forecast], dtype=np.float64)
        values = values.reshape(len(names), len(times))  # no signal: no rows
        before = [self._sums.get(signal, 0.0) for signal in names]
        had = [signal in self._sums for signal in names]
        opens, steps, sums, counts, firsts = _step_sums(
            np.asarray(times, dtype=np.float64), self.step_seconds, values,
            -1 if self._step is None else self._step, self._step is not None,
            np.array(before, dtype=np.float64), np.array(had, dtype=np.bool_),
        )  # fmt: skip
        closes = {}
        for run, (sums_of, counts_of, firsts_of) in enumerate(
            zip(sums.tolist(), counts.tolist(), firsts.tolist(), strict=True)
        ):
            if run:  # a window opens the next step: the one before closes
                if self._step is not None:
                    closes[int(opens[run - 1])] = self._close_step()
                self._step = int(steps[run - 1])
            # The signals in the order a loop over the windows first saw them in the step.
            for k in sorted(range(len(names)), key=lambda k: (firsts_of[k], k)):
                if counts_of[k]:
                    signal = names[k]
                    self._sums[signal] = sums_of[k]
                    self._counts[signal] = self._counts.get(signal, 0) + counts_of[k]
        return closes

    def _close_step(self) -> tuple[datetime, dict[str, Forecast], Any]:
        assert self._step is not None
        end = _EPOCH + timedelta(seconds=(self._step + 1) * self.step_seconds)
        if self._sums:
            self._learn_step()
        self._sums.clear()
        self._counts.clear()
        self._steps_seen += 1
        forecasters, rows = self._forecasters, self._rows
        if self._steps_seen % self.report_every or forecasters is None:
            return end, {}, None
        forecasts = {s: forecasters.forecast(rows[s]) for s in self.forecast_signals if s in rows}
        forecasts = {s: f for s, f in forecasts.items() if f.ready}
        return end, forecasts, self._advise(forecasts)

    def _learn_step(self) -> None:
        """Teach each signal's forecaster the mean of the step (a signal's first mean gives it
        its row)."""
        forecasters = self._forecasters
        if forecasters is None:
            forecasters = ForecasterRows(0, self.horizon_steps, self.season_steps)
            self._forecasters = forecasters
        rows, counts = self._rows, self._counts
        for signal in self._sums:
            if signal not in rows:
                rows[signal] = forecasters.add_row()
        forecasters.learn(
            [rows[s] for s in self._sums], [total / counts[s] for s, total in self._sums.items()]
        )

    def _predictor(self, signal: str) -> ExhaustionPredictor:
        predictor = self._predictors[signal] = ExhaustionPredictor(
            threshold=self.threshold, warn_within_seconds=self.warn_within_seconds
        )
        return predictor

    def _advise(self, forecasts: dict[str, Forecast]) -> tuple[str, ScalingRecommendation] | None:
        load = forecasts.get(self.scaling_signal)
        if self._advisor is None or load is None:
            return None
        advice = self._advisor.recommend(self.replicas, max(load.upper))
        if advice.desired_replicas == (self._advised or self.replicas):
            return None
        self._advised = advice.desired_replicas
        return self.scaling_signal, advice

    def __setstate__(self, state: dict) -> None:
        forecasters = state["_forecasters"]
        if isinstance(forecasters, dict):  # pickled when each signal had its own object
            rows = [f.rows for f in forecasters.values() if isinstance(f, IntervalForecaster)]
            state = {
                **state,
                "_forecasters": ForecasterRows.stacked(rows)
                if rows
                else ForecasterRows(0, state["horizon_steps"], state["season_steps"]),
                "_rows": {s: i for i, s in enumerate(forecasters)},
            }
        self.__dict__.update(state)


_NOTHING = Plan()


@numba.njit(cache=True)
def _step_sums(times, step_seconds, values, step, started, before, had):  # pragma: no cover
    """`ServicePlanner._fold_steps`' loop over the windows: the windows that open a step
    and the steps they open; per run of windows of one step (the first run goes on with
    the current step, from the sums ``before``), each signal's sum of its finite values, as
    ``+=`` makes it from the first value, their count, and the first window with one."""
    n, k = len(times), values.shape[0]
    opens, steps = np.empty(n, np.int64), np.empty(n, np.int64)
    sums, counts = np.zeros((n + 1, k)), np.zeros((n + 1, k), np.int64)
    firsts = np.full((n + 1, k), n, np.int64)
    sums[0] = before
    run = 0
    for i in range(n):
        at = math.floor(times[i] / step_seconds)
        if not started or at > step:
            opens[run], steps[run] = i, at
            run += 1
            step, started = at, True
        for j in range(k):
            value = values[j, i]
            if math.isfinite(value):
                if counts[run, j] == 0 and (run > 0 or not had[j]):
                    sums[run, j] = value  # the first value as it is (-0.0 too)
                    firsts[run, j] = i
                else:
                    sums[run, j] += value
                counts[run, j] += 1
    return opens[:run], steps[:run], sums[: run + 1], counts[: run + 1], firsts[: run + 1]
