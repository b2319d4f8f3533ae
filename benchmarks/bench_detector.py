"""Per-point cost of the per-series detectors, alone (run by `just bench`).

`EnsembleDetector` is the one detector of the metrics flow (`metrics_detector`) and of
`airis detect` (wrapped in `EventOnset`), in one configuration; its target is at least 100k
points/s on one core (issue 12). Both get the same 200k-point series. The flow runs the first as
rows of its `DetectorBank` (`airis.operators.detectors.ensemble_kernel`), a batch of the service's
points per call: measured next, on the same points spread over 8 signals, 800 per call. Last,
the flow's whole detection step (`ServiceWindowDetector`: the bank, the lateness rule and the
10-s windows) on one simulated service's day, in batches of 1,000 points, in time order (a
keyed JSON topic) and metric after metric (an OTLP message), then in batches of 8 (one tick
of the service: what the demo hands it, and a topic with many services per poll).
"""

from __future__ import annotations

import pickle
import random
import time
from datetime import UTC, datetime, timedelta

from airis.batches import MetricBatch
from airis.events import MetricPoint
from airis.operators.base import SeriesDetector
from airis.operators.detectors.detector_bank import DetectorBank, metrics_detector
from airis.operators.detectors.event_onset import EventOnset
from airis.operators.windowing.windowed_detector import ServiceWindowDetector
from airis.sources.simulator import Simulator

POINTS = 200_000


def main() -> None:
    rng = random.Random(1)
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    points = [(t0 + timedelta(seconds=10 * i), 100 + rng.gauss(0, 2)) for i in range(POINTS)]
    bench("flow detector (metrics_detector)", metrics_detector(), points)
    bench("airis detect (EventOnset(EnsembleDetector()))", EventOnset(), points)
    bench_bank(points, signals=8, batch=800)
    bench_window_step(batch=1_000)
    bench_window_step(batch=8)  # one tick of a service: the demo's batches, a busy topic's


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


def bench_window_step(batch: int) -> None:
    sim = Simulator(start=datetime(2026, 3, 2, tzinfo=UTC), hours=24, seed=7, faults=[])
    points = [
        MetricPoint.model_validate(p)
        for tick in sim.ticks()
        for p in tick
        if (p["service"] if isinstance(p, dict) else p.service) == "frontend"
    ]
    for order in ("time order", "metric after metric"):
        batches = []
        for i in range(0, len(points), batch):
            chunk = points[i : i + batch]
            if order != "time order":
                chunk = sorted(chunk, key=lambda p: p.signal)  # stable: each metric in time order
            batches.append(MetricBatch.from_points("frontend", chunk))
        elapsed = min(_run_step(batches) for _ in range(3))  # the first compiles the kernel
        print(
            f"flow detection step (ServiceWindowDetector, one service's day, {batch:,} points "
            f"a batch, {order}): {elapsed / len(points) * 1e6:.2f} us/point "
            f"({len(points) / elapsed:,.0f} points/s, one core, windows closed included)"
        )


def _run_step(batches: list[MetricBatch]) -> float:
    step = ServiceWindowDetector("frontend")
    started = time.perf_counter()
    for b in batches:
        step.update_batch(b, now=0.0)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
