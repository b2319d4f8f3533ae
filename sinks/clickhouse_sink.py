"""The ClickHouse writer as Bytewax sinks: `ClickHouseSink`, a ``DynamicSink`` that builds one
`airis.sinks.clickhouse_writer.ClickHouseWriter` per worker, and `PartitionedClickHouseSink`,
whose partitions flush their writer before each snapshot.

Rows are encoded by `airis.sinks.clickhouse_encoding`; they carry their natural identity, so
writing a batch twice (a retry after a failed insert, a Bytewax replay after a restart) leaves
one copy after merges, or with ``FINAL``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bytewax.outputs import (
    DynamicSink,
    FixedPartitionedSink,
    StatefulSinkPartition,
    StatelessSinkPartition,
)
from pydantic import BaseModel

from airis import telemetry
from airis.settings import Settings, StoreConfig
from airis.sinks.batching import MIN_FLUSH_INTERVAL
from airis.sinks.clickhouse_store import ClickHouseStore, open_store
from airis.sinks.clickhouse_writer import ClickHouseWriter
from airis.sinks.migrations import migrate
from airis.sinks.spill import RowSpill

logger = logging.getLogger(__name__)

__all__ = [
    "ClickHouseSink",
    "PartitionedClickHouseSink",
]


# --- Bytewax wrapper --------------------------------------------------------------------------


class ClickHouseSink(DynamicSink[BaseModel]):
    """Write a stream of events (any mix of `TABLES` types) to ClickHouse.

    Unit of parallelism: one `ClickHouseWriter` and one store connection per worker. With the
    embedded chdb backend all workers must run in one process (``-w N`` threads are fine;
    several processes are not: a chdb directory serves one process); with a ClickHouse server
    (``AIRIS_CLICKHOUSE_URL``) any layout works.

    Delivery: at-least-once for every row that left the writer's buffer, and idempotent:
    replays (Bytewax recovery) and insert retries write rows again, and ReplacingMergeTree
    keys keep one copy (dead letters, kept in a plain MergeTree, may appear twice). Rows wait
    in the buffer for up to ``sink_batch_seconds`` (a background thread flushes due rows even
    when no items arrive) and are flushed at `close` (end of a finite input). If the process
    dies abruptly, rows still buffered are lost: Bytewax considers them written once
    ``write_batch`` returns, so recovery does not replay them. ``flush_every_batch=True``
    inserts at the end of every ``write_batch`` instead, closing that window at the cost of
    one insert (one ClickHouse part) per batch: keep input batches large if you use it.

    Parameters
    ----------
    config
        Where to write and how to batch; ``None`` reads ``AIRIS_*`` from the environment at
        build time (``Settings().store``).
    store_factory
        Opens the store for a worker instead of `open_store` (tests, custom backends).
    migrate_schema
        Apply `airis.sinks.migrations.MIGRATIONS` when a worker starts.
    flush_every_batch
        Insert everything at the end of each ``write_batch`` (see Delivery).
    """

    def __init__(
        self,
        config: StoreConfig | None = None,
        *,
        store_factory: Callable[[], ClickHouseStore] | None = None,
        migrate_schema: bool = True,
        flush_every_batch: bool = False,
    ) -> None:
        self.config = config
        self.store_factory = store_factory
        self.migrate_schema = migrate_schema
        self.flush_every_batch = flush_every_batch

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ClickHouseSinkPartition:
        """Open a store for this worker and wrap a writer around it."""
        config = self.config if self.config is not None else Settings().store
        writer = _open_writer(config, self.store_factory, self.migrate_schema)
        logger.info(
            "%s: worker %d/%d writes to %s", step_id, worker_index, worker_count, writer.store
        )
        return _ClickHouseSinkPartition(writer, self.flush_every_batch)


def _open_writer(
    config: StoreConfig,
    store_factory: Callable[[], ClickHouseStore] | None,
    migrate_schema: bool,
) -> ClickHouseWriter:
    store = store_factory() if store_factory else open_store(config)
    try:
        if migrate_schema:
            migrate(store)
    except Exception:
        store.close()
        raise
    return ClickHouseWriter(
        store,
        batch_rows=config.batch_rows,
        batch_seconds=config.batch_seconds,
        flush_interval=max(config.batch_seconds / 4, MIN_FLUSH_INTERVAL),
        close_store=True,
        background=True,  # the flow goes on while the store inserts
    )


class _ClickHouseSinkPartition(StatelessSinkPartition[BaseModel]):
    """One worker's writer: failures are logged by the writer and retried with the next batch."""

    def __init__(self, writer: ClickHouseWriter, flush_every_batch: bool) -> None:
        self._writer = writer
        self._flush_every_batch = flush_every_batch

    def write_batch(self, items: list[BaseModel]) -> None:
        self._writer.export(items)
        if self._flush_every_batch:
            self._writer.force_flush()

    def close(self) -> None:
        self._writer.shutdown()


