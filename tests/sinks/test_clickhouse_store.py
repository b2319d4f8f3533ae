"""The store interface against the real embedded chdb, and the server backend with a fake client.

chdb serves one directory per process at a time, so this module keeps one directory open for
all its tests (an "anchor" store) and gives each test its own database in it.
"""

from __future__ import annotations

import doctest
import importlib
import logging
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from airis.settings import StoreConfig
from airis.sinks.chdb_store import ChdbStore, arrow_array, arrow_type
from airis.sinks.clickhouse_server import ClickHouseServerStore, normalize_value
from airis.sinks.clickhouse_store import (
    ClickHouseStore,
    StoreLockedError,
    StoreOpenError,
    open_store,
)

PYTHON = sys.executable


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- chdb backend ------------------------------------------------------------------------------


def test_query_returns_dicts_and_empty_list(store: ChdbStore) -> None:
    assert store.query("SELECT 1 AS a, 'x' AS b, toUInt64(7) AS c") == [{"a": 1, "b": "x", "c": 7}]
    assert store.query("SELECT 1 WHERE 0") == []
    assert store.query("SELECT currentDatabase() AS d") == [{"d": store.database}]


def test_insert_round_trips_every_column_kind(store: ChdbStore) -> None:
    store.execute(
        """
        CREATE TABLE kinds (
            ts DateTime64(3, 'UTC'), name LowCardinality(String), value Float64,
            labels Map(LowCardinality(String), String), ends Nullable(DateTime64(3, 'UTC')),
            flag UInt8, n Int64, day Date, at DateTime('UTC')
        ) ENGINE = MergeTree ORDER BY ts
        """
    )
    ts = datetime(2026, 3, 4, 5, 6, 7, 891_000, tzinfo=UTC)
    berlin = ts.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    columns = ["ts", "name", "value", "labels", "ends", "flag", "n", "day", "at"]
    store.insert(
        "kinds",
        columns,
        [
            (ts, "a", 1.5, {"k": "v"}, None, 1, -(2**40), ts.date(), ts),
            (berlin + timedelta(seconds=1), "b", -2.0, {}, ts, 0, 3, ts.date(), ts),
        ],
    )
    rows = store.query("SELECT * FROM kinds ORDER BY ts")
    assert rows == [
        {
            "ts": "2026-03-04 05:06:07.891", "name": "a", "value": 1.5, "labels": {"k": "v"},
            "ends": None, "flag": 1, "n": -(2**40), "day": "2026-03-04",
            "at": "2026-03-04 05:06:07",
        },
        {
            "ts": "2026-03-04 05:06:08.891", "name": "b", "value": -2, "labels": {},
            "ends": "2026-03-04 05:06:07.891", "flag": 0, "n": 3, "day": "2026-03-04",
            "at": "2026-03-04 05:06:07",
        },
    ]  # fmt: skip


def test_insert_columns_in_any_order_and_empty_insert(store: ChdbStore) -> None:
    store.execute("CREATE TABLE t (a String, b Float64) ENGINE = MergeTree ORDER BY a")
    store.insert("t", ["b", "a"], [(1.0, "x")])
    store.insert("t", ["a", "b"], [])
    assert store.query("SELECT a, b FROM t") == [{"a": "x", "b": 1}]


def test_insert_into_missing_table_raises_and_recovers(store: ChdbStore) -> None:
    with pytest.raises(StoreOpenError, match="nope"):
        store.insert("nope", ["a"], [("x",)])
    store.execute("CREATE TABLE t (a String) ENGINE = MergeTree ORDER BY a")
    store.execute("RENAME TABLE t TO t_away")
    store.insert("t_away", ["a"], [("x",)])
    with pytest.raises(RuntimeError):
        store.insert("t", ["a"], [("y",)])
    store.execute("RENAME TABLE t_away TO t")
    store.insert("t", ["a"], [("y",)])
    assert store.query("SELECT count() AS c FROM t") == [{"c": 2}]


