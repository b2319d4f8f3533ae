"""Per-point cost of the per-series detectors, alone (run by `just bench`).

`EnsembleDetector` is the one detector of the metrics flow (`metrics_detector`) and of
`airis detect` (wrapped in `EventOnset`), in one configuration; its target is at least 100k
points/s on one core (issue 12). Both get the same 200k-point series. The flow runs the first as
rows of its `DetectorBank` (`airis.operators.detectors.ensemble_kernel`), a batch of the service's
points per call: measured next, on the same points spread over 8 signals, 800 per call. Last,
the flow's whole detection step (`ServiceWindowDetector`: the bank, the lateness rule and the
10-s windows) on one simulated service's day, in batches of 1,000 points, in time order (a
keyed JSON topic) and metric after metric (an OTLP message), then in batches of 8 (one tick
of the service: what the demo hands it, and a topic with many services per poll). Last, that
step with each closed window's values read, as planning and the model read them, closing a
batch's windows at once (`OpenWindows.close_many`) and one by one, in turns within the
process (8 rounds each): on a noisy machine a difference of some percent shows only so.
"""

from __future__ import annotations

import pickle
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from in_turns import in_turns  # a sibling script, by path

from airis.batches import MetricBatch
from airis.events import MetricPoint
from airis.operators.base import SeriesDetector
from airis.operators.detectors.detector_bank import DetectorBank, metrics_detector
from airis.operators.detectors.event_onset import EventOnset
from airis.operators.types import observed_values
from airis.operators.windowing.open_windows import OpenWindows
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
    compare_closing(batch=1_000)


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
    points = _day_points()
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


def compare_closing(batch: int, rounds: int = 8) -> None:
    batches = _day_batches(batch)
    points = sum(map(len, batches))
    at_once = OpenWindows.close_many

    def one_by_one(self: OpenWindows, ids: list[int], starts: list[datetime]) -> list:
        return [self.close(w, start) for w, start in zip(ids, starts, strict=True)]

    def closing(close_many: Callable[..., list]) -> Callable[[], float]:
        def run() -> float:
            OpenWindows.close_many = close_many  # type: ignore[method-assign]
            return _run_step(batches, read=True) / points * 1e6

        return run

    try:  # the first round compiles the kernel
        ways = {"at once": closing(at_once), "one by one": closing(one_by_one)}
        medians = in_turns(ways, rounds, warmup=1)
    finally:
        OpenWindows.close_many = at_once  # type: ignore[method-assign]
    closed = ", ".join(f"{way} {median:.2f}" for way, median in medians.items())
    print(
        f"flow detection step with the windows' values read, {batch:,} points a batch, time "
        f"order, windows closed {closed} us/point (median of {rounds} rounds in turns)"
    )


def _day_points() -> list[MetricPoint]:
    """One simulated service's day of points."""
    sim = Simulator(start=datetime(2026, 3, 2, tzinfo=UTC), hours=24, seed=7, faults=[])
    return [
        MetricPoint.model_validate(p)
        for tick in sim.ticks()
        for p in tick
        if (p["service"] if isinstance(p, dict) else p.service) == "frontend"
    ]


def _day_batches(batch: int) -> list[MetricBatch]:
    points = _day_points()
    return [
        MetricBatch.from_points("frontend", points[i : i + batch])
        for i in range(0, len(points), batch)
    ]


def _run_step(batches: list[MetricBatch], read: bool = False) -> float:
    step = ServiceWindowDetector("frontend")
    started = time.perf_counter()
    for b in batches:
        closed, _ = step.update_batch(b, now=0.0)
        if read:  # as planning and the model do
            for window in closed:
                observed_values(window.signals)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
