"""Per-point cost of the per-series detectors, alone (run by `just bench`).

`EnsembleDetector` is the one detector of the metrics flow (`metrics_detector`) and of
`airis detect` (wrapped in `EventOnset`), in one configuration; its target is at least 100k
points/s on one core (issue 12). Both get the same 200k-point series. The flow runs the first as
rows of its `DetectorBank` (`airis.operators.detectors.ensemble_kernel`), a batch of the service's
points per call: measured last, on the same points spread over 8 signals, 800 per call.
"""

from __future__ import annotations

import pickle
import random
import time
from datetime import UTC, datetime, timedelta

from airis.operators.base import SeriesDetector
from airis.operators.detectors.detector_bank import DetectorBank, metrics_detector
from airis.operators.detectors.event_onset import EventOnset

POINTS = 200_000


def main() -> None:
    rng = random.Random(1)
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    points = [(t0 + timedelta(seconds=10 * i), 100 + rng.gauss(0, 2)) for i in range(POINTS)]
    bench("flow detector (metrics_detector)", metrics_detector(), points)
    bench("airis detect (EventOnset(EnsembleDetector()))", EventOnset(), points)
    bench_bank(points, signals=8, batch=800)


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


def bench_bank(points: list[tuple[datetime, float]], signals: int, batch: int) -> None:
    bank = DetectorBank(priors={})
    names = [f"s{i % signals}" for i in range(len(points))]
    stamps = [ts for ts, _ in points]
    values = [value for _, value in points]
    bank.assess_many(names[:1], stamps[:1], values[:1])  # compiled (or loaded) before timing
    started = time.perf_counter()
    for i in range(1, len(points), batch):
        bank.assess_many(names[i : i + batch], stamps[i : i + batch], values[i : i + batch])
    elapsed = time.perf_counter() - started
    row_bytes = bank._state.itemsize * bank._state.shape[1]
    print(
        f"flow bank, batched (DetectorBank.assess_many, {signals} signals, {batch} points a "
        f"call): {elapsed / len(points) * 1e6:.2f} us/point ({len(points) / elapsed:,.0f} "
        f"points/s, one core, assessments included), state {row_bytes:,} bytes a series "
        f"in memory, "
        f"{len(pickle.dumps(bank)) / signals:,.0f} pickled"
    )


if __name__ == "__main__":
    main()