class PartitionedClickHouseSink(FixedPartitionedSink[list[BaseModel], None]):
    """Write ``(key, [event, ...])`` pairs to ClickHouse through ``partitions`` writers.

    Bytewax builds each partition on exactly one worker of the cluster and routes every item
    to it, so with ``partitions=1`` all writes go through one process: the way to use the
    embedded store (a chdb directory serves one process) from a multi-process flow. With a
    ClickHouse server, more partitions spread the inserts.

    Delivery: inserts run on the writer's own thread while the flow goes on (see
    `BlockBatcher`'s ``background``). At the end of every epoch Bytewax asks for a snapshot,
    and the snapshot first waits for the inserts in flight and inserts everything buffered;
    so rows are in ClickHouse before the input offsets of their epoch are committed, and a
    crash (even ``kill -9``) loses nothing: the restart replays the epoch, and
    ReplacingMergeTree keys absorb the repeated rows.

    When ClickHouse is down the flow goes on (detection, the alert topics): at a snapshot the
    rows that could not be inserted are written to the partition's spill directory
    (``AIRIS_SINK_SPILL_DIR``/<partition>, a `RowSpill` bounded by
    ``AIRIS_SINK_SPILL_MAX_BYTES``) and sent, oldest first, once inserts succeed again (also
    after a restart). The spill directory, like the recovery directory, must outlive the
    process (a persistent volume in a cluster). With ``spill=False`` an insert that still
    fails after `SNAPSHOT_ATTEMPTS` tries fails the flow instead.

    ``flush_at_snapshots=False`` is for a flow run without recovery: Bytewax still asks for a
    snapshot every epoch (10 s), but no epoch's offsets are kept, so no row needs to be stored
    before one. The rows are then left to the writer's thread, which inserts them when due and
    spills what exceeds its buffer, and the flow does not wait for an insert at each epoch (0.1
    to 0.3 s every 10 s at 60,000 points/s: BENCHMARKS.md, the latency rows). Only rows
    spilled during an outage are still sent at a snapshot, as above.
    """

    def __init__(
        self,
        config: StoreConfig | None = None,
        *,
        partitions: int = 1,
        store_factory: Callable[[], ClickHouseStore] | None = None,
        migrate_schema: bool = True,
        spill: bool = True,
        flush_at_snapshots: bool = True,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        self.config = config
        self.partitions = partitions
        self.store_factory = store_factory
        self.migrate_schema = migrate_schema
        self.spill = spill
        self.flush_at_snapshots = flush_at_snapshots

    def list_parts(self) -> list[str]:
        return [f"clickhouse-{i}" for i in range(self.partitions)]

    def build_part(
        self, step_id: str, for_part: str, resume_state: None
    ) -> _SnapshotFlushingPartition:
        config = self.config if self.config is not None else Settings().store
        writer = _open_writer(config, self.store_factory, self.migrate_schema)
        if self.spill:
            writer.spill = RowSpill(config.spill_dir / for_part, config.spill_max_bytes)
        logger.info("%s: partition %s writes to %s", step_id, for_part, writer.store)
        return _SnapshotFlushingPartition(writer, self.flush_at_snapshots)


#: Inserts tried at a snapshot before the flow is failed, when there is no spill directory.
SNAPSHOT_ATTEMPTS = 5


class _SnapshotFlushingPartition(StatefulSinkPartition[list[BaseModel], None]):
    def __init__(self, writer: ClickHouseWriter, flush: bool = True) -> None:
        self._writer = writer
        self._flush = flush

    def write_batch(self, values: list[list[BaseModel]]) -> None:
        started = time.perf_counter()
        events = [event for batch in values for event in batch]
        self._writer.export(events)
        telemetry.SINK_SECONDS.labels(sink="clickhouse").observe(time.perf_counter() - started)
        telemetry.SINK_BATCH.labels(sink="clickhouse").observe(len(events))

    def snapshot(self) -> None:
        spill = self._writer.spill
        if not self._flush and (spill is None or not spill.tables()):
            self._report_buffers()  # the usual case: the writer's thread inserts when due
            return None
        if spill is not None:
            # A store that is down must not stop detection: what is not stored is on disk
            # before the epoch's offsets are committed, and goes first when the store is back.
            if not self._writer.flush_or_spill():
                logger.warning(
                    "ClickHouse unavailable at a snapshot: %d rows spilled to %s (%d bytes)",
                    sum(spill.rows(t) for t in spill.tables()), spill.directory, spill.bytes,
                )  # fmt: skip
            self._report_buffers()
            return None
        for attempt in range(SNAPSHOT_ATTEMPTS):
            if self._writer.force_flush():
                return None
            time.sleep(min(2**attempt * 0.2, 5.0))
        raise RuntimeError(
            f"ClickHouse inserts failed {SNAPSHOT_ATTEMPTS} times at a snapshot; stopping the "
            f"flow so a restart replays the unwritten rows ({self._writer.buffered_rows})"
        )

    def _report_buffers(self) -> None:
        if self._writer.spill is not None:
            telemetry.SINK_SPILLED_BYTES.set(self._writer.spill.bytes)
        buffered = self._writer.buffered_rows
        for table in self._writer.tables_seen():
            telemetry.SINK_BUFFERED_ROWS.labels(table=table).set(buffered.get(table, 0))

    def close(self) -> None:
        self._writer.shutdown()
