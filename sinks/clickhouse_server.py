"""A ClickHouse server behind the `ClickHouseStore` interface (native protocol, port 9000).

Uses clickhouse-driver (``Client.from_url``: ``clickhouse://user:password@host:9000/db``, or
``clickhouses://`` for TLS on 9440; query-string options go to the driver's Connection).
One `ClickHouseServerStore` holds one connection and serializes its calls: give each thread
or Bytewax worker its own store. Inserts are sent as one native block per call with
``async_insert=0`` on servers that know the setting (≥ 21.11): from 26.2 the server
defaults to asynchronous inserts, which are not deduplicated and are acknowledged before
they are written. Query results are normalized to what ``JSONEachRow`` would print, so callers
see the same rows as from `airis.sinks.chdb_store.ChdbStore`.

Server versions: any server that speaks the native protocol can be opened (tests run against
Debian's ClickHouse 18.16), but the AIRIS-MON schema (`airis.sinks.migrations`: ``Map``,
``DateTime64``, ``LowCardinality``, TTLs, ``ADD COLUMN IF NOT EXISTS``) needs at least
`MIN_SCHEMA_VERSION`. On an older server a ``CREATE``/``ALTER`` rejected as unknown syntax,
type or setting raises `ServerVersionError`, which names the server's version, the minimum and
the server's own error.

The URL's password is never logged or put in an error message (`airis.settings.redact`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import Any
from urllib.parse import urlsplit

from airis.settings import redact
from airis.sinks.clickhouse_store import (
    ClickHouseStore,
    StoreOpenError,
    check_block,
    quote_ident,
)

logger = logging.getLogger(__name__)

__all__ = ["MIN_SCHEMA_VERSION", "ClickHouseServerStore", "ServerVersionError", "normalize_value"]

#: First server version that knows ``async_insert`` (older ones would warn about it).
ASYNC_INSERT_SINCE = (21, 11)

#: Oldest server the AIRIS-MON schema supports. ``Map`` needs 21.8 (experimental before),
#: ``DateTime64`` 20.1, TTLs and ``ADD COLUMN IF NOT EXISTS`` 19.x; 22.3 is the first LTS
#: release after all of them.
MIN_SCHEMA_VERSION = (22, 3)


class ServerVersionError(StoreOpenError):
    """A schema statement failed on a server older than `MIN_SCHEMA_VERSION`."""


class ClickHouseServerStore(ClickHouseStore):
    """A ClickHouse server reached through clickhouse-driver's native protocol.

    Parameters
    ----------
    url
        ``clickhouse://user:password@host:9000/db`` (see ``clickhouse_driver.Client.from_url``).
    database
        Database that unqualified table names refer to; created if missing. ``None``: the
        URL's database (``default`` if it names none).
    _client
        A ready client (tests pass a fake); by default one is built from ``url``.

    Connects on construction, so a wrong URL fails at startup with a `StoreOpenError`
    naming the redacted URL rather than at the first insert.
    """

    def __init__(self, url: str, database: str | None = None, *, _client: Any = None) -> None:
        self.url = redact(url)
        self._lock = threading.Lock()
        if _client is None:
            from clickhouse_driver import Client

            _client = Client.from_url(url)
        self._client = _client
        try:
            version = str(self._client.execute("SELECT version()")[0][0])
            if database:
                self._client.execute(f"CREATE DATABASE IF NOT EXISTS {quote_ident(database)}")
                self._client.execute(f"USE {quote_ident(database)}")
                _pin_database(self._client, database)
            current = str(self._client.execute("SELECT currentDatabase()")[0][0])
        except Exception as exc:
            self._safe_disconnect()
            # The driver's messages name host and port, not the password; redact regardless.
            raise StoreOpenError(
                f"cannot open ClickHouse server at {self.url}: {_scrub(str(exc), url)}"
            ) from exc
        self.database = current
        self.server_version = version
        self._insert_settings: dict[str, Any] = (
            {"async_insert": 0} if _version_tuple(version) >= ASYNC_INSERT_SINCE else {}
        )
        self._too_old = _version_tuple(version) < MIN_SCHEMA_VERSION
        self._closed = False
        logger.info("ClickHouse server %s at %s (database %s)", version, self.url, self.database)
        if self._too_old:
            logger.warning(
                "ClickHouse server %s at %s is older than %s: the AIRIS-MON schema will not "
                "apply there (migrations fail)",
                version,
                self.url,
                _version_text(MIN_SCHEMA_VERSION),
            )

    def __repr__(self) -> str:
        return f"ClickHouseServerStore({self.url!r}, database={self.database!r})"

    def execute(self, sql: str) -> None:
        """Run one statement.

        A ``CREATE`` or ``ALTER`` that a server older than `MIN_SCHEMA_VERSION` rejects as
        unknown syntax, type or setting raises `ServerVersionError` (with the server's error
        as its cause and in its message); other failures raise the driver's error.
        """
        with self._lock:
            try:
                self._live().execute(sql)
            except Exception as exc:
                if self._too_old and _is_schema_statement(sql) and _is_unsupported_by_server(exc):
                    raise ServerVersionError(
                        f"ClickHouse server {self.server_version} at {self.url} is older than "
                        f"{_version_text(MIN_SCHEMA_VERSION)}, the oldest version the AIRIS-MON "
                        f"schema supports; upgrade the server. The statement failed with: "
                        f"{_server_message(exc)}"
                    ) from exc
                raise

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run one query; rows as dicts, values as ``JSONEachRow`` would print them."""
        with self._lock:
            rows, types = self._live().execute(sql, with_column_types=True)
        names = [name for name, _ in types]
        converters = [_converter(ch_type) for _, ch_type in types]
        pairs = list(zip(names, converters, strict=True))
        return [
            {name: convert(value) for (name, convert), value in zip(pairs, row, strict=True)}
            for row in rows
        ]

    def insert_columns(
        self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]
    ) -> None:
        """Insert one native block, column by column, synchronously (``async_insert=0``)."""
        if not check_block(columns, data):
            return
        names = ", ".join(quote_ident(c) for c in columns)
        sql = f"INSERT INTO {quote_ident(table)} ({names}) VALUES"
        with self._lock:
            self._live().execute(
                sql, [list(values) for values in data], columnar=True,
                settings=self._insert_settings,
            )  # fmt: skip

    def close(self) -> None:
        """Disconnect; calling it twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._safe_disconnect()
        logger.debug("ClickHouse server store at %s closed", self.url)

    def _live(self) -> Any:
        if self._closed:
            raise StoreOpenError(f"ClickHouse server store at {self.url} is closed")
        return self._client

    def _safe_disconnect(self) -> None:
        try:
            self._client.disconnect()
        except Exception:  # a broken connection cannot be closed more; nothing to report
            logger.debug("disconnect from %s failed", self.url, exc_info=True)


def normalize_value(value: Any, ch_type: str) -> Any:
    """``value`` (as clickhouse-driver returns it for ``ch_type``) as ``JSONEachRow`` prints it.

    >>> from datetime import datetime
    >>> normalize_value(datetime(2026, 1, 2, 3, 4, 5, 6000), "DateTime64(3, 'UTC')")
    '2026-01-02 03:04:05.006'
    >>> normalize_value({"a": (1, 2)}, "Map(String, Tuple(UInt8, UInt8))")
    {'a': [1, 2]}
    """
    return _converter(ch_type)(value)


def _converter(ch_type: str) -> Callable[[Any], Any]:
    ch_type = ch_type.strip()
    head, _, rest = ch_type.partition("(")
    if head in ("Nullable", "LowCardinality"):
        inner = _converter(rest[:-1])
        return lambda v: None if v is None else inner(v)
    if head == "DateTime64":
        precision = int(rest.split(",")[0].rstrip(")")) if rest else 3
        return lambda v: _format_datetime(v, precision)
    if head == "DateTime":
        return lambda v: _format_datetime(v, 0)
    return _plain


def _format_datetime(value: Any, precision: int) -> Any:
    if not isinstance(value, datetime):
        return _plain(value)
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if precision > 0:
        text += "." + f"{value.microsecond:06d}".ljust(9, "0")[:precision]
    return text


def _plain(value: Any) -> Any:
    """Recursively turn driver values into JSON-like ones (tuples → lists, dates → text)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID | IPv4Address | IPv6Address):
        return str(value)
    return value


