"""A resumable Bytewax source over a re-creatable iterator of event batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from airis import telemetry
from airis.batches import event_count
from airis.sources.jsonl import read_jsonl
from airis.sources.simulator.process import Kind, batches_from_child, simulated_batches

if TYPE_CHECKING:
    from airis.sources.simulator import Simulator


__all__ = [
    "BatchIterSource",
    "batched",
    "jsonl_source",
    "simulated_logs_source",
    "simulated_traces_source",
    "simulator_source",
]

#: Simulator ticks per source batch (about 1,000 events: Bytewax is 7-18x slower per item
#: with tiny batches).
TICKS_PER_BATCH = 10
#: JSONL lines per source batch.
LINES_PER_BATCH = 1_000


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def simulator_source(
    sim: Simulator,
    on_batch: Callable[[int], None] | None = None,
    own_process: bool = False,
    batch_seconds: float | None = None,
) -> BatchIterSource:
    """The simulator's metric events, ``TICKS_PER_BATCH`` ticks per batch, or as many as
    ``batch_seconds`` of simulated time hold (made in a child process with ``own_process``:
    `airis.sources.simulator.process`)."""
    batches = _simulated("metrics", sim, own_process, batch_seconds)
    return BatchIterSource("simulator", batches, on_batch)


def simulated_logs_source(
    sim: Simulator, own_process: bool = False, batch_seconds: float | None = None
) -> BatchIterSource:
    """The simulator's log lines (`airis.sources.simulator.logs`), batched as
    `simulator_source` batches."""
    return BatchIterSource("simulator-logs", _simulated("logs", sim, own_process, batch_seconds))


def simulated_traces_source(
    sim: Simulator, own_process: bool = False, batch_seconds: float | None = None
) -> BatchIterSource:
    """The simulator's spans (`airis.sources.simulator.traces`), batched as
    `simulator_source` batches."""
    batches = _simulated("traces", sim, own_process, batch_seconds)
    return BatchIterSource("simulator-traces", batches)


def _simulated(
    kind: Kind, sim: Simulator, own_process: bool, batch_seconds: float | None
) -> Callable[[], Iterator[list[Any]]]:
    ticks = TICKS_PER_BATCH
    if batch_seconds is not None:
        ticks = max(1, round(batch_seconds / sim.interval_seconds))
    if own_process:
        return batches_from_child(kind, sim, ticks)
    return lambda: simulated_batches(kind, sim, ticks)


def jsonl_source(path: Path, on_batch: Callable[[int], None] | None = None) -> BatchIterSource:
    """A JSONL file's lines (objects, or raw bytes for bad lines), in order."""
    return BatchIterSource(
        f"file:{path.name}", lambda: batched(read_jsonl(path), LINES_PER_BATCH), on_batch
    )


class BatchIterSource(FixedPartitionedSource[Any, int]):
    """Items from ``open_batches()``, one partition, resumable by batch position.

    ``open_batches`` must yield the same batches every time it is called (a seeded simulator,
    a file): on resume the batches before the snapshot's position are skipped.

    Unit of parallelism: one partition, read by one worker. Delivery: exactly the batches
    after the last snapshot are emitted again on resume (downstream sinks are idempotent).

    Parameters
    ----------
    name
        The partition's name (and the ``source`` label of ``airis_events_in_total``).
    open_batches
        Returns a fresh iterator of batches (lists of events, or of batches of events such
        as a `SpanBatch`).
    on_batch
        Called with the running count of emitted events after each batch (progress output).
    """

    def __init__(
        self,
        name: str,
        open_batches: Callable[[], Iterator[list[Any]]],
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.name = name
        self.open_batches = open_batches
        self.on_batch = on_batch

    def list_parts(self) -> list[str]:
        return [self.name]

    def build_part(
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> _BatchIterPartition:
        return _BatchIterPartition(self, resume_state or 0)


class _BatchIterPartition(StatefulSourcePartition[Any, int]):
    def __init__(self, source: BatchIterSource, position: int) -> None:
        self._batches = islice(source.open_batches(), position, None)
        self._position = position
        self._emitted = 0
        self._on_batch = source.on_batch
        self._counter = telemetry.EVENTS_IN.labels(source=source.name)

    def next_batch(self) -> list[Any]:
        batch = next(self._batches)  # StopIteration ends the partition
        self._position += 1
        events = event_count(batch)
        self._emitted += events
        self._counter.inc(events)
        if self._on_batch is not None:
            self._on_batch(self._emitted)
        return batch

    def snapshot(self) -> int:
        return self._position
