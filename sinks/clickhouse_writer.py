"""`ClickHouseWriter`: encode events into blocks per table and insert them in batches through
a `BlockBatcher`, never raising on a delivery failure; `InMemoryWriter`, its twin for tests
and dry runs.

The writer inserts a table's rows when it holds ``batch_rows`` of them or its oldest row has
waited ``batch_seconds``. A failed insert is logged, returns `ExportResult.FAILURE` and keeps
the rows for the next attempt (with backoff, up to ``max_buffered_rows`` per table in memory
and a spill to disk beyond it when configured).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prometheus_client import REGISTRY, Counter
from pydantic import BaseModel

from airis.settings import Settings, StoreConfig
from airis.sinks.batching import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_BATCH_SECONDS,
    DEFAULT_MAX_BUFFERED_ROWS,
    BlockBatcher,
)
from airis.sinks.clickhouse_encoding import TABLES, Row, TableSpec, encode_batch, encode_blocks
from airis.sinks.clickhouse_store import ClickHouseStore, open_store
from airis.sinks.column_block import Block, block_rows
from airis.sinks.exporter import Exporter, ExportResult
from airis.sinks.migrations import migrate
from airis.sinks.spill import RowSpill

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "DEFAULT_BATCH_SECONDS",
    "DEFAULT_MAX_BUFFERED_ROWS",
    "ClickHouseWriter",
    "ExportResult",
    "InMemoryWriter",
]


# --- metrics (registered once per process, even if this module is imported twice) ----------

_METRICS_LOCK = threading.Lock()
_METRICS: dict[str, Counter] = {}


def _counter(name: str, documentation: str) -> Counter:
    """The process-wide Counter ``name`` with a ``table`` label, created on first use."""
    with _METRICS_LOCK:
        counter = _METRICS.get(name)
        if counter is None:
            try:
                counter = Counter(name, documentation, ["table"])
            except ValueError:  # already registered, e.g. by a reloaded copy of this module
                counter = REGISTRY._names_to_collectors[name + "_total"]  # type: ignore[assignment]
            _METRICS[name] = counter
        return counter


def _rows_total() -> Counter:
    return _counter("airis_sink_rows", "Rows written to ClickHouse, by table.")


def _rows_dropped_total() -> Counter:
    return _counter(
        "airis_sink_rows_dropped", "Rows given up on (buffer bound or shutdown), by table."
    )


def _insert_failures_total() -> Counter:
    return _counter("airis_sink_insert_failures", "Failed ClickHouse inserts, by table.")


# --- client -----------------------------------------------------------------------------------


class ClickHouseWriter(Exporter):
    """Encode events as rows per table and insert them into a `ClickHouseStore` in batches.

    The batching is a `BlockBatcher`'s (see `airis.sinks.batching`): a table's buffer is
    inserted (in one block) when it holds ``batch_rows`` rows, or when its oldest row has
    waited ``batch_seconds`` (checked at every `export`, and every ``flush_interval`` seconds
    by a background thread if one is asked for: without it a quiet stream keeps its last rows
    until the next export, `force_flush` or `shutdown`).

    A failed insert is logged with the table and row count, counted, and makes `export`
    return `ExportResult.FAILURE`; the rows stay buffered and go with the next attempt, after
    a backoff. While inserts keep failing, a table keeps at most ``max_buffered_rows`` rows
    in memory: beyond that they go to ``spill`` (a `RowSpill` on disk, sent first once the
    store is back) or, without one, the oldest are dropped with an error log and counted in
    ``rows_dropped`` and ``airis_sink_rows_dropped_total``. Written rows are counted in
    ``rows_written`` and ``airis_sink_rows_total{table}``. Thread-safe.

    Parameters
    ----------
    store
        Where rows go; its tables must exist (`airis.sinks.migrations.migrate`).
    tables
        Event type → table registry (`TABLES`).
    close_store
        Close ``store`` at `shutdown` (set when the writer opened it).
    batch_rows, batch_seconds, max_buffered_rows, now, flush_interval, spill, background
        The batching's: see `BlockBatcher` (``background``: inserts run on a thread of the
        writer's own while `export` returns).
    """

    def __init__(
        self,
        store: ClickHouseStore,
        *,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        batch_seconds: float = DEFAULT_BATCH_SECONDS,
        max_buffered_rows: int = DEFAULT_MAX_BUFFERED_ROWS,
        tables: Mapping[type, TableSpec] = TABLES,
        now: Callable[[], float] = time.monotonic,
        flush_interval: float | None = None,
        close_store: bool = False,
        spill: RowSpill | None = None,
        background: bool = False,
    ) -> None:
        self.store = store
        self.tables = tables
        self.close_store = close_store
        self.rows_written: dict[str, int] = {spec.table: 0 for spec in tables.values()}
        self.rows_dropped: dict[str, int] = {spec.table: 0 for spec in tables.values()}
        self._columns = {spec.table: spec.columns for spec in tables.values()}
        self._lock = threading.Lock()
        self._shutdown = False
        self._batcher = BlockBatcher(
            self._insert,
            batch_rows=batch_rows,
            batch_seconds=batch_seconds,
            max_buffered_rows=max_buffered_rows,
            now=now,
            flush_interval=flush_interval,
            spill=spill,
            on_delivered=self._written,
            on_dropped=self._dropped,
            background=background,
        )

    @classmethod
    def from_config(cls, config: StoreConfig | None = None, **kwargs: Any) -> ClickHouseWriter:
        """Open the store ``config`` names (default: ``Settings().store``), migrate it, and
        write to it (closing it at shutdown).

        Batch size and age come from ``config`` (``AIRIS_SINK_BATCH_ROWS``,
        ``AIRIS_SINK_BATCH_SECONDS``) unless given in ``kwargs``.
        """
        config = config if config is not None else Settings().store
        store = open_store(config)
        try:
            migrate(store)
        except Exception:
            store.close()
            raise
        kwargs.setdefault("batch_rows", config.batch_rows)
        kwargs.setdefault("batch_seconds", config.batch_seconds)
        kwargs.setdefault("close_store", True)
        return cls(store, **kwargs)

    @property
    def spill(self) -> RowSpill | None:
        """Where rows go while the store is down and memory is full."""
        return self._batcher.spill

    @spill.setter
    def spill(self, spill: RowSpill | None) -> None:
        self._batcher.spill = spill

    @property
    def buffered_rows(self) -> dict[str, int]:
        """Rows waiting per table (tables with none are left out)."""
        return self._batcher.buffered_rows

    def tables_seen(self) -> list[str]:
        """Tables that have had rows buffered since the writer started."""
        return self._batcher.tables_seen()

    def export(self, events: Sequence[BaseModel]) -> ExportResult:
        """Buffer ``events`` and insert every table that is due; never raises.

        FAILURE if the writer is shut down (nothing is buffered), if some event has a type
        no table accepts (it is logged and skipped; the others are buffered), or if an
        insert failed (its rows stay buffered for the next attempt).
        """
        if self._shutdown:
            logger.warning("export of %d events after shutdown: rejected", len(events))
            return ExportResult.FAILURE
        try:
            blocks, rejected = encode_blocks(events, self.tables)
        except Exception:
            logger.exception("cannot encode a batch of %d events: rejected", len(events))
            return ExportResult.FAILURE
        if rejected:
            kinds = sorted({type(e).__name__ for e in rejected})
            logger.error(
                "%d events of unsupported type(s) %s skipped", len(rejected), ", ".join(kinds)
            )
        with self._lock:
            if self._shutdown:
                return ExportResult.FAILURE
            ok = self._batcher.add(blocks) and not rejected
        return ExportResult.SUCCESS if ok else ExportResult.FAILURE

    def force_flush(self) -> bool:
        """Insert every buffered and spilled row now; True if nothing is left."""
        return self._batcher.force_flush()

    def flush_or_spill(self) -> bool:
        """Insert what is pending unless a retry is not due yet; spill what stays in memory.

        True if everything is stored. What a snapshot calls: it never waits for a store
        that is down, and afterwards no row lives only in memory (when there is a spill).
        """
        return self._batcher.flush_or_spill()

    def shutdown(self) -> None:
        """Flush, stop the flusher thread, close the store if owned; a second call warns."""
        with self._lock:
            if self._shutdown:
                logger.warning("ClickHouseWriter.shutdown called again: ignored")
                return
            self._shutdown = True
        self._batcher.close()
        if self.close_store:
            try:
                self.store.close()
            except Exception:
                logger.exception("closing the ClickHouse store failed")

    def _insert(self, table: str, data: Block) -> None:
        try:
            self.store.insert_columns(table, self._columns[table], data)
        except Exception:
            _insert_failures_total().labels(table=table).inc()
            raise
        logger.debug("inserted %d rows into %s", block_rows(data), table)

    def _written(self, table: str, rows: int) -> None:
        self.rows_written[table] = self.rows_written.get(table, 0) + rows
        _rows_total().labels(table=table).inc(rows)

    def _dropped(self, table: str, rows: int) -> None:
        self.rows_dropped[table] = self.rows_dropped.get(table, 0) + rows
        _rows_dropped_total().labels(table=table).inc(rows)


class InMemoryWriter(Exporter):
    """`ClickHouseWriter`'s twin: keeps exported events (and their rows) in lists.

    Encodes like the real writer, so unsupported types fail the same way; ``rows`` holds the
    encoded rows per table and ``rows_written`` counts them.
    """

    def __init__(self, tables: Mapping[type, TableSpec] = TABLES) -> None:
        self.tables = tables
        self.events: list[BaseModel] = []
        self.rows: dict[str, list[Row]] = {spec.table: [] for spec in tables.values()}
        self.rows_written: dict[str, int] = {spec.table: 0 for spec in tables.values()}
        self._lock = threading.Lock()
        self._shutdown = False

    def export(self, events: Sequence[BaseModel]) -> ExportResult:
        """Keep ``events``; FAILURE after shutdown or for unsupported types (others kept)."""
        if self._shutdown:
            logger.warning("export of %d events after shutdown: rejected", len(events))
            return ExportResult.FAILURE
        rows, rejected = encode_batch(events, self.tables)
        with self._lock:
            self.events.extend(e for e in events if type(e) in self.tables)
            for table, new_rows in rows.items():
                self.rows[table].extend(new_rows)
                self.rows_written[table] += len(new_rows)
        return ExportResult.FAILURE if rejected else ExportResult.SUCCESS

    def force_flush(self) -> bool:
        """Nothing is buffered: always True."""
        return True

    def shutdown(self) -> None:
        """Stop accepting events; a second call warns."""
        if self._shutdown:
            logger.warning("InMemoryWriter.shutdown called again: ignored")
        self._shutdown = True

    def clear(self) -> None:
        """Forget everything exported so far."""
        with self._lock:
            self.events.clear()
            for rows in self.rows.values():
                rows.clear()