def test_qualified_table_names(store: ChdbStore) -> None:
    store.execute("CREATE TABLE t (a String) ENGINE = MergeTree ORDER BY a")
    store.insert(f"{store.database}.t", ["a"], [("x",)])
    assert store.query(f"SELECT a FROM {store.database}.t") == [{"a": "x"}]


def test_databases_isolate_users_of_one_directory(chdb_dir: Path) -> None:
    with ChdbStore(chdb_dir, database="iso_a") as a, ChdbStore(chdb_dir, database="iso_b") as b:
        a.execute("CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = MergeTree ORDER BY x")
        b.execute("CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = MergeTree ORDER BY x")
        a.insert("t", ["x"], [(1,), (2,)])
        assert a.query("SELECT count() AS c FROM t") == [{"c": 2}]
        assert b.query("SELECT count() AS c FROM t") == [{"c": 0}]
        a.execute("DROP DATABASE iso_a")
        b.execute("DROP DATABASE iso_b")


def test_closed_store_raises_and_close_twice_is_harmless(chdb_dir: Path) -> None:
    s = ChdbStore(chdb_dir)
    s.close()
    s.close()
    with pytest.raises(StoreOpenError, match="closed"):
        s.query("SELECT 1")


def test_open_store_defaults_to_chdb(chdb_dir: Path) -> None:
    with open_store(StoreConfig(chdb_path=chdb_dir), database="via_open") as s:
        assert isinstance(s, ChdbStore)
        assert s.path == chdb_dir
        assert s.query("SELECT currentDatabase() AS d") == [{"d": "via_open"}]
        s.execute("DROP DATABASE via_open")


def test_second_directory_in_same_process_is_a_clear_error(chdb_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    with pytest.raises(StoreOpenError, match="one directory per process") as info:
        ChdbStore(other)
    assert str(other) in str(info.value) and str(chdb_dir) in str(info.value)
    with ChdbStore(chdb_dir) as again:  # the open directory is unaffected
        assert again.query("SELECT 1 AS x") == [{"x": 1}]


def test_second_process_gets_a_clear_error(chdb_dir: Path) -> None:
    result = _run(
        """
        import sys
        from airis.sinks.chdb_store import ChdbStore
        from airis.sinks.clickhouse_store import StoreLockedError
        try:
            ChdbStore(sys.argv[1])
        except StoreLockedError as exc:
            print(exc)
            sys.exit(3)
        """,
        str(chdb_dir),
    )
    assert result.returncode == 3, result.stderr
    message = result.stdout
    assert str(chdb_dir) in message
    assert "single-process" in message and "AIRIS_CLICKHOUSE_URL" in message
    assert f"PID {os.getpid()}" in message
    assert issubclass(StoreLockedError, StoreOpenError)


def test_data_persists_across_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "persist")
    write = _run(
        """
        import sys
        from datetime import UTC, datetime
        from airis.sinks.chdb_store import ChdbStore
        with ChdbStore(sys.argv[1], database="keep") as s:
            s.execute("CREATE TABLE t (ts DateTime64(3, 'UTC'), v Float64) "
                      "ENGINE = MergeTree ORDER BY ts")
            now = datetime.now(UTC)
            s.insert("t", ["ts", "v"], [(now, float(i)) for i in range(1000)])
        """,
        path,
    )
    assert write.returncode == 0, write.stderr
    read = _run(
        """
        import sys
        from airis.sinks.chdb_store import ChdbStore
        with ChdbStore(sys.argv[1], database="keep") as s:
            print(s.query("SELECT count() AS c, sum(v) AS s FROM t")[0])
        """,
        path,
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "{'c': 1000, 's': 499500}"


@pytest.mark.parametrize(
    ("ch_type", "expected"),
    [
        ("String", pa.string()),
        ("LowCardinality(String)", pa.string()),
        ("Float64", pa.float64()),
        ("UInt8", pa.uint8()),
        ("Int64", pa.int64()),
        ("DateTime64(3, 'UTC')", pa.timestamp("ms", tz="UTC")),
        ("DateTime64(6)", pa.timestamp("us", tz="UTC")),
        ("DateTime64(9, 'Europe/Berlin')", pa.timestamp("ns", tz="UTC")),
        ("DateTime('UTC')", pa.timestamp("s", tz="UTC")),
        ("Date", pa.date32()),
        ("Nullable(DateTime64(3, 'UTC'))", pa.timestamp("ms", tz="UTC")),
        ("Map(LowCardinality(String), String)", pa.map_(pa.string(), pa.string())),
        ("Map(String, Array(Float64))", pa.map_(pa.string(), pa.list_(pa.float64()))),
        ("Decimal(10, 2)", None),
    ],
)
def test_arrow_type(ch_type: str, expected: pa.DataType | None) -> None:
    assert arrow_type(ch_type) == expected


_STAMPS = st.sampled_from(
    [
        None,
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))),  # the first, elsewhere
        datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 1, 1),  # naive
        datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),  # before the epoch
        "2026-01-01",  # not a datetime: pyarrow refuses it
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(_STAMPS, max_size=3000) | st.lists(st.datetimes(timezones=st.just(UTC))),
    unit=st.sampled_from(["s", "ms", "us", "ns"]),
    as_tuple=st.booleans(),
)
def test_timestamp_columns_converted_once_per_stamp_are_what_pyarrow_makes(
    values: list[Any], unit: str, as_tuple: bool
) -> None:
    arrow = pa.timestamp(unit, tz="UTC")
    column = tuple(values) if as_tuple else values
    _assert_as_pyarrow_makes(column, arrow)


