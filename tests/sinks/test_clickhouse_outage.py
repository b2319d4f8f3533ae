"""ClickHouse down mid-stream: the store sink keeps its rows (memory, then disk), flow goes on.

The outage is made by failing the store client's inserts in front of a real embedded ClickHouse
(chdb): no ClickHouse server that accepts our tables can run here, and chdb cannot be stopped
from outside. What is checked is ours: no exception reaches Bytewax, failed inserts back off,
spilled rows survive a restart, and afterwards every row is stored exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from airis.events import MetricPoint
from airis.sinks.chdb_store import ChdbStore
from airis.sinks.clickhouse_sink import _SnapshotFlushingPartition
from airis.sinks.clickhouse_store import ClickHouseStore
from airis.sinks.clickhouse_writer import ClickHouseWriter
from airis.sinks.spill import RowSpill

# Recent: the tables have a TTL.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)


class Outage(ClickHouseStore):
    """A real store whose inserts fail while ``down`` (the client's view of an outage)."""

    def __init__(self, store: ChdbStore) -> None:
        self.store = store
        self.database = store.database
        self.down = False
        self.attempts = 0

    def execute(self, sql: str) -> None:
        self.store.execute(sql)

    def query(self, sql: str) -> list[dict[str, Any]]:
        return self.store.query(sql)

    def insert_columns(
        self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]
    ) -> None:
        self.attempts += 1
        if self.down:
            raise ConnectionError("Connection refused (ClickHouse is down)")
        self.store.insert_columns(table, columns, data)

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(migrated_store: ChdbStore) -> ChdbStore:
    return migrated_store


def points(start: int, n: int) -> list[MetricPoint]:
    return [
        MetricPoint(ts=T0 + timedelta(seconds=i), service="api", signal="cpu", value=float(i))
        for i in range(start, start + n)
    ]


def stored(store: ChdbStore) -> tuple[int, int]:
    """(rows, distinct timestamps) of the metrics table, merged."""
    row = store.query("SELECT count() AS c, uniqExact(ts) AS u FROM metrics FINAL")[0]
    return row["c"], row["u"]


def partition(outage: Outage, spill_dir: Path, clock: Clock, flush: bool = True, **kw: Any):
    writer = ClickHouseWriter(
        outage, batch_rows=50, batch_seconds=1.0, now=clock, spill=RowSpill(spill_dir), **kw
    )
    return _SnapshotFlushingPartition(writer, flush)


@pytest.mark.parametrize("background", [False, True], ids=["inline", "background"])
def test_a_60_s_outage_spills_backs_off_and_then_stores_every_row_once(
    store: ChdbStore, tmp_path: Path, background: bool
) -> None:
    outage, clock = Outage(store), Clock()
    part = partition(outage, tmp_path, clock, max_buffered_rows=200, background=background)
    part.write_batch([points(0, 100)])
    part.snapshot()
    assert stored(store) == (100, 100)

    outage.down = True
    for second in range(60):  # 60 s down, 100 points a second, a snapshot every 5 s
        clock.t = 100.0 + second
        part.write_batch([points(100 + 100 * second, 100)])
        if second % 5 == 4:
            part.snapshot()  # never raises: the flow goes on
    spill = part._writer.spill
    assert spill.rows("metrics") + sum(part._writer.buffered_rows.values()) == 6000
    assert spill.bytes > 0
    assert REGISTRY.get_sample_value("airis_sink_spilled_bytes") == spill.bytes  # in /metrics
    # Backoff: far fewer insert attempts than the 60 batches and 12 snapshots that came.
    assert outage.attempts - 2 <= 15, outage.attempts

    outage.down = False
    clock.t = 200.0
    part.write_batch([points(6100, 100)])
    part.snapshot()
    assert stored(store) == (6200, 6200)
    assert spill.tables() == [] and part._writer.buffered_rows == {}


@pytest.mark.parametrize("background", [False, True], ids=["inline", "background"])
def test_rows_spilled_before_a_crash_are_stored_after_the_restart(
    store: ChdbStore, tmp_path: Path, background: bool
) -> None:
    outage, clock = Outage(store), Clock()
    outage.down = True
    before = partition(outage, tmp_path, clock, background=background)
    before.write_batch([points(0, 300)])
    before.snapshot()  # spilled; then the process dies without closing anything
    assert stored(store) == (0, 0)

    outage.down = False
    # A new process on the same spill directory.
    after = partition(outage, tmp_path, Clock(), background=background)
    after.write_batch([points(300, 10)])
    after.snapshot()
    assert stored(store) == (310, 310)
    assert not any(tmp_path.rglob("*.rows"))


def test_without_recovery_a_snapshot_leaves_rows_to_the_writer_but_sends_spilled_ones(
    store: ChdbStore, tmp_path: Path
) -> None:
    outage, clock = Outage(store), Clock()
    part = partition(outage, tmp_path, clock, flush=False, max_buffered_rows=100)
    part.write_batch([points(0, 10)])
    part.snapshot()  # no epoch's offsets wait for these rows: no insert now
    assert stored(store) == (0, 0) and part._writer.buffered_rows == {"metrics": 10}
    clock.t = 2.0  # older than batch_seconds: the next batch sends them
    part.write_batch([points(10, 10)])
    assert stored(store) == (20, 20)

    outage.down = True
    clock.t = 4.0
    part.write_batch([points(20, 300)])  # fails: beyond max_buffered_rows, spilled
    assert part._writer.spill.rows("metrics") > 0
    outage.down = False
    clock.t = 40.0  # after the retry's backoff
    part.snapshot()  # spilled rows still go at a snapshot, oldest first
    assert stored(store) == (320, 320)
    assert part._writer.spill.tables() == [] and part._writer.buffered_rows == {}


def test_a_full_spill_drops_the_oldest_rows_and_counts_them(tmp_path: Path) -> None:
    spill = RowSpill(tmp_path, max_bytes=3000)
    for k in range(5):
        spill.put("metrics", [[k] * 10, [f"{j:03d}" + "x" * 100 for j in range(10)]])
    assert spill.bytes <= 3000
    assert spill.rows("metrics") < 50
    kept = []
    while (oldest := spill.oldest("metrics")) is not None:
        kept.append(oldest[1][0][0])
        spill.remove(oldest[0])
    assert kept == sorted(kept) and kept[-1] == 4  # the newest survive, in order
