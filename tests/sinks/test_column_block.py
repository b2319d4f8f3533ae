"""Blocks: what the writer buffers, spills and inserts, column by column."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from airis.batches import MetricBatch
from airis.events import MetricPoint
from airis.sinks.chdb_store import ChdbStore
from airis.sinks.clickhouse_encoding import encode_blocks, encode_metric
from airis.sinks.clickhouse_writer import ClickHouseWriter
from airis.sinks.column_block import BlockBuffer, rows_to_block
from airis.sinks.spill import RowSpill

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@given(st.lists(st.lists(st.integers(), min_size=0, max_size=5), max_size=6), st.integers(0, 40))
def test_a_buffer_gives_back_its_rows_in_order_less_the_oldest_dropped(
    chunks: list[list[int]], drop: int
) -> None:
    buffer = BlockBuffer()
    for chunk in chunks:
        buffer.add((tuple(chunk), tuple(str(v) for v in chunk)))
    rows = [(v, str(v)) for chunk in chunks for v in chunk]
    assert buffer.drop_oldest(drop) == min(drop, len(rows))
    kept = rows[drop:]
    assert len(buffer) == len(kept)
    assert buffer.take() == ([list(c) for c in zip(*kept, strict=True)] if kept else [])
    assert len(buffer) == 0


class Recording(ChdbStore):
    """The real embedded store, recording the type of each inserted column."""

    def __init__(self, path: Path, database: str) -> None:
        super().__init__(path, database)
        self.blocks: list[list[type]] = []

    def insert_columns(
        self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]
    ) -> None:
        self.blocks.append([type(values) for values in data])
        super().insert_columns(table, columns, data)


def test_a_metric_batch_reaches_the_store_as_columns(migrated_store: ChdbStore) -> None:
    store = Recording(migrated_store.path, migrated_store.database)  # a second session
    points = [
        MetricPoint(ts=T0 + timedelta(seconds=i), service="api", signal="cpu", value=float(i))
        for i in range(6)
    ]
    writer = ClickHouseWriter(store, batch_rows=100)
    writer.export([MetricBatch.from_points("api", points[:5]), points[5]])
    assert writer.force_flush()
    assert store.blocks == [[list] * 5]  # one block of column lists, no row tuples
    got = store.query("SELECT count() AS n, sum(value) AS s FROM metrics WHERE service = 'api'")
    assert got == [{"n": 6, "s": 15}]
    store.close()


def test_blocks_keep_the_order_of_a_mixed_batch() -> None:
    points = [
        MetricPoint(ts=T0 + timedelta(seconds=i), service="api", signal="cpu", value=float(i))
        for i in range(4)
    ]
    batch = MetricBatch.from_points("api", points[1:3])
    blocks, rejected = encode_blocks([points[0], batch, points[3]])
    rows = [row for block in blocks["metrics"] for row in zip(*block, strict=True)]
    assert rows == [encode_metric(p) for p in points] and rejected == []


def test_a_spill_file_of_rows_from_before_blocks_is_still_read(tmp_path: Path) -> None:
    rows = [(1, "a"), (2, "b")]
    (tmp_path / "metrics").mkdir()
    with open(tmp_path / "metrics" / "000000000007-2.rows", "wb") as f:
        pickle.dump(rows, f)
    spill = RowSpill(tmp_path)
    assert spill.rows("metrics") == 2
    found = spill.oldest("metrics")
    assert found is not None and found[1] == rows_to_block(rows)
    spill.put("metrics", [[3], ["c"]])  # numbered after the old file
    spill.remove(found[0])
    path, block = spill.oldest("metrics") or (None, None)
    assert block == [[3], ["c"]] and path is not None and path.name.startswith("000000000008-")
