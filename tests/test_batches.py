"""Batches moved from `airis.events` to `airis.batches`; snapshots pickled before still load."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

from airis.batches import MetricBatch, PointRow
from airis.events import MetricPoint

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def test_batches_pickled_under_their_former_module_load() -> None:
    row = PointRow(T0, "api", "cpu", 1.5, {})
    batch = MetricBatch.from_points(
        "api", [MetricPoint(ts=T0, service="api", signal="cpu", value=2.0)]
    )
    for state in (row, batch, [row, batch]):
        data = pickle.dumps(state, protocol=2)  # classes named in plain text lines
        former = data.replace(b"airis.batches", b"airis.events")
        assert former != data
        assert pickle.loads(former) == state
