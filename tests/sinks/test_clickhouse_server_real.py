"""The server backend against a real ClickHouse server: Debian 12's clickhouse-server 18.16.

`clickhouse18_url` starts one server per test session with deploy/clickhouse/clickhouse18.sh
(packages from the Debian archive, unpacked without root) on a free port in a temporary
directory, and stops it at the end. If it cannot be fetched or started the tests fail with
the script's message: they are never skipped.

18.16 (2018) speaks today's native protocol but not our schema, so these tests use tables in
18.16's types (DateTime, Array(String) for labels) and check that our migrations fail on it
with a message that names the version.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver.errors import ServerException
from pydantic import SecretStr

from airis.events import MetricPoint
from airis.settings import Settings
from airis.sinks.clickhouse_encoding import TableSpec
from airis.sinks.clickhouse_server import (
    MIN_SCHEMA_VERSION,
    ClickHouseServerStore,
    ServerVersionError,
)
from airis.sinks.clickhouse_store import ClickHouseStore, StoreOpenError, open_store
from airis.sinks.clickhouse_writer import ClickHouseWriter, ExportResult
from airis.sinks.migrations import MIGRATIONS_TABLE, migrate

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "clickhouse" / "clickhouse18.sh"
SERVER_VERSION = "18.16.1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _script(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="session")
def clickhouse18_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``clickhouse://default@127.0.0.1:PORT/default`` of a ClickHouse 18.16 for this session."""
    directory = tmp_path_factory.mktemp("clickhouse18")
    failures: list[str] = []
    for _ in range(3):  # another process may take the free port before the server binds it
        port = _free_port()
        try:
            up = _script(
                "up",
                "--port", str(port),
                "--dir", str(directory),
                "--owner-pid", str(os.getpid()),
                timeout=300,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            _script("down", "--dir", str(directory), timeout=60)
            pytest.fail(f"{SCRIPT.name} up timed out: {exc.stderr}", pytrace=False)
        if up.returncode == 0:
            break
        failures.append(up.stderr.strip() or up.stdout.strip())
        if "already in use" not in up.stderr:
            break
    if up.returncode != 0:
        pytest.fail(
            f"cannot start ClickHouse 18.16 with {SCRIPT}:\n" + "\n".join(failures), pytrace=False
        )
    yield f"clickhouse://default@127.0.0.1:{port}/default"
    down = _script("down", "--dir", str(directory), timeout=120)
    assert down.returncode == 0, down.stderr


@pytest.fixture
def server_store(clickhouse18_url: str, database: str) -> Iterator[ClickHouseServerStore]:
    """A store on the session's server, in a database of its own (dropped afterwards)."""
    store = ClickHouseServerStore(clickhouse18_url, database=database)
    yield store
    store.close()
    with ClickHouseServerStore(clickhouse18_url) as cleanup:
        cleanup.execute(f"DROP DATABASE IF EXISTS {database}")


class CountingStore(ClickHouseStore):
    """Passes everything to ``inner`` and records the size of each insert."""

    def __init__(self, inner: ClickHouseStore) -> None:
        self.inner = inner
        self.database = inner.database
        self.inserts: list[tuple[str, int]] = []

    def execute(self, sql: str) -> None:
        self.inner.execute(sql)

    def query(self, sql: str) -> list[dict[str, Any]]:
        return self.inner.query(sql)

    def insert_columns(
        self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]
    ) -> None:
        self.inner.insert_columns(table, columns, data)
        self.inserts.append((table, len(data[0])))

    def close(self) -> None:
        self.inner.close()


# `metrics` (migrations.py) in types 18.16 knows: DateTime for DateTime64(3, 'UTC'), String for
# LowCardinality(String), two arrays for Map(LowCardinality(String), String), and no TTL.
METRICS_18 = """
CREATE TABLE IF NOT EXISTS metrics18 (
    ts DateTime,
    service String,
    signal String,
    value Float64,
    label_keys Array(String),
    label_values Array(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (service, signal, ts)
"""
METRICS_18_COLUMNS = ("ts", "service", "signal", "value", "label_keys", "label_values")


def encode_metric_18(point: MetricPoint) -> tuple[Any, ...]:
    keys = sorted(point.labels)
    return (
        point.ts,
        point.service,
        point.signal,
        point.value,
        keys,
        [point.labels[k] for k in keys],
    )


TABLES_18 = {MetricPoint: TableSpec("metrics18", METRICS_18_COLUMNS, encode_metric_18)}
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def points(n: int, start: int = 0) -> list[MetricPoint]:
    """``n`` points of 4 services x 5 signals, one second apart, all on one day."""
    return [
        MetricPoint(
            ts=T0 + timedelta(seconds=i),
            service=f"svc{i % 4}",
            signal=f"sig{i % 5}",
            value=i * 0.5,
            labels={"zone": f"z{i % 3}", "host": f"h{i % 7}"},
        )
        for i in range(start, start + n)
    ]


