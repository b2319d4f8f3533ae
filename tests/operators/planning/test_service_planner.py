"""`ServicePlanner` holds a forecaster and a predictor only for the signals a service reports."""

from __future__ import annotations

import math
import pickle
import random
from datetime import UTC, datetime, timedelta

import pytest

from airis.operators.planning.forecaster import Forecast
from airis.operators.planning.service_planner import ServicePlanner

T0 = datetime(2026, 1, 5, tzinfo=UTC)
PLANNED = ("request_rate", "cpu", "memory", "disk")


def _forecast(f: Forecast) -> tuple:
    return f.mean, f.lower, f.upper, f.ready


def _run(planner: ServicePlanner, windows: list[dict[str, float]]) -> list[dict[str, tuple]]:
    plans = [planner.update_one(T0 + timedelta(seconds=10 * i), w) for i, w in enumerate(windows)]
    return [{s: _forecast(f) for s, f in p.forecasts.items()} for p in plans if p.forecasts]


def _windows(signals, hours: float, seed: int, starts: dict[str, int] | None = None):
    rng = random.Random(seed)
    starts = starts or {}
    return [
        {
            s: 50 + 10 * math.sin(i / 300 + k) + rng.gauss(0, 1)
            for k, s in enumerate(signals)
            if i >= starts.get(s, 0)
        }
        for i in range(int(hours * 360))
    ]


def test_a_service_without_planned_signals_holds_no_forecasters() -> None:
    planner = ServicePlanner(step_seconds=60)
    reports = ServicePlanner(step_seconds=60)
    assert _run(planner, _windows(["queue_depth", "gc_pause"], 6, seed=1)) == []
    _run(reports, _windows(PLANNED, 6, seed=1))
    # Four daily profiles (288 bins in single precision, and the latest day) take about
    # 10 KB; none are held for signals that never came.
    assert len(pickle.dumps(planner)) < 2_000 < 10_000 < len(pickle.dumps(reports))


def test_a_signal_that_starts_late_is_forecast_as_by_a_planner_of_its_own() -> None:
    starts = {"disk": 1_000, "cpu": 2_500, "request_rate": 0, "memory": 4_000}
    windows = _windows(PLANNED, 24, seed=2, starts=starts)
    together = _run(ServicePlanner(step_seconds=60), windows)
    first, last = together[0], together[-1]
    assert (list(first), list(last)) == (["request_rate"], list(PLANNED))
    for signal, start in starts.items():
        alone = ServicePlanner(step_seconds=60, forecast_signals=[signal], scaling_signal="")
        own = [{signal: plan[signal]} for plan in together if signal in plan]
        assert _run(alone, [{signal: w[signal]} if signal in w else {} for w in windows]) == own
        assert start > 0 or own


def test_forecasts_come_in_the_configured_order_whatever_order_signals_came_in() -> None:
    starts = {"disk": 0, "memory": 600, "cpu": 1_200, "request_rate": 1_800}
    plans = _run(ServicePlanner(step_seconds=60), _windows(PLANNED, 24, seed=3, starts=starts))
    assert list(plans[-1]) == list(PLANNED)
    assert all(list(plan) == [s for s in PLANNED if s in plan] for plan in plans)


def test_a_batch_of_windows_plans_as_the_windows_one_by_one() -> None:
    """`update_many` over batches of any size gives, window by window, the plans (forecasts,
    capacity warnings, replica advice) of `update_one`, and the same state after."""
    rng = random.Random(3)
    windows = _windows(PLANNED, 6, seed=5, starts={"disk": 700})
    for i, window in enumerate(windows):  # a leak and a climb: warnings and advice come too
        window["memory"] = 40 + max(0, i - 900) / 12 + rng.gauss(0, 0.3)
        window["cpu"] = 40 + i / 20
        if i % 97 == 0:
            del window["cpu"]
    stamps = [T0 + timedelta(seconds=10 * i) for i in range(len(windows))]
    one_by_one, batched = ServicePlanner(step_seconds=60), ServicePlanner(step_seconds=60)
    expected = [one_by_one.update_one(ts, w) for ts, w in zip(stamps, windows, strict=True)]
    got, i = [], 0
    while i < len(windows):
        size = rng.choice([1, 3, 50, 700])
        got += batched.update_many(stamps[i : i + size], windows[i : i + size])
        i += size
    assert got == expected
    assert sum(bool(p.warnings) for p in got) >= 1 and sum(bool(p.forecasts) for p in got) > 100
    assert sum(p.advice is not None for p in got) >= 1
    assert pickle.dumps(batched) == pickle.dumps(one_by_one)


