"""Per-point cost of the per-series detectors, alone (run by `just bench`).

`RobustSeasonalDetector` is the metrics flow's; `EnsembleDetector` is `airis detect`'s (its
target: at least 50k points/s on one core). Both get the same 200k-point series.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from airis.operators.base import SeriesDetector
from airis.operators.ensemble_detector import EnsembleDetector
from airis.operators.robust_detector import RobustSeasonalDetector

POINTS = 200_000


def main() -> None:
    rng = random.Random(1)
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    points = [(t0 + timedelta(seconds=10 * i), 100 + rng.gauss(0, 2)) for i in range(POINTS)]
    bench("detector", RobustSeasonalDetector(), points)
    bench("ensemble detector", EnsembleDetector(), points)


def bench(label: str, detector: SeriesDetector, points: list[tuple[datetime, float]]) -> None:
    started = time.perf_counter()
    for ts, value in points:
        detector.update_one(ts, value)
    elapsed = time.perf_counter() - started
    print(
        f"{label}: {elapsed / len(points) * 1e6:.2f} us/point "
        f"({len(points) / elapsed:,.0f} points/s, one core, {len(points):,} points)"
    )


if __name__ == "__main__":
    main()