# --- connecting -------------------------------------------------------------------------------


def test_open_store_connects_to_the_real_server(clickhouse18_url: str, database: str) -> None:
    settings = Settings(clickhouse_url=SecretStr(clickhouse18_url))
    with open_store(settings.store, database=database) as store:
        assert isinstance(store, ClickHouseServerStore)
        assert store.server_version == SERVER_VERSION
        assert store.database == database
        assert store.query("SELECT 1 AS one, currentDatabase() AS db") == [
            {"one": 1, "db": database}
        ]
        store.execute(f"DROP DATABASE {database}")
    with open_store(settings.store) as default:
        assert default.database == "default"


def test_wrong_password_or_port_fails_at_open_without_the_password(clickhouse18_url: str) -> None:
    port = clickhouse18_url.rsplit(":", 1)[1].split("/")[0]
    with pytest.raises(StoreOpenError, match="cannot open ClickHouse server") as info:
        ClickHouseServerStore(f"clickhouse://default:s3cr3t-pw@127.0.0.1:{port}/default")
    assert "s3cr3t-pw" not in str(info.value)
    assert "password" in str(info.value).lower()  # the server's reason: wrong password
    with pytest.raises(StoreOpenError, match="cannot open ClickHouse server"):
        ClickHouseServerStore(f"clickhouse://default@127.0.0.1:{_free_port()}/default")


def test_the_store_stays_usable_after_a_server_error(server_store: ClickHouseServerStore) -> None:
    """clickhouse-driver drops the connection after an error; the store must reconnect to
    its own database (it used to reconnect to a database named with backquotes)."""
    with pytest.raises(ServerException, match="Unknown function"):
        server_store.query("SELECT no_such_function()")
    assert server_store.query("SELECT currentDatabase() AS db") == [{"db": server_store.database}]
    server_store.execute("CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a")
    with pytest.raises(ServerException):
        server_store.insert("no_such_table", ["a"], [(1,)])
    server_store.insert("t", ["a"], [(1,), (2,)])
    assert server_store.query("SELECT count() AS n FROM t") == [{"n": 2}]


# --- DDL: what 18.16 accepts and rejects ------------------------------------------------------


@pytest.mark.parametrize(
    ("ddl", "engine"),
    [
        ("(a UInt32) ENGINE = MergeTree ORDER BY a", "MergeTree"),
        ("(a UInt32) ENGINE = MergeTree() ORDER BY a", "MergeTree"),
        (
            "(ts DateTime, s String) ENGINE = ReplacingMergeTree "
            "PARTITION BY toYYYYMMDD(ts) ORDER BY (s, ts)",
            "ReplacingMergeTree",
        ),
        ("(d Date, ts DateTime) ENGINE = MergeTree(d, ts, 8192)", "MergeTree"),  # 2016 syntax
        (
            "(ts DateTime('UTC'), v Nullable(Float64), l Array(String), "
            "n Nested(key String, value String)) ENGINE = MergeTree ORDER BY ts",
            "MergeTree",
        ),
    ],
)
def test_18_16_accepts(server_store: ClickHouseServerStore, ddl: str, engine: str) -> None:
    server_store.execute(f"CREATE TABLE IF NOT EXISTS t {ddl}")
    server_store.execute(f"CREATE TABLE IF NOT EXISTS t {ddl}")  # idempotent
    rows = server_store.query(
        f"SELECT engine FROM system.tables WHERE database = '{server_store.database}'"
    )
    assert rows == [{"engine": engine}]


@pytest.mark.parametrize(
    ("ddl", "server_says"),
    [
        ("(ts DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY ts", "DateTime64"),
        ("(m Map(String, String)) ENGINE = MergeTree ORDER BY tuple()", "Map"),
        ("(s LowCardinality(String)) ENGINE = MergeTree ORDER BY s", "LowCardinality"),
        ("(ts DateTime) ENGINE = MergeTree ORDER BY ts TTL ts + INTERVAL 1 DAY", "Syntax error"),
        (
            "(ts DateTime) ENGINE = MergeTree ORDER BY ts SETTINGS ttl_only_drop_parts = 1",
            "ttl_only_drop_parts",
        ),
    ],
)
def test_18_16_rejects_our_modern_ddl_with_a_clear_error(
    server_store: ClickHouseServerStore, ddl: str, server_says: str
) -> None:
    with pytest.raises(ServerVersionError) as info:
        server_store.execute(f"CREATE TABLE t {ddl}")
    message = str(info.value)
    assert message.startswith(f"ClickHouse server {SERVER_VERSION} at clickhouse://default@")
    assert "older than 22.3, the oldest version the AIRIS-MON schema supports" in message
    assert server_says in message
    assert "Stack trace" not in message
    assert isinstance(info.value.__cause__, ServerException)