class _WindowByWindow(ServicePlanner):
    """The loop over the windows `update_columns` ran before `_step_sums` compiled it
    (2026-12-07): the reference its steps, sums and order must match."""

    def _fold_steps(self, times, forecast):
        closes = {}
        for i, t in enumerate(times):
            step = math.floor(t / self.step_seconds)
            if self._step is None or step > self._step:
                if self._step is not None:
                    closes[i] = self._close_step()
                self._step = step
            for signal, column in forecast:
                value = column[i]
                if value is not None and math.isfinite(value):
                    if signal in self._sums:
                        self._sums[signal] += value
                        self._counts[signal] += 1
                    else:
                        self._sums[signal] = value
                        self._counts[signal] = 1
        return closes


@pytest.mark.parametrize("step", [60, 300, 900])
def test_steps_are_summed_as_a_loop_over_the_windows_sums_them(step: float) -> None:
    """Batches of any size, windows out of order (a step never reopens), values missing,
    not finite or -0.0, signals that start late: the same plans and the same state,
    float for float and key for key, as the loop over the windows."""
    rng = random.Random(11)
    times, columns = [], {s: [] for s in PLANNED}
    for i in range(3_000):
        times.append(T0.timestamp() + 10 * i + rng.choice([0, 0, 0, -95, 40]))
        for k, signal in enumerate(PLANNED):
            value = 50 + 10 * math.sin(i / 200 + k) + rng.gauss(0, 1)
            odd = rng.random()
            if i < 400 * (3 - k) or odd < 0.5:  # the first in the order starts last
                value = None
            elif odd < 0.6:
                value = rng.choice([math.nan, math.inf, -0.0, -0.0])
            columns[signal].append(value)
    stamps = [datetime.fromtimestamp(t, UTC) for t in times]
    compiled, reference = ServicePlanner(step_seconds=step), _WindowByWindow(step_seconds=step)
    i = 0
    while i < len(times):
        size = rng.choice([1, 2, 7, 90, 400])
        part = {s: c[i : i + size] for s, c in columns.items()}
        got = compiled.update_columns(times[i : i + size], stamps[i : i + size], part)
        expected = reference.update_columns(times[i : i + size], stamps[i : i + size], part)
        assert pickle.dumps(got) == pickle.dumps(expected)
        assert pickle.dumps(vars(compiled)) == pickle.dumps(vars(reference))
        i += size
    assert compiled._steps_seen >= 30_000 // step and compiled._forecasters is not None


def test_a_step_that_goes_on_in_the_next_batch_keeps_the_order_its_signals_came_in() -> None:
    """The step's sums are state (a snapshot keeps them): signals new to a step that began
    in an earlier batch come after, in the order of their first window; a first -0.0 stays
    -0.0."""
    t = T0.timestamp()
    batches = [
        ([t], {"disk": [5.0]}),
        ([t + 10, t + 20, t + 30], {"cpu": [1.0, 2.0, None], "request_rate": [None, 3.0, None],
                                    "memory": [None, None, -0.0]}),
    ]  # fmt: skip
    planners = ServicePlanner(step_seconds=60), _WindowByWindow(step_seconds=60)
    for planner in planners:
        for times, columns in batches:
            planner.update_columns(times, [datetime.fromtimestamp(s, UTC) for s in times], columns)
    compiled, reference = planners
    assert list(reference._sums.items()) == [
        ("disk", 5.0), ("cpu", 3.0), ("request_rate", 3.0), ("memory", -0.0)
    ]  # fmt: skip
    assert pickle.dumps(vars(compiled)) == pickle.dumps(vars(reference))
