"""Why `IntervalForecaster`: sMAPE of the alternatives the issue names, on NAB realKnownCause.

Not part of any flow; re-runs the comparison behind the choice (one configuration for all
series, season = one day of points, same targets as `airis eval forecast`):

* River's ``HoltWinters(alpha=0.3, beta=0.01, gamma=0.1, seasonality=season)`` online, scored
  on every target from two seasons on, beside our forecaster and seasonal-naive;
* an offline model — scikit-learn ``HistGradientBoostingRegressor`` (absolute loss) on 24
  normalised lags plus seasonal-lag features, one per step h, trained on the first half of
  every series pooled — scored on the second halves, beside our online forecaster on the
  same targets. It would have been exported to ONNX only if it won overall.

Run: ``.venv/bin/python benchmarks/forecast_alternatives.py [NAB_DIR]`` (about a minute).
"""

from __future__ import annotations

import csv
import itertools
import statistics
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
from river import time_series
from sklearn.ensemble import HistGradientBoostingRegressor

from airis.operators.planning.forecaster import IntervalForecaster

NAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"
HORIZONS = (1, 12)
LAGS = 24


def main() -> None:
    folder = (Path(sys.argv[1]) if len(sys.argv) > 1 else NAB) / "data" / "realKnownCause"
    series = {p.stem: _read(p) for p in sorted(folder.glob("*.csv"))}
    ours = {name: _online(IntervalForecaster(horizon=12, season=m), y) for name, (y, m) in
            series.items()}  # fmt: skip
    print("online, targets from two seasons on: mean sMAPE over the series")
    for h in HORIZONS:
        rows = []
        for name, (y, m) in series.items():
            hw = _online_river(time_series.HoltWinters(0.3, 0.01, 0.1, seasonality=m), y, m)
            idx = np.arange(2 * m, len(y))
            rows.append(
                (_smape(y[idx], ours[name][idx - h, h - 1]), _smape(y[idx], hw[idx - h, h - 1]),
                 _smape(y[idx], y[idx - m]))
            )  # fmt: skip
        a = np.mean(rows, axis=0)
        print(f"  h={h}: ours {a[0]:.2f}  river HoltWinters {a[1]:.2f}  seasonal-naive {a[2]:.2f}")
    print("offline GBM trained on first halves, second halves scored: mean sMAPE")
    for h in HORIZONS:
        x_train, y_train = [], []
        for y, m in series.values():
            for t in range(max(LAGS, m), len(y) // 2 - h):
                f, last, scale = _features(y, m, t, h)
                x_train.append(f)
                y_train.append((y[t + h] - last) / scale)
        gbm = HistGradientBoostingRegressor(
            max_iter=200, learning_rate=0.05, loss="absolute_error", random_state=0
        ).fit(np.array(x_train), np.clip(y_train, -50, 50))
        rows = []
        for name, (y, m) in series.items():
            idx = np.arange(max(len(y) // 2, 2 * m), len(y))
            feats = [_features(y, m, t - h, h) for t in idx]
            pred = gbm.predict(np.array([f for f, _, _ in feats]))
            pred = pred * np.array([s for _, _, s in feats]) + np.array([v for _, v, _ in feats])
            rows.append((_smape(y[idx], ours[name][idx - h, h - 1]), _smape(y[idx], pred),
                         _smape(y[idx], y[idx - m])))  # fmt: skip
            print(f"    h={h} {name}: ours {rows[-1][0]:.2f} gbm {rows[-1][1]:.2f}")
        a = np.mean(rows, axis=0)
        print(f"  h={h}: ours {a[0]:.2f}  offline GBM {a[1]:.2f}  seasonal-naive {a[2]:.2f}")


def _read(path: Path) -> tuple[np.ndarray, int]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    stamps = [datetime.fromisoformat(r["timestamp"]) for r in rows]
    step = statistics.median((b - a).total_seconds() for a, b in itertools.pairwise(stamps))
    return np.array([float(r["value"]) for r in rows]), round(86400 / step)


def _online(model: IntervalForecaster, y: np.ndarray) -> np.ndarray:
    out = np.empty((len(y), model.horizon))
    for t, v in enumerate(y):
        model.learn_one(float(v))
        out[t] = model.forecast().mean
    return out


def _online_river(model: time_series.HoltWinters, y: np.ndarray, m: int) -> np.ndarray:
    out = np.full((len(y), max(HORIZONS)), np.nan)
    for t, v in enumerate(y):
        model.learn_one(float(v))
        if t >= m:  # River's HoltWinters cannot forecast before one full season
            out[t] = model.forecast(horizon=max(HORIZONS))
    return out


def _features(y: np.ndarray, m: int, t: int, h: int) -> tuple[np.ndarray, float, float]:
    """Features at time t (inclusive) for y[t + h], relative to the last value and its scale."""
    w = y[t - LAGS + 1 : t + 1]
    last = float(y[t])
    scale = float(np.mean(np.abs(np.diff(w)))) + 1e-9
    seasonal = y[t + h - m] if t + h - m >= 0 else last
    seasonal_now = y[t - m] if t - m >= 0 else last
    extra = [(seasonal - last) / scale, (seasonal - seasonal_now) / scale,
             (np.mean(w) - last) / scale, np.log1p(abs(last) / scale)]  # fmt: skip
    return np.concatenate([(w - last) / scale, extra]), last, scale


def _smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    d = np.abs(actual) + np.abs(forecast)
    return float(
        np.mean(np.where(d > 0, 200 * np.abs(actual - forecast) / np.where(d > 0, d, 1), 0))
    )


if __name__ == "__main__":
    main()