def test_only_schema_statements_blame_the_version(server_store: ClickHouseServerStore) -> None:
    server_store.execute("CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a")
    # Migration 2's ALTER: 18.16 has no ADD COLUMN IF NOT EXISTS.
    with pytest.raises(ServerVersionError, match=r"older than 22\.3.*Syntax error"):
        server_store.execute("ALTER TABLE t ADD COLUMN IF NOT EXISTS b String")
    server_store.execute("ALTER TABLE t ADD COLUMN b String")
    # Other statements keep the driver's error.
    with pytest.raises(ServerException, match="doesn't exist"):
        server_store.execute("OPTIMIZE TABLE no_such_table FINAL")
    with pytest.raises(ServerException, match="doesn't exist"):
        server_store.execute("DROP TABLE no_such_table")


def test_migrations_fail_on_18_16_naming_the_version(server_store: ClickHouseServerStore) -> None:
    assert MIN_SCHEMA_VERSION == (22, 3)
    with pytest.raises(
        ServerVersionError, match=r"ClickHouse server 18\.16\.1 .* older than 22\.3"
    ):
        migrate(server_store)
    # The bookkeeping table is plain enough for 18.16; nothing was recorded as applied.
    assert server_store.query(f"SELECT count() AS n FROM {MIGRATIONS_TABLE}") == [{"n": 0}]
    with pytest.raises(ServerVersionError):
        migrate(server_store)  # and a second attempt fails the same way


def test_writer_from_settings_fails_on_18_16(clickhouse18_url: str) -> None:
    with pytest.raises(ServerVersionError, match=r"older than 22\.3"):
        ClickHouseWriter.from_config(Settings(clickhouse_url=SecretStr(clickhouse18_url)).store)


# --- inserts and queries ----------------------------------------------------------------------


