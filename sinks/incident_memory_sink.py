"""The incident memory as a dataflow output: every resolved incident upserted into Qdrant.

The memory (`IncidentMemory`) is derived data: incidents are already in ClickHouse and on the
incidents topic. So a write that fails (a Qdrant server down, a local directory held by
another process) must not stop the flow: the incidents are kept, up to `MAX_PENDING`, and
written with the next batch or snapshot; failures are logged and counted
(``airis_sink_failures_total{sink="incident_memory"}``). Beyond `MAX_PENDING` the oldest are
dropped, logged with their ids, and counted too: nothing disappears silently.

Qdrant's local mode serves one process, so the sink has ONE partition: Bytewax places it on
one worker of the cluster and routes every incident there (items are ``(key, Incident)``;
the key is ignored). Upserts are idempotent (the point id derives from the incident id), so
a replay after a restart rewrites the same points.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from airis import telemetry
from airis.events import Incident
from airis.settings import MemoryConfig, Settings
from airis.sinks.exporter import Exporter, ExportResult

if TYPE_CHECKING:  # the Qdrant client costs 0.6 s to import: only a flow that writes does
    from airis.sinks.incident_memory import IncidentMemory

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_PENDING",
    "InMemoryIncidentExporter",
    "IncidentMemoryExporter",
    "IncidentMemorySink",
]

#: Incidents kept while the memory cannot be written.
MAX_PENDING = 10_000
SINK = "incident_memory"


class IncidentMemoryExporter(Exporter):
    """Upsert incidents into the incident memory (`airis.sinks.exporter.Exporter`); the memory
    is opened at the first export (Qdrant's local mode serves one process), and a write that
    fails is a FAILURE with `last_error`, the incidents left to the caller to keep."""

    def __init__(self, open_memory: Callable[[], IncidentMemory]) -> None:
        self._open_memory = open_memory
        self._memory: IncidentMemory | None = None
        self._shutdown = False
        self.last_error = ""

    def export(self, batch: Sequence[Incident]) -> ExportResult:
        """Upsert ``batch`` (one embedding call, one write)."""
        if self._shutdown:
            return self._refused(len(batch))
        try:
            if self._memory is None:
                self._memory = self._open_memory()
            self._memory.upsert_many([(incident, (), (), ()) for incident in batch])
        except Exception as exc:  # a memory that cannot be written must not stop the flow
            self.last_error = f"{type(exc).__name__}: {exc}"
            return ExportResult.FAILURE
        return ExportResult.SUCCESS

    def force_flush(self) -> bool:
        """Every export is written when it returns: always True."""
        return True

    def shutdown(self) -> None:
        """Close the memory; a second call only warns."""
        if not self._shutting_down():
            return
        if self._memory is not None:
            self._memory.close()


class InMemoryIncidentExporter(Exporter):
    """`IncidentMemoryExporter`'s twin: keeps the last version of each incident by id."""

    def __init__(self) -> None:
        self.incidents: dict[str, Incident] = {}
        self._shutdown = False
        self.last_error = ""

    def export(self, batch: Sequence[Incident]) -> ExportResult:
        """Keep ``batch``; FAILURE after shutdown."""
        if self._shutdown:
            return self._refused(len(batch))
        self.incidents.update((incident.id, incident) for incident in batch)
        return ExportResult.SUCCESS

    def force_flush(self) -> bool:
        """Nothing is buffered: always True."""
        return True

    def shutdown(self) -> None:
        """Stop accepting incidents; a second call only warns."""
        self._shutting_down()


class IncidentMemorySink(FixedPartitionedSink[Incident, None]):
    """Upsert ``(key, Incident)`` items into the incident memory (see the module docstring)."""

    def __init__(
        self,
        config: MemoryConfig | None = None,
        memory_factory: Callable[[], IncidentMemory] | None = None,
    ) -> None:
        self.config = config
        self.memory_factory = memory_factory
        if memory_factory is None:
            # Imported when the flow is built, not in `build_part`: Bytewax builds a sink's
            # partition when its first item comes, and importing the Qdrant client there
            # stalled the flow's thread (0.6 s) at its first resolved incident, seconds into
            # a stream (a py-spy timeline of `benchmarks/bench_kafka.py --only c`).
            import airis.sinks.incident_memory  # noqa: F401

    def list_parts(self) -> list[str]:
        return [SINK]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _MemoryPartition:
        factory = self.memory_factory or (lambda: _open_memory(self.config))
        return _MemoryPartition(IncidentMemoryExporter(factory))


class _MemoryPartition(StatefulSinkPartition[Incident, None]):
    """Keeps what the exporter could not write (up to `MAX_PENDING`) for the next batch or
    snapshot: the retry policy is the sink's, the writing the exporter's.

    The writes run on a thread of the partition's own, in the order they were asked for, so
    the flow goes on while they do: a Qdrant server that answers slowly, or local mode's
    commit to disk of each incident (0.9 s of a 96-hour OTLP replay's main thread,
    BENCHMARKS.md), does not hold up detection. `close` waits for them."""

    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter
        self._pending: deque[Incident] = deque()
        self._lock = threading.Lock()  # `_pending` is shared with the writing thread
        self._failing = False  # only the writing thread reads or sets it
        self._writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="airis-memory")
        self._queued = False  # a write is asked for and has not started

    def _ask_for_write(self) -> None:
        # One write waits at most: while a server is down each one waits out the client's
        # timeout, and a write per batch would queue up for as long as the outage lasts.
        with self._lock:
            if self._queued:
                return
            self._queued = True
        self._writes.submit(self._flush).add_done_callback(_log_failure)

    def write_batch(self, values: list[Incident]) -> None:
        with self._lock:
            self._pending.extend(values)
            self._drop_beyond_max()
        self._ask_for_write()

    def snapshot(self) -> None:
        self._ask_for_write()  # a retry; the memory is derived data: no wait
        return None

    def close(self) -> None:
        self._ask_for_write()
        self._writes.submit(self._exporter.shutdown).add_done_callback(_log_failure)
        self._writes.shutdown(wait=True)

    def _drop_beyond_max(self) -> None:
        dropped = [self._pending.popleft() for _ in range(len(self._pending) - MAX_PENDING)]
        if dropped:
            telemetry.SINK_FAILURES.labels(sink=SINK).inc(len(dropped))
            logger.error(
                "incident memory: %d incidents dropped after failed writes (kept %d): %s",
                len(dropped), MAX_PENDING, ", ".join(i.id for i in dropped),
            )  # fmt: skip

    def _flush(self) -> None:
        with self._lock:
            self._queued = False
            batch, self._pending = list(self._pending), deque()
        if not batch:
            return
        started = time.perf_counter()
        if self._exporter.export(batch) is ExportResult.FAILURE:
            with self._lock:  # kept, oldest first, before what came meanwhile
                self._pending.extendleft(reversed(batch))
                self._drop_beyond_max()
            telemetry.SINK_FAILURES.labels(sink=SINK).inc()
            if not self._failing:
                logger.warning(
                    "incident memory: write failed, %d incidents kept for a retry: %s",
                    len(batch), self._exporter.last_error,
                )  # fmt: skip
            self._failing = True
            return
        if self._failing:
            logger.info("incident memory: writing again (%d incidents caught up)", len(batch))
        self._failing = False
        telemetry.SINK_SECONDS.labels(sink=SINK).observe(time.perf_counter() - started)
        telemetry.SINK_BATCH.labels(sink=SINK).observe(len(batch))


def _log_failure(write: Future[None]) -> None:
    # The exporter's writes never raise; anything the writing thread raises (closing the
    # memory included) is logged here, not lost with its future.
    if write.exception() is not None:
        logger.error("incident memory: its thread failed", exc_info=write.exception())


def _open_memory(config: MemoryConfig | None) -> IncidentMemory:
    from airis.sinks.incident_memory import IncidentMemory

    return IncidentMemory(config if config is not None else Settings().memory)
