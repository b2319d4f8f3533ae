"""`BlockBatcher`: the batching processor that sits in front of a delivery client, as the
OpenTelemetry SDK's batch processor sits in front of its exporter.

Column blocks are buffered per table and handed to ``deliver(table, block)`` when a table
holds ``batch_rows`` rows or its oldest row has waited ``batch_seconds``. ``deliver`` raises
when the delivery failed: the rows stay buffered for the next attempt, which waits
(exponential backoff from `RETRY_FIRST_S` to `RETRY_MAX_S`) so that a backend that is down
does not slow every batch of the flow. While deliveries fail, a table keeps at most
``max_buffered_rows`` rows in memory; beyond that they go to ``spill`` (a `RowSpill` on
disk, delivered first once the backend is back) or, without one, the oldest are dropped and
reported to ``on_dropped``. Thread-safe.

With ``background=True`` a due table is handed to a delivery thread of the batcher's own and
`add` returns at once, so the caller (the flow) goes on while the backend inserts: a
ClickHouse insert, embedded or over the network, spends most of its time outside the GIL.
A table has at most one delivery in flight, so its rows still arrive in order; a table that
fills ``batch_rows`` again meanwhile waits for it (memory stays bounded). A failed
background delivery puts its rows back in front of the buffer, as a failed delivery in
`add` would. `force_flush`, `flush_or_spill` and `close` first wait for the deliveries in
flight, so what they report holds for every row given to `add` before them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from airis.sinks.column_block import Block, BlockBuffer, block_rows
from airis.sinks.spill import RowSpill

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "DEFAULT_BATCH_SECONDS",
    "DEFAULT_MAX_BUFFERED_ROWS",
    "MIN_FLUSH_INTERVAL",
    "RETRY_FIRST_S",
    "RETRY_MAX_S",
    "BlockBatcher",
]

#: ClickHouse's advice: inserts of 10,000-100,000 rows, about one a second; each insert is a
#: part that background merges rewrite, so many small ones cost CPU (in chdb, this process's).
DEFAULT_BATCH_ROWS = 100_000
DEFAULT_BATCH_SECONDS = 2.0
#: Shortest period of the background flush check (seconds).
MIN_FLUSH_INTERVAL = 0.05
#: Rows kept per table while deliveries fail; beyond it the oldest are dropped (and counted).
DEFAULT_MAX_BUFFERED_ROWS = 1_000_000
#: First wait after a failed delivery before the next one; it doubles per failure up to the max.
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0


class BlockBatcher:
    """Buffer blocks per table and deliver them in batches (see the module docstring).

    Parameters
    ----------
    deliver
        ``deliver(table, block)`` sends one table's rows; it raises when that failed.
    batch_rows
        Rows of one table that trigger a delivery.
    batch_seconds
        Longest a row waits in the buffer (as seen by ``now``).
    max_buffered_rows
        Bound on one table's buffer while deliveries fail (at least ``batch_rows``).
    now
        Clock in seconds (monotonic); tests inject a fake one.
    flush_interval
        If set, a daemon thread checks for due buffers this often (seconds); without it a
        quiet stream keeps its last rows until the next `add`, `force_flush` or `close`.
    spill
        Where rows go while deliveries fail and memory is full (None: they are dropped).
    on_delivered, on_dropped
        Told ``(table, rows)`` of every successful delivery and of every row given up on.
    background
        Deliver due tables on a thread of the batcher's own (see the module docstring).
    """

    def __init__(
        self,
        deliver: Callable[[str, Block], None],
        *,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        batch_seconds: float = DEFAULT_BATCH_SECONDS,
        max_buffered_rows: int = DEFAULT_MAX_BUFFERED_ROWS,
        now: Callable[[], float] = time.monotonic,
        flush_interval: float | None = None,
        spill: RowSpill | None = None,
        on_delivered: Callable[[str, int], None] = lambda _table, _rows: None,
        on_dropped: Callable[[str, int], None] = lambda _table, _rows: None,
        background: bool = False,
    ) -> None:
        _validate_arguments(batch_rows, batch_seconds, max_buffered_rows, flush_interval)
        self.deliver = deliver
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.max_buffered_rows = max_buffered_rows
        self.now = now
        self.flush_interval = flush_interval
        self.spill = spill
        self.on_delivered = on_delivered
        self.on_dropped = on_dropped
        self._failures: dict[str, int] = {}  # consecutive failed deliveries per table
        self._retry_at: dict[str, float] = {}
        self._buffers: dict[str, BlockBuffer] = {}
        self._since: dict[str, float] = {}
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)  # notified when a delivery in flight ends
        self._in_flight: dict[str, int] = {}  # table -> rows being delivered in the background
        self._sender = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="airis-deliver")
            if background
            else None
        )
        self._closed = False
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if flush_interval is not None:
            self._flusher = threading.Thread(
                target=self._flush_periodically, name="airis-batch-flush", daemon=True
            )
            self._flusher.start()

    @property
    def buffered_rows(self) -> dict[str, int]:
        """Rows waiting per table, those being delivered included (tables with none are left
        out)."""
        with self._lock:
            waiting = {table: len(rows) for table, rows in self._buffers.items()}
            for table, rows in self._in_flight.items():
                waiting[table] = waiting.get(table, 0) + rows
            return {table: rows for table, rows in waiting.items() if rows}

    def tables_seen(self) -> list[str]:
        """Tables that have had rows buffered since the batcher started."""
        with self._lock:
            return list(self._buffers)

    def add(self, blocks: dict[str, list[Block]]) -> bool:
        """Buffer ``blocks`` (table → blocks) and deliver every table that is due; False if
        a delivery failed or is waiting for its backoff (the rows stay buffered)."""
        with self._lock:
            now = self.now()
            for table, new_blocks in blocks.items():
                buffer = self._buffers.setdefault(table, BlockBuffer())
                if not buffer:
                    self._since[table] = now
                for block in new_blocks:
                    buffer.add(block)
            return self._flush_due(now)

    def force_flush(self) -> bool:
        """Deliver every buffered and spilled row now; True if nothing is left."""
        with self._lock:
            self._wait_idle()
            return all([self._flush_table(table) for table in self._pending_tables()])

    def flush_or_spill(self) -> bool:
        """Deliver what is pending unless a retry is not due yet; spill what stays in memory.

        True if everything is delivered. Beyond a delivery already in flight, it never waits
        for a backend that is down, and afterwards no row lives only in memory (when there is a
        spill).
        """
        with self._lock:
            self._wait_idle()
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

    def close(self) -> None:
        """Stop the flusher thread and deliver what is left; what cannot be is dropped (and
        reported). Only the first call does anything."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
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
                        self.on_dropped(table, len(rows))
                self._buffers.clear()
                self._since.clear()
        if self._sender is not None:
            self._sender.shutdown()

    def _pending_tables(self) -> list[str]:
        tables = [t for t, rows in self._buffers.items() if rows]
        if self.spill is not None:
            tables += [t for t in self.spill.tables() if t not in tables]
        return tables

    def _flush_due(self, now: float) -> bool:
        ok = True
        for table, rows in list(self._buffers.items()):
            if not rows:
                continue
            if self._retry_at.get(table, 0.0) > now:
                ok = False  # the backend failed lately: wait for the backoff
                self._bound(table)
            elif len(rows) >= self.batch_rows or now - self._since[table] >= self.batch_seconds:
                if self._sender is not None and not self._closed and not self._spilled(table):
                    ok = self._send(table) and ok
                else:
                    ok = self._flush_table(table) and ok
        return ok

    def _spilled(self, table: str) -> bool:
        return self.spill is not None and self.spill.rows(table) > 0

    def _send(self, table: str) -> bool:
        """Hand ``table``'s rows to the delivery thread (after the one in flight, if any)."""
        assert self._sender is not None
        buffer = self._buffers[table]
        while table in self._in_flight:
            if len(buffer) < self.batch_rows:
                return True  # due by age only: it goes at a later check
            self._idle.wait()
        if self._retry_at.get(table, 0.0) > self.now():
            return False  # the delivery waited for failed: its rows are back in the buffer
        if not buffer:  # another thread sent them while this one waited
            return True
        data = buffer.take()
        self._in_flight[table] = block_rows(data)
        since = self._since.pop(table, self.now())
        self._sender.submit(self._deliver_in_background, table, data, since)
        return True

    def _deliver_in_background(self, table: str, data: Block, since: float) -> None:
        error: Exception | None = None
        try:
            self.deliver(table, data)
        except Exception as exc:
            error = exc
        with self._lock:
            try:
                if error is None:
                    self._delivered(table, block_rows(data))
                else:
                    self._failed(table, block_rows(data), error)
                    self._buffers[table].add_oldest(data)
                    self._since[table] = since  # the oldest row's, as before it was sent
                    self._bound(table)
            except Exception:
                logger.exception("after a background delivery to %s", table)
            finally:
                del self._in_flight[table]
                self._idle.notify_all()

    def _wait_idle(self) -> None:
        while self._in_flight:
            self._idle.wait()

    def _flush_table(self, table: str) -> bool:
        # Spilled rows are older than the buffered ones: they go first.
        while self.spill is not None and (spilled := self.spill.oldest(table)) is not None:
            path, block = spilled
            if not self._deliver(table, block, spilled=True):
                self._bound(table)
                return False
            self.spill.remove(path)
        buffer = self._buffers.get(table)
        if not buffer:
            return True
        data = buffer.take()
        if not self._deliver(table, data):
            buffer.add(data)  # the buffer held just these rows: their order is kept
            self._bound(table)
            return False
        self._since.pop(table, None)
        return True

    def _deliver(self, table: str, data: Block, spilled: bool = False) -> bool:
        try:
            self.deliver(table, data)
        except Exception as exc:
            self._failed(table, block_rows(data), exc, "spilled " if spilled else "")
            return False
        self._delivered(table, block_rows(data))
        return True

    def _delivered(self, table: str, rows: int) -> None:
        self._failures.pop(table, None)
        self._retry_at.pop(table, None)
        self.on_delivered(table, rows)

    def _failed(self, table: str, rows: int, exc: Exception, where: str = "") -> None:
        failures = self._failures.get(table, 0) + 1
        self._failures[table] = failures
        delay = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (failures - 1))
        self._retry_at[table] = self.now() + delay
        logger.error(
            "insert of %d %srows into %s failed (kept; retry in %.1f s): %s",
            rows, where, table, delay, exc,
        )  # fmt: skip

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
        self.on_dropped(table, overflow)

    def _spill(self, table: str) -> None:
        buffer = self._buffers.get(table)
        if not buffer or self.spill is None:
            return
        for dropped_table, count in self.spill.put(table, buffer.take()):
            self.on_dropped(dropped_table, count)
        self._since.pop(table, None)

    def _flush_periodically(self) -> None:
        interval = self.flush_interval or DEFAULT_BATCH_SECONDS
        while not self._stop.wait(interval):
            with self._lock:
                if not self._closed:
                    self._flush_due(self.now())


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
