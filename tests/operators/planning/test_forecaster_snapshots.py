"""Forecasters snapshotted before they kept their state as rows resume where they were.

``data/forecasters-before-rows.pickle`` holds an `IntervalForecaster` and a `ServicePlanner`
pickled by the code before `airis.operators.planning.forecaster_rows` existed, with what
they forecast next, then, from the inputs below (made by `_series` and `_windows`).
"""

from __future__ import annotations

import math
import pickle
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

FIXTURE = Path(__file__).parent / "data" / "forecasters-before-rows.pickle"
T0 = datetime(2026, 1, 5, tzinfo=UTC)
#: Values the forecaster had learned, windows the planner had seen, when pickled.
LEARNED, SEEN = 600, 8000


def _series() -> list[float]:
    rng = random.Random(3)
    return [50 + 10 * math.sin(2 * math.pi * t / 288) + rng.gauss(0, 2) for t in range(700)]


def _windows() -> list[dict[str, float]]:
    rng = random.Random(4)
    windows = []
    for i in range(SEEN + 1200):
        v = 60 + 10 * math.sin(2 * math.pi * i / 8640) + rng.gauss(0, 0.5)
        windows.append({"request_rate": 100 + 5 * v, "cpu": v, "memory": v, "disk": v / 2})
    return windows


def _forecast(f) -> list:
    return [list(f.mean), list(f.lower), list(f.upper), f.ready]


def _forecaster_after(forecaster) -> list[list]:
    out = []
    for y in _series()[LEARNED:]:
        forecaster.learn_one(y)
        out.append(_forecast(forecaster.forecast()))
    return out


def _planner_after(planner) -> list[dict[str, list]]:
    out = []
    for i, window in enumerate(_windows()[SEEN:], SEEN):
        plan = planner.update_one(T0 + timedelta(seconds=10 * i), window)
        if plan.forecasts:
            out.append({s: _forecast(f) for s, f in plan.forecasts.items()})
    return out


def test_a_forecaster_pickled_before_rows_forecasts_as_it_would_have() -> None:
    before = pickle.loads(FIXTURE.read_bytes())
    forecaster = pickle.loads(before["forecaster"])
    assert _forecaster_after(forecaster) == before["forecaster_after"]


def test_a_planner_pickled_before_rows_plans_as_it_would_have() -> None:
    before = pickle.loads(FIXTURE.read_bytes())
    planner = pickle.loads(before["planner"])
    after = _planner_after(planner)
    assert len(after) == len(before["planner_after"]) > 30
    assert after == before["planner_after"]
