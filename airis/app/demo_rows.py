"""The demo model's training rows, worked out in a process of their own.

`airis demo` trains its model on the simulated run before its own day
(`airis.app.demo_models.prepare_model`). Simulating that run takes about 1.7 s, and the
demo's process spends about 2 s importing its libraries (the flow's, scikit-learn, onnx)
before it trains: `TrainingRows.start`, called before those imports, has a spawned process
simulate the run meanwhile, on the machine's other core. This module imports no training
library itself.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from airis.models.service_features import ServiceRows, training_rows
from airis.sources.simulator import recent_simulation

logger = logging.getLogger(__name__)

__all__ = ["MODEL_HOURS", "TrainingRows"]

#: Simulated hours the demo's model trains on (and as many before them it is checked on).
MODEL_HOURS = 24.0


@dataclass(frozen=True)
class TrainingRows:
    """`training_rows` of ``hours``, ``seed`` and ``end``, on their way from a process."""

    hours: float
    seed: int
    end: datetime
    future: Future[ServiceRows]

    @classmethod
    def start(cls, demo_hours: float, seed: int, demo_end: datetime | None) -> TrainingRows:
        """Start on the rows of the run before the demo's simulated ``demo_hours`` (ending at
        ``demo_end``, default the last whole hour, as `recent_simulation` has it)."""
        end = recent_simulation(demo_hours, seed, demo_end).start
        executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        future = executor.submit(training_rows, MODEL_HOURS, seed, end)
        executor.shutdown(wait=False)  # the process ends once the rows are sent
        return cls(MODEL_HOURS, seed, end, future)

    def rows_for(self, hours: float, seed: int, end: datetime) -> ServiceRows | None:
        """The rows, when started for these arguments; else, or when the process failed,
        None (with a warning for a failure): the caller works them out itself."""
        if (hours, seed, end) != (self.hours, self.seed, self.end):
            self.future.cancel()
            return None
        try:
            return self.future.result()
        except Exception as exc:  # a spawned process that could not start, or died
            logger.warning("demo: training rows from a process failed (%s); simulating here", exc)
            return None