_LABELS = st.sampled_from([None, {}, {"zone": "a"}, {"zone": "a", "pod": "p-1"}, "zone=a"])


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(_LABELS, max_size=200)
    | st.builds(lambda label, n: [label] * n, _LABELS, st.integers(0, 500))
    | st.builds(lambda n: ({},) * n, st.integers(0, 500)),
    as_tuple=st.booleans(),
)
def test_map_columns_of_one_dict_throughout_are_what_pyarrow_makes(
    values: list[Any], as_tuple: bool
) -> None:
    arrow = pa.map_(pa.string(), pa.string())
    column = tuple(values) if as_tuple else list(values)
    _assert_as_pyarrow_makes(column, arrow)


def _assert_as_pyarrow_makes(column: list[Any] | tuple[Any, ...], arrow: pa.DataType) -> None:
    """`arrow_array` gives what ``pa.array`` gives, or fails as it does."""
    try:
        expected = pa.array(column, type=arrow)
    except (pa.ArrowException, TypeError, ValueError) as error:
        with pytest.raises(type(error)):
            arrow_array(column, arrow)
        return
    got = arrow_array(column, arrow)
    assert got.type == expected.type
    assert got.equals(expected)


# --- server backend (fake clickhouse-driver client) -------------------------------------------
# A mock, on purpose: no ClickHouse server that accepts our schema can run here (Debian only has
# 18.16). The fake stands in for clickhouse-driver's Client (third-party code, not ours) to check
# what the backend sends; the real native-protocol round trip is issue #3's test against
# Debian's clickhouse-server.


class FakeClient:
    """Records what the store sends; answers like clickhouse-driver's Client."""

    def __init__(self, version: str = "26.9.1.1", fail: Exception | None = None) -> None:
        self.version = version
        self.fail = fail
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []
        self.database = "default"
        self.disconnected = False
        self.result: tuple[list[tuple[Any, ...]], list[tuple[str, str]]] = ([], [])

    def execute(self, sql: str, params: Any = None, **kwargs: Any) -> Any:
        if self.fail is not None:
            raise self.fail
        self.calls.append((sql, params, kwargs))
        if sql == "SELECT version()":
            return [(self.version,)]
        if sql == "SELECT currentDatabase()":
            return [(self.database,)]
        if sql.startswith("USE "):
            self.database = sql[4:].strip("`")
        if kwargs.get("with_column_types"):
            return self.result
        return []

    def disconnect(self) -> None:
        self.disconnected = True


URL = "clickhouse://airis:s3cr3t-pw@db.example:9000/airis"


