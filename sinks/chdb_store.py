"""Embedded ClickHouse (chdb) behind the `ClickHouseStore` interface.

chdb runs the ClickHouse engine inside this Python process and keeps MergeTree tables in a
directory, so the demo needs no server. Its limits, measured with chdb 4.4 (engine 26.9):

- **One process per directory.** A second process opening the same directory is refused
  (ClickHouse locks ``<dir>/status``); we raise `StoreLockedError` naming the directory and
  the holder's PID. Run a ClickHouse server and set ``AIRIS_CLICKHOUSE_URL`` to share data
  between processes.
- **One directory per process at a time.** While any session on directory A is open, opening
  directory B in the same process fails ("EmbeddedServer already initialized with path A"),
  and so do ``chdb.query(...)`` and ``Session(":memory:")``. Once every session on A is
  closed, another directory can be opened. Any number of stores (sessions, threads) on the
  *same* directory coexist; to isolate users of one directory, give each its own
  ``database`` (the tests do this: one directory per test module, one database per test).

Inserts go through a pyarrow Table read by the ``Python()`` table function (no text
serialization): Arrow types are derived from the table's columns in ``system.columns`` and
cached per table. Queries use ``JSONEachRow`` parsed by orjson.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import orjson
import pyarrow as pa
from chdb import session as chdb_session

from airis.sinks.clickhouse_store import (
    ClickHouseStore,
    StoreLockedError,
    StoreOpenError,
    check_block,
    quote_ident,
    quote_literal,
)

logger = logging.getLogger(__name__)

__all__ = ["ChdbStore", "arrow_type", "preload_chdb"]

#: Session settings: synchronous inserts, and 64-bit integers as JSON numbers in query results.
SESSION_SETTINGS = (
    "SET async_insert = 0",
    "SET output_format_json_quote_64bit_integers = 0",
)

_T = TypeVar("_T")
_OTHER_PATH = re.compile(r"already initialized with path '([^']*)'")


class ChdbStore(ClickHouseStore):
    """ClickHouse embedded in this process, persisted in ``path``.

    Parameters
    ----------
    path
        The data directory (created if missing). See the module docstring for the
        one-process-per-directory and one-directory-per-process rules.
    database
        Database that unqualified table names refer to; created if missing. ``None`` means
        ``default``.
    """

    def __init__(self, path: str | Path, database: str | None = None) -> None:
        self.path = Path(path)
        self.database = database or "default"
        self._lock = threading.Lock()
        self._arrow_types: dict[tuple[str, tuple[str, ...]], list[pa.DataType | None]] = {}
        self.path.mkdir(parents=True, exist_ok=True)
        # Every call into chdb runs on this one Python-made thread: chdb (pybind11) deadlocks
        # on the GIL when called from a thread Rust started (Bytewax's cluster workers).
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="airis-chdb")
        self._thread_id = self._thread.submit(threading.get_ident).result()
        self._session: chdb_session.Session | None = None
        try:
            self._session = self._call(chdb_session.Session, str(self.path))
        except RuntimeError as exc:
            self._thread.shutdown(wait=False)
            raise _open_error(self.path, exc) from exc
        for statement in SESSION_SETTINGS:
            self._call(self._session.query, statement)
        if self.database != "default":
            self._call(
                self._session.query, f"CREATE DATABASE IF NOT EXISTS {quote_ident(self.database)}"
            )
        self._call(self._session.query, f"USE {quote_ident(self.database)}")
        logger.debug("chdb store open at %s (database %s)", self.path, self.database)

    def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        if threading.get_ident() == self._thread_id:
            return fn(*args)
        try:
            future = self._thread.submit(fn, *args)
        except RuntimeError:  # the executor is shut down: this store was closed
            raise StoreOpenError(f"chdb store at {self.path} is closed") from None
        return future.result()

    def __repr__(self) -> str:
        return f"ChdbStore({str(self.path)!r}, database={self.database!r})"

    def execute(self, sql: str) -> None:
        """Run one statement; the cached column types are forgotten (DDL may change them)."""
        self._arrow_types.clear()
        self._call(self._live().query, sql)

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run one query; rows as dicts, values as ``JSONEachRow`` writes them."""
        data = self._call(lambda: self._live().query(sql, "JSONEachRow").bytes())
        if not data:
            return []
        return orjson.loads(b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]")

    def insert_columns(
        self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]
    ) -> None:
        """Insert one block as an Arrow table through ``INSERT ... SELECT FROM Python()``."""
        if check_block(columns, data):
            self._call(self._insert, table, tuple(columns), data)

    def _insert(self, table: str, columns: tuple[str, ...], data: Sequence[Sequence[Any]]) -> None:
        key = (table, columns)
        types = self._arrow_types.get(key)
        if types is None:
            types = self._column_types(table, columns)
            self._arrow_types[key] = types
        arrays = [arrow_array(values, arrow) for values, arrow in zip(data, types, strict=True)]
        # chdb's Python() table function finds the object by this local name.
        airis_insert_batch = pa.Table.from_arrays(arrays, names=list(columns))  # noqa: F841
        names = ", ".join(quote_ident(c) for c in columns)
        sql = f"INSERT INTO {quote_ident(table)} ({names}) SELECT * FROM Python(airis_insert_batch)"
        try:
            self._live().query(sql)
        except Exception:
            self._arrow_types.pop(key, None)
            raise

    def close(self) -> None:
        """Close this store's session; the engine stops when its last session closes."""
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            self._call(session.close)
            logger.debug("chdb store at %s closed", self.path)
        self._thread.shutdown(wait=True)

    def _live(self) -> chdb_session.Session:
        session = self._session
        if session is None:
            raise StoreOpenError(f"chdb store at {self.path} is closed")
        return session

    def _column_types(self, table: str, columns: tuple[str, ...]) -> list[pa.DataType | None]:
        database, _, name = table.rpartition(".")
        where_db = quote_literal(database) if database else "currentDatabase()"
        found = {
            row["name"]: row["type"]
            for row in self.query(
                "SELECT name, type FROM system.columns"
                f" WHERE database = {where_db} AND table = {quote_literal(name)}"
            )
        }
        if not found:
            raise StoreOpenError(f"table {table} not found in chdb store at {self.path}")
        missing = [c for c in columns if c not in found]
        if missing:
            raise ValueError(f"table {table} has no column(s) {', '.join(missing)}")
        return [arrow_type(found[c]) for c in columns]


