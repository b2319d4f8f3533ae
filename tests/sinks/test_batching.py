"""The batching processor on its own, with a delivery function and a clock of our own."""

from __future__ import annotations

import threading

import pytest

from airis.sinks.batching import RETRY_FIRST_S, BlockBatcher
from airis.sinks.column_block import Block, rows_to_block
from airis.sinks.spill import RowSpill


class Backend:
    """Records deliveries; fails while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.delivered: list[tuple[str, list[tuple]]] = []

    def __call__(self, table: str, block: Block) -> None:
        if self.down:
            raise ConnectionError("backend down")
        self.delivered.append((table, list(zip(*block, strict=True))))


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def rows(*values: int) -> dict[str, list[Block]]:
    return {"t": [rows_to_block([(v, f"r{v}") for v in values])]}


def test_a_table_is_delivered_when_it_holds_batch_rows_or_its_oldest_row_is_old() -> None:
    backend, clock = Backend(), Clock()
    batcher = BlockBatcher(backend, batch_rows=3, batch_seconds=10, now=clock)
    assert batcher.add(rows(1, 2)) and backend.delivered == []
    assert batcher.add(rows(3))
    assert backend.delivered == [("t", [(1, "r1"), (2, "r2"), (3, "r3")])]
    batcher.add(rows(4))
    clock.t = 10
    batcher.add({})
    assert backend.delivered[-1] == ("t", [(4, "r4")])
    assert batcher.buffered_rows == {}


def test_a_failed_delivery_keeps_the_rows_and_waits_for_the_backoff() -> None:
    backend, clock = Backend(), Clock()
    delivered, dropped = [], []
    batcher = BlockBatcher(
        backend,
        batch_rows=1,
        now=clock,
        on_delivered=lambda t, n: delivered.append((t, n)),
        on_dropped=lambda t, n: dropped.append((t, n)),
    )
    backend.down = True
    assert not batcher.add(rows(1))
    backend.down = False
    assert not batcher.add(rows(2))  # within the backoff: not even tried
    assert backend.delivered == [] and batcher.buffered_rows == {"t": 2}
    clock.t = RETRY_FIRST_S
    assert batcher.add({})
    assert backend.delivered == [("t", [(1, "r1"), (2, "r2")])]
    assert (delivered, dropped) == ([("t", 2)], [])


def test_memory_is_bounded_while_the_backend_is_down_dropping_the_oldest() -> None:
    backend, dropped = Backend(), []
    backend.down = True
    batcher = BlockBatcher(
        backend, batch_rows=1, max_buffered_rows=2, on_dropped=lambda t, n: dropped.append(n)
    )
    for v in range(5):
        batcher.add(rows(v))
    assert batcher.buffered_rows == {"t": 2} and sum(dropped) == 3
    backend.down = False
    assert batcher.force_flush()
    assert backend.delivered == [("t", [(3, "r3"), (4, "r4")])]


def test_with_a_spill_nothing_is_dropped_and_spilled_rows_go_first(tmp_path) -> None:
    backend, clock = Backend(), Clock()
    backend.down = True
    batcher = BlockBatcher(
        backend, batch_rows=1, now=clock, spill=RowSpill(tmp_path, max_bytes=1 << 20)
    )
    batcher.add(rows(1))
    assert not batcher.flush_or_spill()  # a snapshot: nothing stays only in memory
    assert batcher.buffered_rows == {}
    backend.down = False
    clock.t = 60
    assert batcher.add(rows(2))
    assert [r for _, block in backend.delivered for r in block] == [(1, "r1"), (2, "r2")]


def test_close_delivers_what_is_left_and_reports_what_cannot_be() -> None:
    backend, dropped = Backend(), []
    batcher = BlockBatcher(backend, batch_rows=10, on_dropped=lambda t, n: dropped.append(n))
    batcher.add(rows(1))
    backend.down = True
    batcher.close()
    assert dropped == [1] and batcher.buffered_rows == {}
    batcher.close()  # only the first call does anything
    assert dropped == [1]


class GatedBackend(Backend):
    """Holds every delivery until ``gate`` opens (a slow insert); fails it then if ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def __call__(self, table: str, block: Block) -> None:
        assert self.gate.wait(5), "the gate was never opened"
        super().__call__(table, block)


def test_in_the_background_add_returns_while_the_backend_is_still_inserting() -> None:
    backend = GatedBackend()
    batcher = BlockBatcher(backend, batch_rows=2, background=True)
    assert batcher.add(rows(1, 2))  # due: handed to the delivery thread
    assert batcher.add(rows(3))
    assert backend.delivered == [] and batcher.buffered_rows == {"t": 3}  # in flight counts
    backend.gate.set()
    assert batcher.force_flush()  # waits for the one in flight, then delivers the rest
    assert backend.delivered == [("t", [(1, "r1"), (2, "r2")]), ("t", [(3, "r3")])]
    assert batcher.buffered_rows == {}
    batcher.close()


def test_a_failed_background_delivery_puts_its_rows_back_before_the_newer_ones() -> None:
    backend, clock, delivered = GatedBackend(), Clock(), []
    batcher = BlockBatcher(
        backend,
        batch_rows=2,
        now=clock,
        background=True,
        on_delivered=lambda t, n: delivered.append(n),
    )
    backend.down = True
    batcher.add(rows(1, 2))
    batcher.add(rows(3))  # arrives while 1 and 2 are in flight
    backend.gate.set()
    assert not batcher.flush_or_spill()  # the failure is known; the backoff is not over
    assert batcher.buffered_rows == {"t": 3} and delivered == []
    assert not batcher.add(rows(4))  # within the backoff: not tried
    backend.down = False
    clock.t = RETRY_FIRST_S
    batcher.close()
    assert backend.delivered == [("t", [(1, "r1"), (2, "r2"), (3, "r3"), (4, "r4")])]
    assert delivered == [4]


def test_a_table_due_again_waits_for_its_delivery_in_flight() -> None:
    backend = GatedBackend()
    batcher = BlockBatcher(backend, batch_rows=1, background=True)
    batcher.add(rows(1))
    threading.Timer(0.2, backend.gate.set).start()
    batcher.add(rows(2))  # due while 1 is in flight: waits for it, so 2 follows 1
    batcher.close()
    assert backend.delivered == [("t", [(1, "r1")]), ("t", [(2, "r2")])]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_rows": 0},
        {"batch_seconds": 0},
        {"batch_rows": 10, "max_buffered_rows": 5},
        {"flush_interval": 0},
    ],
)
def test_bad_arguments_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        BlockBatcher(Backend(), **kwargs)
