"""`ForecasterRows`: a row added later forecasts as a row made with the others."""

from __future__ import annotations

import math
import pickle
import random

from airis.operators.planning.forecaster_rows import ForecasterRows


def test_rows_added_one_by_one_forecast_as_rows_made_at_once() -> None:
    rng = random.Random(5)
    starts = [0, 70, 300]  # when each row gets its first value
    made = ForecasterRows(len(starts), horizon=3, season=48, warmup=20)
    added = ForecasterRows(0, horizon=3, season=48, warmup=20)
    for t in range(600):
        rows = [r for r, start in enumerate(starts) if t >= start]
        while len(added) < len(rows):
            assert added.add_row() == len(added) - 1
        values = [40 + 10 * math.sin(2 * math.pi * t / 48 + r) + rng.gauss(0, 1) for r in rows]
        made.learn(rows, values)
        added.learn(rows, values)
        if t == 400:
            added = pickle.loads(pickle.dumps(added))
        for r in rows:
            assert added.forecast(r) == made.forecast(r)
            assert added.learned(r) == made.learned(r) == t - starts[r] + 1
    assert all(made.forecast(r).ready for r in range(len(starts)))