def test_insert_50000_rows_in_batches(
    server_store: ClickHouseServerStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server_store.execute(
        "CREATE TABLE m (ts DateTime, service String, value Float64, maybe Nullable(Float64), "
        "tags Array(String)) ENGINE = MergeTree PARTITION BY toYYYYMMDD(ts) ORDER BY (service, ts)"
    )
    rows = [
        (
            T0 + timedelta(seconds=i),
            f"svc{i % 10}",
            i * 0.5,
            None if i % 3 == 0 else float(i),
            [f"t{i % 4}"] * (i % 3),
        )
        for i in range(50_000)
    ]
    columns = ["ts", "service", "value", "maybe", "tags"]
    for start in range(0, len(rows), 5_000):
        server_store.insert("m", columns, rows[start : start + 5_000])
    # 18.16 does not know async_insert: the store must not send it (the driver would warn).
    assert server_store._insert_settings == {}
    assert "async_insert" not in caplog.text

    [totals] = server_store.query(
        "SELECT count() AS n, sum(value) AS total, countIf(isNull(maybe)) AS nulls, "
        "sum(maybe) AS maybe_total, sum(length(tags)) AS tags, uniqExact(service) AS services, "
        "min(ts) AS first, max(ts) AS last FROM m"
    )
    assert totals == {
        "n": 50_000,
        "total": sum(r[2] for r in rows),
        "nulls": sum(1 for r in rows if r[3] is None),
        "maybe_total": sum(r[3] for r in rows if r[3] is not None),
        "tags": sum(len(r[4]) for r in rows),
        "services": 10,
        "first": "2026-03-01 00:00:00",
        "last": (T0 + timedelta(seconds=49_999)).strftime("%Y-%m-%d %H:%M:%S"),
    }
    assert server_store.query("SELECT * FROM m WHERE value = 1.5") == [
        {
            "ts": "2026-03-01 00:00:03",
            "service": "svc3",
            "value": 1.5,
            "maybe": None,
            "tags": [],
        }
    ]
    assert server_store.query("SELECT maybe, tags FROM m WHERE value = 2.5") == [
        {"maybe": 5.0, "tags": ["t1", "t1"]}
    ]


def test_datetimes_keep_their_instant(server_store: ClickHouseServerStore) -> None:
    """Aware datetimes in any zone land as the same instant; results print in UTC."""
    server_store.execute("CREATE TABLE d (k UInt8, ts DateTime) ENGINE = MergeTree ORDER BY k")
    plus_two = timezone(timedelta(hours=2))
    server_store.insert(
        "d",
        ["k", "ts"],
        [
            (1, datetime(2026, 3, 1, 12, 0, tzinfo=UTC)),
            (2, datetime(2026, 3, 1, 14, 0, tzinfo=plus_two)),
        ],
    )
    assert server_store.query("SELECT k, ts, toUnixTimestamp(ts) AS epoch FROM d ORDER BY k") == [
        {"k": 1, "ts": "2026-03-01 12:00:00", "epoch": 1772366400},
        {"k": 2, "ts": "2026-03-01 12:00:00", "epoch": 1772366400},
    ]


# --- the writer -------------------------------------------------------------------------------


def test_writer_batches_into_an_18_16_metrics_table(server_store: ClickHouseServerStore) -> None:
    server_store.execute(METRICS_18)
    store = CountingStore(server_store)
    clock = [0.0]
    writer = ClickHouseWriter(
        store, batch_rows=1_000, batch_seconds=60, tables=TABLES_18, now=lambda: clock[0]
    )
    for i in range(10):  # 10 exports of 350 points: inserts of 1,050 rows at exports 3, 6, 9
        assert writer.export(points(350, start=i * 350)) is ExportResult.SUCCESS
    assert store.inserts == [("metrics18", 1_050)] * 3
    assert writer.buffered_rows == {"metrics18": 350}
    clock[0] = 61.0  # the buffer is now older than batch_seconds: the next export flushes it
    assert writer.export(points(10, start=3_500)) is ExportResult.SUCCESS
    assert store.inserts[3:] == [("metrics18", 360)]
    assert writer.export(points(5, start=3_510)) is ExportResult.SUCCESS
    writer.shutdown()  # flushes the last 5
    assert store.inserts[4:] == [("metrics18", 5)]
    assert writer.rows_written == {"metrics18": 3_515}
    assert writer.rows_dropped == {"metrics18": 0}

    [row] = server_store.query(
        "SELECT count() AS n, sum(value) AS total, uniqExact(service, signal) AS series, "
        "countIf(label_keys = ['host', 'zone']) AS labelled FROM metrics18"
    )
    assert row == {
        "n": 3_515,
        "total": sum(i * 0.5 for i in range(3_515)),
        "series": 20,
        "labelled": 3_515,
    }
    assert server_store.query(
        "SELECT ts, service, signal, value, label_keys, label_values FROM metrics18 "
        "WHERE value = 3.5"
    ) == [
        {
            "ts": "2026-03-01 00:00:07",
            "service": "svc3",
            "signal": "sig2",
            "value": 3.5,
            "label_keys": ["host", "zone"],
            "label_values": ["h0", "z1"],
        }
    ]


def test_replaying_a_batch_is_idempotent(server_store: ClickHouseServerStore) -> None:
    server_store.execute(METRICS_18)
    batch = points(2_000)
    for _ in range(2):  # a replay: the same events written again
        writer = ClickHouseWriter(server_store, batch_rows=500, tables=TABLES_18)
        assert writer.export(batch) is ExportResult.SUCCESS
        assert writer.force_flush()
        assert writer.rows_written == {"metrics18": 2_000}
        writer.shutdown()
    [raw] = server_store.query("SELECT count() AS n FROM metrics18")
    assert 2_000 <= raw["n"] <= 4_000  # both copies, unless a background merge already ran
    assert server_store.query("SELECT count() AS n FROM metrics18 FINAL") == [{"n": 2_000}]
    server_store.execute("OPTIMIZE TABLE metrics18 FINAL")
    assert server_store.query("SELECT count() AS n, sum(value) AS total FROM metrics18") == [
        {"n": 2_000, "total": sum(i * 0.5 for i in range(2_000))}
    ]
    [parts] = server_store.query(
        "SELECT count() AS n FROM system.parts WHERE active AND database = currentDatabase() "
        "AND table = 'metrics18'"
    )
    assert parts == {"n": 1}


def test_writer_keeps_rows_while_the_table_is_missing(server_store: ClickHouseServerStore) -> None:
    """A failed insert on a real server keeps the rows; they go in once the table exists."""
    writer = ClickHouseWriter(server_store, batch_rows=100, tables=TABLES_18)
    assert writer.export(points(150)) is ExportResult.FAILURE
    assert writer.buffered_rows == {"metrics18": 150}
    server_store.execute(METRICS_18)
    assert writer.force_flush()
    assert writer.rows_written == {"metrics18": 150}
    writer.shutdown()
    assert server_store.query("SELECT count() AS n FROM metrics18") == [{"n": 150}]


def test_database_names_are_quoted(clickhouse18_url: str) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"  # a dash needs backquotes
    try:
        with ClickHouseServerStore(clickhouse18_url, database=name) as store:
            assert store.database == name
            with pytest.raises(ServerException):
                store.query("SELECT no_such_function()")
            assert store.query("SELECT currentDatabase() AS db") == [{"db": name}]
    finally:
        with ClickHouseServerStore(clickhouse18_url) as cleanup:
            cleanup.execute(f"DROP DATABASE IF EXISTS `{name}`")