def preload_chdb() -> None:
    """Import now what chdb's first ``Python()`` insert would (pandas and pyarrow's datasets,
    about 0.2 s): a flow then pays it before it reads, not at its first insert."""
    import pandas  # noqa: F401
    import pyarrow.dataset  # noqa: F401


def arrow_array(values: Sequence[Any], arrow: pa.DataType | None) -> pa.Array:
    """``pa.array(values, type=arrow)``, without converting the same value over and over
    where a column repeats it: a timestamp column's distinct stamps are converted once each
    (a metrics block: one stamp per scrape), a map column holding one dict throughout once
    (the metrics' labels, ``{}`` but for labelled points); the rows then take them.

    pyarrow converts each value holding the GIL, which the flow's thread waits out: for a
    block of 100,000 metric rows, 32-62 ms for the ``DateTime64(3)`` column and 9-13 ms for
    the labels; taken by row, 8-17 ms and 1 ms (`benchmarks/bench_per_call.py`). A column of
    distinct stamps, such as spans', is left to pyarrow.

    >>> from datetime import UTC, datetime
    >>> t = [datetime(2026, 1, 1, tzinfo=UTC), None, datetime(2026, 1, 1, tzinfo=UTC)]
    >>> arrow_array(t, pa.timestamp("ms", tz="UTC")) == pa.array(t, pa.timestamp("ms", tz="UTC"))
    True
    """
    if type(values) not in (list, tuple) or not values:
        return pa.array(values, type=arrow)
    if isinstance(arrow, pa.MapType):
        first = values[0]
        if type(first) is dict and values[-1] == first and values.count(first) == len(values):
            return pa.array([first], type=arrow).take(np.zeros(len(values), np.int32))
    elif isinstance(arrow, pa.TimestampType):
        return _each_stamp_once(values, arrow)
    return pa.array(values, type=arrow)


