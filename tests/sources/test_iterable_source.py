"""`BatchIterSource`: batches of events, counted as the events they hold."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY

from airis.batches import LogBatch
from airis.events import LogRecord
from airis.sources.iterable_source import BatchIterSource

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def test_a_batch_of_columns_counts_as_its_events() -> None:
    lines = LogBatch.from_events(
        [LogRecord(ts=T0, service="api", body=f"line {i}") for i in range(3)]
    )
    progress: list[int] = []
    source = BatchIterSource("test-columns", lambda: iter([[lines, {"a": 1}], [lines]]),
                             progress.append)  # fmt: skip
    part = source.build_part("read", "test-columns", None)
    before = _counted()
    assert part.next_batch() == [lines, {"a": 1}]
    assert part.next_batch() == [lines]
    assert progress == [4, 7]
    assert _counted() - before == 7


def _counted() -> float:
    return REGISTRY.get_sample_value("airis_events_in_total", {"source": "test-columns"}) or 0.0
