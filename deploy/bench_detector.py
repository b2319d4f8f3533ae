"""Per-point cost of the per-series detectors, alone (run by `just bench`).

`EnsembleDetector` is the one detector of the metrics flow (`metrics_detector`) and of
`airis detect` (wrapped in `EventOnset`), in one configuration; its target is at least 100k
points/s on one core (issue 12). `RobustSeasonalDetector`, the flow's detector before it, is
measured for comparison. All get the same 200k-point series.
"""

from __future__ import annotations

import pickle
import random
import time
from datetime import UTC, datetime, timedelta

from airis.operators.base import SeriesDetector
from airis.operators.detector_bank import metrics_detector
from airis.operators.ensemble_detector import EventOnset
from airis.operators.robust_detector import RobustSeasonalDetector

POINTS = 200_000


def main() -> None:
    rng = random.Random(1)
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    points = [(t0 + timedelta(seconds=10 * i), 100 + rng.gauss(0, 2)) for i in range(POINTS)]
    bench("flow detector (metrics_detector)", metrics_detector(), points)
    bench("airis detect (EventOnset(EnsembleDetector()))", EventOnset(), points)
    bench("old flow detector (RobustSeasonalDetector)", RobustSeasonalDetector(), points)


def bench(label: str, detector: SeriesDetector, points: list[tuple[datetime, float]]) -> None:
    started = time.perf_counter()
    for ts, value in points:
        detector.update_one(ts, value)
    elapsed = time.perf_counter() - started
    print(
        f"{label}: {elapsed / len(points) * 1e6:.2f} us/point "
        f"({len(points) / elapsed:,.0f} points/s, one core, {len(points):,} points), "
        f"state {len(pickle.dumps(detector)):,} bytes pickled"
    )


if __name__ == "__main__":
    main()