def test_server_store_inserts_synchronously_on_modern_servers() -> None:
    client = FakeClient("26.9.1.1")
    store = ClickHouseServerStore(URL, _client=client)
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    store.insert("metrics", ["ts", "value"], [(ts, 1.0)])
    store.insert("metrics", ["ts", "value"], [])
    sql, params, kwargs = client.calls[-1]
    assert sql == "INSERT INTO `metrics` (`ts`, `value`) VALUES"
    assert params == [[ts], [1.0]]  # one list per column
    assert kwargs == {"columnar": True, "settings": {"async_insert": 0}}
    assert store.server_version == "26.9.1.1"


def test_server_store_sends_no_async_insert_to_old_servers() -> None:
    client = FakeClient("18.16.1")
    store = ClickHouseServerStore(URL, _client=client)
    store.insert("t", ["a"], [("x",)])
    assert client.calls[-1][2] == {"columnar": True, "settings": {}}


def test_server_store_creates_and_uses_database() -> None:
    client = FakeClient()
    store = ClickHouseServerStore(URL, database="test_db", _client=client)
    sent = [sql for sql, _, _ in client.calls]
    assert "CREATE DATABASE IF NOT EXISTS `test_db`" in sent
    assert "USE `test_db`" in sent
    assert store.database == "test_db"


def test_server_store_query_matches_json_each_row() -> None:
    client = FakeClient()
    store = ClickHouseServerStore(URL, _client=client)
    client.result = (
        [(datetime(2026, 1, 2, 3, 4, 5, 678_900), None, {"k": "v"}, 3, "x")],
        [
            ("ts", "DateTime64(3, 'UTC')"),
            ("ends", "Nullable(DateTime64(3, 'UTC'))"),
            ("labels", "Map(LowCardinality(String), String)"),
            ("n", "UInt64"),
            ("s", "LowCardinality(String)"),
        ],
    )
    assert store.query("SELECT ...") == [
        {"ts": "2026-01-02 03:04:05.678", "ends": None, "labels": {"k": "v"}, "n": 3, "s": "x"}
    ]
    plain = datetime(2026, 1, 2, 3, 4, 5)
    assert normalize_value(plain, "DateTime('UTC')") == "2026-01-02 03:04:05"


def test_server_store_close_is_idempotent_and_final() -> None:
    client = FakeClient()
    store = ClickHouseServerStore(URL, _client=client)
    store.close()
    store.close()
    assert client.disconnected
    with pytest.raises(StoreOpenError, match="closed"):
        store.execute("SELECT 1")


def test_server_store_never_shows_the_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = ClickHouseServerStore(URL, _client=FakeClient())
    assert "s3cr3t-pw" not in repr(store)
    failing = FakeClient(fail=ConnectionError(f"cannot reach {URL}"))
    with pytest.raises(StoreOpenError) as info:
        ClickHouseServerStore(URL, _client=failing)
    assert "s3cr3t-pw" not in str(info.value)
    assert "db.example" in str(info.value)
    assert failing.disconnected
    assert "s3cr3t-pw" not in caplog.text


def test_open_store_picks_the_server_when_a_url_is_set(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import clickhouse_driver

    seen: list[str] = []

    def from_url(url: str) -> FakeClient:
        seen.append(url)
        return FakeClient()

    monkeypatch.setattr(clickhouse_driver.Client, "from_url", staticmethod(from_url))
    caplog.set_level(logging.DEBUG)
    store = open_store(StoreConfig(clickhouse_url=SecretStr(URL)))
    assert isinstance(store, ClickHouseServerStore) and isinstance(store, ClickHouseStore)
    assert seen == [URL]
    assert "s3cr3t-pw" not in caplog.text and "db.example" in caplog.text


# --- doctests of the sinks modules (pytest only collects tests/ and operators/) ---------------


@pytest.mark.parametrize(
    "module",
    [
        "airis.sinks.clickhouse_store",
        "airis.sinks.chdb_store",
        "airis.sinks.clickhouse_server",
        "airis.sinks.migrations",
        "airis.sinks.clickhouse_sink",
        "airis.sinks.clickhouse_encoding",
        "airis.sinks.clickhouse_writer",
    ],
)
def test_doctests(module: str) -> None:
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(importlib.import_module(module), optionflags=flags)
    assert result.failed == 0
