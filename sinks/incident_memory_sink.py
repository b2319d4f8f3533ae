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
import time
from collections import deque
from collections.abc import Callable, Sequence
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
    snapshot: the retry policy is the sink's, the writing the exporter's."""

    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter
        self._pending: deque[Incident] = deque()
        self._failing = False

    def write_batch(self, values: list[Incident]) -> None:
        self._pending.extend(values)
        dropped = [self._pending.popleft() for _ in range(len(self._pending) - MAX_PENDING)]
        if dropped:
            telemetry.SINK_FAILURES.labels(sink=SINK).inc(len(dropped))
            logger.error(
                "incident memory: %d incidents dropped after failed writes (kept %d): %s",
                len(dropped), MAX_PENDING, ", ".join(i.id for i in dropped),
            )  # fmt: skip
        self._flush()

    def snapshot(self) -> None:
        self._flush()
        return None

    def close(self) -> None:
        self._flush()
        self._exporter.shutdown()

    def _flush(self) -> None:
        if not self._pending:
            return
        started = time.perf_counter()
        batch = list(self._pending)
        if self._exporter.export(batch) is ExportResult.FAILURE:
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
        self._pending.clear()
        telemetry.SINK_SECONDS.labels(sink=SINK).observe(time.perf_counter() - started)
        telemetry.SINK_BATCH.labels(sink=SINK).observe(len(batch))


def _open_memory(config: MemoryConfig | None) -> IncidentMemory:
    from airis.sinks.incident_memory import IncidentMemory

    return IncidentMemory(config if config is not None else Settings().memory)
