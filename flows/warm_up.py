"""What a flow's first batch would pay while its input waits, paid before the flow reads.

A new process compiles nothing (numba's cache keeps the kernels of `airis.operators`), but
loading each kernel from that cache, with numba's own first-use imports, takes about a
second; and the embedded store's first insert imports pandas (chdb's ``Python()`` table
function). Paid at a flow's first batch, that is a second of input waiting, which the run's
first alerts carry: at 60,000 points/s they came 0.75 s after their window instead of 0.1 s
(BENCHMARKS.md, the latency rows). `warm_up` pays it when the flow is built, before its
sources open, by running one throwaway service's synthetic hour through the per-service
detection and planning. Nothing it makes is kept (but in the bounded caches of timestamps),
counted or written, and a warm-up that fails is logged, never a reason not to start.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime, timedelta

from airis.batches import MetricBatch
from airis.events import MetricPoint
from airis.flows.detection import service_detector
from airis.flows.model_ops import planning_step
from airis.settings import Settings
from airis.sinks.chdb_store import preload_chdb

logger = logging.getLogger(__name__)

__all__ = ["warm_up"]

#: The throwaway service (its state is dropped: a flow's service of that name is not touched).
SERVICE = "airis-warm-up"
#: Its span: an hour, long enough for the planner's steps to forecast and fit (or `WINDOWS`
#: windows, if they are longer).
HOUR = timedelta(hours=1)
WINDOWS = 6


def warm_up(settings: Settings) -> float:
    """Load the kernels and the lazy imports a flow's first batch would; the seconds it took.

    >>> warm_up(Settings()) >= 0.0
    True
    """
    started = time.perf_counter()
    try:
        detector = service_detector(settings.event_time, settings.detection)
        signals = sorted({"warm-up", *settings.planning.signals})
        points = _synthetic(signals, settings.event_time.window_seconds)
        batch = MetricBatch.from_points(SERVICE, points)
        closed, _late = detector.update_batch(batch, time.monotonic())
        if settings.planning.signals:
            planning_step(settings.planning)(None, closed)
        if settings.store.clickhouse_url is None:
            preload_chdb()
    except Exception:  # the first batch pays what is left, as without a warm-up
        logger.warning("warm-up failed; the flow starts without it", exc_info=True)
    took = time.perf_counter() - started
    logger.info("warm-up: compiled kernels and lazy imports loaded in %.2f s", took)
    return took


def _synthetic(signals: list[str], every_seconds: float) -> list[MetricPoint]:
    """A point per signal every ``every_seconds`` over `HOUR` (`WINDOWS` points at least), a
    wave with a step: the values reach the detectors' and the planner's fits, not only their
    warm-up."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    count = max(int(HOUR.total_seconds() // every_seconds), WINDOWS)
    return [
        MetricPoint.model_construct(
            ts=start + timedelta(seconds=i * every_seconds),
            service=SERVICE,
            signal=signal,
            value=50.0 + 10.0 * math.sin(i / 7.0) + (25.0 if i > count * 3 // 4 else 0.0),
            labels={},
        )
        for i in range(count)
        for signal in signals
    ]