def _version_tuple(version: str) -> tuple[int, ...]:
    """``"26.9.2.1"`` → ``(26, 9, 2, 1)``; unparsable parts count as 0."""
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def _version_text(version: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in version)


def _pin_database(client: Any, database: str) -> None:
    """Make ``client`` reconnect to ``database`` (after an error it drops the connection).

    clickhouse-driver remembers a ``USE`` by copying the statement's text, backquotes
    included, and reconnects to a database whose name has backquotes around it, which does
    not exist: every call after the first failed one would fail. Set the plain name instead.
    """
    connection = getattr(client, "connection", None)
    if connection is not None and hasattr(connection, "database"):
        connection.database = database


def _is_schema_statement(sql: str) -> bool:
    """``CREATE ...`` or ``ALTER ...`` (the statements whose syntax depends on the version)."""
    words = sql.lstrip().split(None, 1)
    return bool(words) and words[0].upper() in ("CREATE", "ALTER")


def _is_unsupported_by_server(exc: Exception) -> bool:
    """The server answered that it does not know some syntax, type, setting or function.

    Not a lost connection, a missing table or a client-side problem: those are not the
    server version's fault.
    """
    from clickhouse_driver.errors import ErrorCodes, ServerException

    unsupported = {
        ErrorCodes.SYNTAX_ERROR,  # TTL, ADD COLUMN IF NOT EXISTS
        ErrorCodes.UNKNOWN_TYPE,  # DateTime64, Map
        ErrorCodes.ILLEGAL_COLUMN,  # LowCardinality without the experimental flag
        ErrorCodes.BAD_ARGUMENTS,  # an unknown MergeTree setting (ttl_only_drop_parts)
        ErrorCodes.UNKNOWN_SETTING,
        ErrorCodes.UNKNOWN_FUNCTION,
        ErrorCodes.NOT_IMPLEMENTED,
        ErrorCodes.SUPPORT_IS_DISABLED,
    }
    return isinstance(exc, ServerException) and exc.code in unsupported


def _server_message(exc: Exception) -> str:
    """The server's error on one line, without the stack trace old servers append."""
    text = " ".join(str(exc).split())
    return text.split(" Stack trace:", 1)[0].rstrip(". ,") + "."


def _scrub(message: str, url: str) -> str:
    """``message`` with the URL's password (if any, and if present) replaced by ``***``."""
    password = urlsplit(url).password
    return message.replace(password, "***") if password else message
