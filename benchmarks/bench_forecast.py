"""Per-point cost and state size of the forecasting operators, alone.

`IntervalForecaster` (learn one value, then forecast the whole horizon, as a flow step would)
at the settings of `airis eval forecast` (12 steps, a daily season of 288 five-minute
points) and at a longer horizon; `ExhaustionPredictor` on a 10-second memory series;
`ServicePlanner` per service window (5-minute steps; and 1-minute ones), and with a batch of
windows a call (`update_many`), as the flow calls it. Each
gets the same seeded series; state is measured as the pickled size after the run.
"""

from __future__ import annotations

import math
import pickle
import random
import time
from datetime import UTC, datetime, timedelta

from airis.operators.planning.capacity import ExhaustionPredictor
from airis.operators.planning.forecaster import IntervalForecaster
from airis.operators.planning.service_planner import ServicePlanner
from airis.sources.simulator import SIGNALS

POINTS = 50_000


def main() -> None:
    rng = random.Random(1)
    values = [50 + 10 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 2) for i in range(POINTS)]
    for horizon, season in ((12, 288), (15, 1440), (1, None)):
        model = IntervalForecaster(horizon=horizon, season=season)
        started = time.perf_counter()
        for y in values:
            model.learn_one(y)
            model.forecast()
        elapsed = time.perf_counter() - started
        _report(f"IntervalForecaster(horizon={horizon}, season={season})", model, elapsed)

    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    points = [(t0 + timedelta(seconds=10 * i), 60 + rng.gauss(0, 0.3)) for i in range(POINTS)]
    predictor = ExhaustionPredictor()
    started = time.perf_counter()
    for ts, value in points:
        predictor.update_one(ts, value)
    _report("ExhaustionPredictor() on 10-s points", predictor, time.perf_counter() - started)

    # What the flow runs per service: its default settings, one 10-s window of 8 signals a call.
    for step in (300, 60):
        planner = ServicePlanner(
            step_seconds=step, horizon_steps=900 // step, season_steps=86_400 // step
        )
        windows = [
            {**{s: 1.0 for s in SIGNALS}, "request_rate": 100 + 5 * v, "cpu": v, "memory": v,
             "disk": v / 2}
            for _, v in points
        ]  # fmt: skip
        started = time.perf_counter()
        for (ts, _), window in zip(points, windows, strict=True):
            planner.update_one(ts, window)
        label = f"ServicePlanner(step_seconds={step}) per 10-s service window"
        _report(label, planner, time.perf_counter() - started)
    # As the flow calls it: a service's closed windows of a batch of input at once (here 144,
    # what a poll of the Kafka benchmark's topic gives a service).
    planner = ServicePlanner(step_seconds=300, horizon_steps=3, season_steps=288)
    started = time.perf_counter()
    for i in range(0, POINTS, 144):
        planner.update_many([ts for ts, _ in points[i : i + 144]], windows[i : i + 144])
    label = "ServicePlanner(step_seconds=300) per 10-s service window, 144 windows a call"
    _report(label, planner, time.perf_counter() - started)


def _report(label: str, model: object, elapsed: float) -> None:
    print(
        f"{label}: {elapsed / POINTS * 1e6:.1f} us/point ({POINTS / elapsed:,.0f} updates/s,"
        f" one core, {POINTS:,} points), state {len(pickle.dumps(model)):,} bytes pickled"
    )


if __name__ == "__main__":
    main()
