"""Per-point cost of the metrics flow's detector, alone (run by `just bench`)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from airis.operators.robust_detector import RobustSeasonalDetector

POINTS = 200_000


def main() -> None:
    rng = random.Random(1)
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    points = [(t0 + timedelta(seconds=10 * i), 100 + rng.gauss(0, 2)) for i in range(POINTS)]
    detector = RobustSeasonalDetector()
    started = time.perf_counter()
    for ts, value in points:
        detector.update_one(ts, value)
    elapsed = time.perf_counter() - started
    print(
        f"detector: {elapsed / POINTS * 1e6:.2f} us/point "
        f"({POINTS / elapsed:,.0f} points/s, one core, {POINTS:,} points)"
    )


if __name__ == "__main__":
    main()