def _each_stamp_once(values: Sequence[Any], arrow: pa.DataType) -> pa.Array:
    sample = values[:_SAMPLE_ROWS]
    try:
        if 2 * len(set(sample)) > len(sample):  # mostly distinct (spans, log records)
            return pa.array(values, type=arrow)
        positions: dict[Any, int] = {}
        rows = [positions.setdefault(value, len(positions)) for value in values]
    except TypeError:  # an unhashable value: pyarrow says what it makes of it
        return pa.array(values, type=arrow)
    return pa.array(list(positions), type=arrow).take(pa.array(rows, type=pa.int32()))


#: Rows a timestamp column is sampled on to see whether it repeats its values.
_SAMPLE_ROWS = 1024


def arrow_type(ch_type: str) -> pa.DataType | None:
    """The Arrow type to build for a ClickHouse column type (``None``: let pyarrow infer).

    >>> arrow_type("Nullable(DateTime64(3, 'UTC'))")
    TimestampType(timestamp[ms, tz=UTC])
    >>> arrow_type("Map(LowCardinality(String), String)")
    MapType(map<string, string>)
    """
    ch_type = ch_type.strip()
    head, _, rest = ch_type.partition("(")
    args = _split_args(rest[:-1]) if rest else []
    if head in ("Nullable", "LowCardinality"):
        return arrow_type(args[0])
    if head == "Map":
        key, value = (arrow_type(a) for a in args)
        return pa.map_(key or pa.string(), value or pa.string())
    if head == "Array":
        item = arrow_type(args[0])
        return pa.list_(item) if item is not None else None
    if head == "DateTime64":
        precision = int(args[0]) if args else 3
        unit = next(unit for digits, unit in _TIME_UNITS if precision <= digits)
        return pa.timestamp(unit, tz="UTC")
    if head == "DateTime":
        return pa.timestamp("s", tz="UTC")
    if head in ("Date", "Date32"):
        return pa.date32()
    return _SIMPLE_TYPES.get(head)


#: Finest Arrow unit for a DateTime64 precision (fractional digits): (up to digits, unit).
_TIME_UNITS = ((0, "s"), (3, "ms"), (6, "us"), (18, "ns"))

_SIMPLE_TYPES: dict[str, pa.DataType] = {
    "String": pa.string(),
    "FixedString": pa.string(),
    "Enum8": pa.string(),
    "Enum16": pa.string(),
    "UUID": pa.string(),
    "Bool": pa.bool_(),
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "Int8": pa.int8(),
    "Int16": pa.int16(),
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "UInt8": pa.uint8(),
    "UInt16": pa.uint16(),
    "UInt32": pa.uint32(),
    "UInt64": pa.uint64(),
}


def _split_args(text: str) -> list[str]:
    """Split a type's arguments at top-level commas (not inside parentheses or quotes)."""
    args: list[str] = []
    depth, start, quoted = 0, 0, False
    for i, char in enumerate(text):
        if char == "'" and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    if tail:
        args.append(tail)
    return args


def _open_error(path: Path, exc: RuntimeError) -> StoreOpenError:
    """Turn chdb's terse failure into one that says which rule was broken and what to do."""
    message = str(exc)
    other = _OTHER_PATH.search(message)
    if other:
        return StoreOpenError(
            f"cannot open embedded ClickHouse at {path}: this process already has the embedded"
            f" store open at {other.group(1)}, and chdb serves one directory per process."
            " Close every store on that directory first, or use it with a separate database."
        )
    holder = _lock_holder(path)
    if holder is not None:
        return StoreLockedError(
            f"cannot open embedded ClickHouse at {path}: the directory is in use by another"
            f" process ({holder}). An embedded (chdb) store is single-process: stop that"
            " process, give this one another directory (AIRIS_CHDB_PATH), or run a ClickHouse"
            " server and set AIRIS_CLICKHOUSE_URL=clickhouse://user:password@host:9000/db"
            " to share data between processes."
        )
    return StoreOpenError(f"cannot open embedded ClickHouse at {path}: {message}")


def _lock_holder(path: Path) -> str | None:
    """Who holds ClickHouse's lock on ``path/status`` (``"PID 123"``), or None if nobody."""
    status = path / "status"
    try:
        with status.open("rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    return None
                first = handle.read(200).decode(errors="replace").splitlines()
                pid = first[0].removeprefix("PID:").strip() if first else "?"
                return f"PID {pid}"
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    except OSError:
        return None
