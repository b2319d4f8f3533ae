"""One small interface to ClickHouse, with two backends: embedded chdb and a server.

`open_store` picks the backend from `airis.settings.StoreConfig`:

- ``AIRIS_CLICKHOUSE_URL`` unset (the default): embedded ClickHouse (chdb) persisted in
  ``StoreConfig.chdb_path`` (`airis.sinks.chdb_store.ChdbStore`). No server to run, but
  **one process per directory**, and **one directory per process** at a time (see that module).
- ``AIRIS_CLICKHOUSE_URL=clickhouse://user:password@host:9000/db``: a ClickHouse server over the
  native protocol (`airis.sinks.clickhouse_server.ClickHouseServerStore`). Any number of
  processes.

Both backends take an optional ``database``: it is created if missing and every unqualified
table name then refers to it (tests use one database per test inside one chdb directory).
Query results are plain dicts with JSON-like values, as ClickHouse's ``JSONEachRow`` writes them
(``DateTime64(3)`` as ``"YYYY-MM-DD hh:mm:ss.fff"``, ``Map`` as a dict, integers as ints), so
callers see the same rows from either backend. Passwords are never logged: see `redact`.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from airis.settings import Settings, StoreConfig, redact

logger = logging.getLogger(__name__)

__all__ = [
    "ClickHouseStore",
    "StoreLockedError",
    "StoreOpenError",
    "check_block",
    "open_store",
    "quote_ident",
    "quote_literal",
]


class StoreOpenError(RuntimeError):
    """The store could not be opened; the message says where and why."""


class StoreLockedError(StoreOpenError):
    """An embedded store's directory is held by another process."""


class ClickHouseStore(abc.ABC):
    """What AIRIS-MON needs from ClickHouse: run DDL, read rows, insert rows, close.

    Implementations raise their backend's exception on any failure (callers that must not
    raise, like `airis.sinks.clickhouse_writer.ClickHouseWriter`, catch and log). ``database``
    is the database unqualified table names refer to.
    """

    database: str

    @abc.abstractmethod
    def execute(self, sql: str) -> None:
        """Run one statement that returns nothing worth reading (DDL, OPTIMIZE, ...)."""

    @abc.abstractmethod
    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run one query and return its rows as dicts (column name → JSON-like value)."""

    @abc.abstractmethod
    def insert_columns(
        self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]
    ) -> None:
        """Insert one block into ``table``: ``data[i]`` holds the values of ``columns[i]``.

        Every column has the same length. Values are plain Python: ``str``, ``int``,
        ``float``, ``bool``, tz-aware ``datetime``, ``dict`` for ``Map`` columns and ``None``
        for ``Nullable`` ones. Columns go to the backend as columns (no row is built).
        """

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert ``rows`` (tuples in the order of ``columns``) into ``table`` in one block."""
        if rows:
            self.insert_columns(table, columns, list(zip(*rows, strict=True)))

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection or the embedded engine; calling it twice is harmless."""

    def __enter__(self) -> ClickHouseStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_store(
    config: StoreConfig | None = None, *, database: str | None = None
) -> ClickHouseStore:
    """Open the store ``config`` points at (``Settings().store``, the environment's, if omitted).

    A server when ``config.clickhouse_url`` is set, else embedded chdb in
    ``config.chdb_path``. ``database`` overrides the URL's database (server) or
    ``default`` (chdb); it is created if missing. Raises `StoreOpenError` (or
    `StoreLockedError`) with a message naming the path or the redacted URL.
    """
    config = config if config is not None else Settings().store
    if config.clickhouse_url is not None:
        from airis.sinks.clickhouse_server import ClickHouseServerStore

        url = config.clickhouse_url.get_secret_value()
        logger.info("opening ClickHouse server store at %s", redact(url))
        return ClickHouseServerStore(url, database=database)

    from airis.sinks.chdb_store import ChdbStore

    path = config.chdb_path
    logger.info("opening embedded ClickHouse (chdb) store at %s", path)
    return ChdbStore(path, database=database)


def check_block(columns: Sequence[str], data: Sequence[Sequence[Any]]) -> int:
    """The row count of a block; ValueError unless it has one column of equal length per name.

    >>> check_block(["a", "b"], [(1, 2), ("x", "y")])
    2
    """
    if len(data) != len(columns):
        raise ValueError(f"{len(columns)} column names for {len(data)} columns of values")
    lengths = {len(values) for values in data}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths: {sorted(lengths)}")
    return lengths.pop() if lengths else 0


def quote_ident(name: str) -> str:
    """``name`` as a ClickHouse identifier; ``db.table`` is quoted part by part.

    >>> quote_ident("metrics"), quote_ident("test_1.metrics")
    ('`metrics`', '`test_1`.`metrics`')
    """
    return ".".join(
        "`" + part.replace("\\", "\\\\").replace("`", "\\`") + "`" for part in name.split(".")
    )


def quote_literal(value: str) -> str:
    """``value`` as a ClickHouse string literal.

    >>> quote_literal("it's")
    "'it\\\\'s'"
    """
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
