"""`ClickHouseWriter`: buffer blocks per table and insert them in batches, never raising on a
delivery failure; `InMemoryWriter`, its twin for tests and dry runs.

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
from airis.sinks.clickhouse_encoding import TABLES, Row, TableSpec, encode_batch, encode_blocks
from airis.sinks.clickhouse_store import ClickHouseStore, open_store
from airis.sinks.column_block import Block, BlockBuffer, block_rows
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


DEFAULT_BATCH_ROWS = 20_000
DEFAULT_BATCH_SECONDS = 2.0
#: Shortest period of the sink's background flush check (seconds).
MIN_FLUSH_INTERVAL = 0.05
#: Rows kept per table while inserts fail; beyond it the oldest are dropped (and counted).
DEFAULT_MAX_BUFFERED_ROWS = 1_000_000
#: First wait after a failed insert before the next one; it doubles per failure up to the max.
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0


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
    """Buffer events as rows per table and insert them into a `ClickHouseStore` in batches.

    A table's buffer is inserted (in one block) when it holds ``batch_rows`` rows, or when its
    oldest row has waited ``batch_seconds`` (checked at every `export`, and every
    ``flush_interval`` seconds by a background thread if one is asked for: without it a quiet
    stream keeps its last rows until the next export, `force_flush` or `shutdown`).

    A failed insert is logged with the table and row count, counted, and makes `export`
    return `ExportResult.FAILURE`; the rows stay buffered and go with the next attempt, which
    waits (exponential backoff from `RETRY_FIRST_S` to `RETRY_MAX_S`) so that a store that is
    down does not slow every batch of the flow. While inserts keep failing, a table keeps at
    most ``max_buffered_rows`` rows in memory: beyond that they go to ``spill`` (a
    `RowSpill` on disk, sent first once the store is back) or, without one, the oldest are
    dropped with an error log and counted in ``rows_dropped`` and
    ``airis_sink_rows_dropped_total``. Written rows are counted in ``rows_written`` and
    ``airis_sink_rows_total{table}``. Thread-safe.

    Parameters
    ----------
    store
        Where rows go; its tables must exist (`airis.sinks.migrations.migrate`).
    batch_rows
        Rows of one table that trigger an insert.
    batch_seconds
        Longest a row waits in the buffer (as seen by ``now``).
    max_buffered_rows
        Bound on one table's buffer while inserts fail (at least ``batch_rows``).
    tables
        Event type → table registry (`TABLES`).
    now
        Clock in seconds (monotonic); tests inject a fake one.
    flush_interval
        If set, a daemon thread checks for due buffers this often (seconds).
    close_store
        Close ``store`` at `shutdown` (set when the writer opened it).
    spill
        Where rows go while the store is down and memory is full (None: they are dropped).
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
    ) -> None:
        _validate_arguments(batch_rows, batch_seconds, max_buffered_rows, flush_interval)
        self.store = store
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.max_buffered_rows = max_buffered_rows
        self.tables = tables
        self.now = now
        self.flush_interval = flush_interval
        self.close_store = close_store
        self.spill = spill
        self._failures: dict[str, int] = {}  # consecutive failed inserts per table
        self._retry_at: dict[str, float] = {}
        self.rows_written: dict[str, int] = {spec.table: 0 for spec in tables.values()}
        self.rows_dropped: dict[str, int] = {spec.table: 0 for spec in tables.values()}
        self._columns = {spec.table: spec.columns for spec in tables.values()}
        self._buffers: dict[str, BlockBuffer] = {}
        self._since: dict[str, float] = {}
        self._lock = threading.RLock()
        self._shutdown = False
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if flush_interval is not None:
            self._flusher = threading.Thread(
                target=self._flush_periodically, name="airis-clickhouse-flush", daemon=True
            )
            self._flusher.start()

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
    def buffered_rows(self) -> dict[str, int]:
        """Rows waiting per table (tables with none are left out)."""
        with self._lock:
            return {table: len(rows) for table, rows in self._buffers.items() if rows}

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
        ok = not rejected
        if rejected:
            kinds = sorted({type(e).__name__ for e in rejected})
            logger.error(
                "%d events of unsupported type(s) %s skipped", len(rejected), ", ".join(kinds)
            )
        with self._lock:
            if self._shutdown:
                return ExportResult.FAILURE
            now = self.now()
            for table, new_blocks in blocks.items():
                buffer = self._buffers.setdefault(table, BlockBuffer())
                if not buffer:
                    self._since[table] = now
                for block in new_blocks:
                    buffer.add(block)
            ok = self._flush_due(now) and ok
        return ExportResult.SUCCESS if ok else ExportResult.FAILURE

    def force_flush(self) -> bool:
        """Insert every buffered and spilled row now; True if nothing is left."""
        with self._lock:
            return all([self._flush_table(table) for table in self._pending_tables()])

    def flush_or_spill(self) -> bool:
        """Insert what is pending unless a retry is not due yet; spill what stays in memory.

        True if everything is stored. What a snapshot calls: it never waits for a store
        that is down, and afterwards no row lives only in memory (when there is a spill).
        """
        with self._lock:
            now = self.now()
            ok = all(
                [
                    self._flush_table(table)
                    for table in self._pending_tables()
                    if self._retry_at.get(table, 0.0) <= now
                ]
            )
            ok = ok and not self._pending_tables()
            if not ok and self.spill is not None:
                for table in list(self._buffers):
                    self._spill(table)
            return ok

    def tables_seen(self) -> list[str]:
        """Tables that have had rows buffered since the writer started."""
        with self._lock:
            return list(self._buffers)

    def _pending_tables(self) -> list[str]:
        tables = [t for t, rows in self._buffers.items() if rows]
        if self.spill is not None:
            tables += [t for t in self.spill.tables() if t not in tables]
        return tables

    def shutdown(self) -> None:
        """Flush, stop the flusher thread, close the store if owned; a second call warns."""
        with self._lock:
            if self._shutdown:
                logger.warning("ClickHouseWriter.shutdown called again: ignored")
                return
            self._shutdown = True
        self._stop.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()
        with self._lock:
            if not self.force_flush():
                for table, rows in self._buffers.items():
                    if rows:
                        logger.error(
                            "shutdown: %d rows for table %s could not be written and are lost",
                            len(rows),
                            table,
                        )
                        self._drop(table, len(rows))
                self._buffers.clear()
                self._since.clear()
            if self.close_store:
                try:
                    self.store.close()
                except Exception:
                    logger.exception("closing the ClickHouse store failed")

    def _flush_due(self, now: float) -> bool:
        ok = True
        for table, rows in list(self._buffers.items()):
            if not rows:
                continue
            if self._retry_at.get(table, 0.0) > now:
                ok = False  # the store failed lately: wait for the backoff
                self._bound(table)
            elif len(rows) >= self.batch_rows or now - self._since[table] >= self.batch_seconds:
                ok = self._flush_table(table) and ok
        return ok

    def _flush_table(self, table: str) -> bool:
        # Spilled rows are older than the buffered ones: they go first.
        while self.spill is not None and (spilled := self.spill.oldest(table)) is not None:
            path, block = spilled
            if not self._insert(table, block, spilled=True):
                self._bound(table)
                return False
            self.spill.remove(path)
        buffer = self._buffers.get(table)
        if not buffer:
            return True
        data = buffer.take()
        if not self._insert(table, data):
            buffer.add(data)  # the buffer held just these rows: their order is kept
            self._bound(table)
            return False
        self._since.pop(table, None)
        return True

    def _insert(self, table: str, data: Block, spilled: bool = False) -> bool:
        rows = block_rows(data)
        try:
            self.store.insert_columns(table, self._columns[table], data)
        except Exception as exc:
            _insert_failures_total().labels(table=table).inc()
            failures = self._failures.get(table, 0) + 1
            self._failures[table] = failures
            delay = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (failures - 1))
            self._retry_at[table] = self.now() + delay
            where = "spilled " if spilled else ""
            logger.error(
                "insert of %d %srows into %s failed (kept; retry in %.1f s): %s",
                rows, where, table, delay, exc,
            )  # fmt: skip
            return False
        self._failures.pop(table, None)
        self._retry_at.pop(table, None)
        self.rows_written[table] = self.rows_written.get(table, 0) + rows
        _rows_total().labels(table=table).inc(rows)
        logger.debug("inserted %d rows into %s", rows, table)
        return True

    def _bound(self, table: str) -> None:
        """Keep at most ``max_buffered_rows`` of ``table`` in memory: spill or drop the rest."""
        buffer = self._buffers.get(table)
        overflow = len(buffer) - self.max_buffered_rows if buffer else 0
        if overflow <= 0 or buffer is None:
            return
        if self.spill is not None:
            self._spill(table)
            return
        buffer.drop_oldest(overflow)
        logger.error(
            "buffer for %s over %d rows: dropped the %d oldest",
            table,
            self.max_buffered_rows,
            overflow,
        )
        self._drop(table, overflow)

    def _spill(self, table: str) -> None:
        buffer = self._buffers.get(table)
        if not buffer or self.spill is None:
            return
        for dropped_table, count in self.spill.put(table, buffer.take()):
            self._drop(dropped_table, count)
        self._since.pop(table, None)

    def _drop(self, table: str, count: int) -> None:
        self.rows_dropped[table] = self.rows_dropped.get(table, 0) + count
        _rows_dropped_total().labels(table=table).inc(count)

    def _flush_periodically(self) -> None:
        interval = self.flush_interval or DEFAULT_BATCH_SECONDS
        while not self._stop.wait(interval):
            with self._lock:
                if not self._shutdown:
                    self._flush_due(self.now())


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


def _validate_arguments(
    batch_rows: int, batch_seconds: float, max_buffered_rows: int, flush_interval: float | None
) -> None:
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    if not batch_seconds > 0:
        raise ValueError(f"batch_seconds must be positive, got {batch_seconds}")
    if max_buffered_rows < batch_rows:
        raise ValueError(
            f"max_buffered_rows must be at least batch_rows ({batch_rows}), got {max_buffered_rows}"
        )
    if flush_interval is not None and not flush_interval > 0:
        raise ValueError(f"flush_interval must be positive, got {flush_interval}")
