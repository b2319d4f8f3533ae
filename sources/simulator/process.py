"""The simulator's batches made in a process of their own, as a real producer's would be.

In `airis demo` the simulators (metric points, log lines, spans) ran on the dataflow's one
core: about a fifth of its time. `batches_from_child` runs one of them in a child process
(spawned, so no thread state of the parent is inherited) that sends each batch through a
bounded queue. Events are sent as they flow, as columns: the metric events validated there
as a decoder validates its partition's (`decode_metrics`: one `MetricBatch` per service, and
a dead letter for an invalid one), log records and spans one `LogBatch` or `SpanBatch` per
service (pickling a pydantic model costs more than making it).

The batches are the ones the simulator gives in-process, in the same order
(``tests/sources/test_sim_process.py``), so a resumed source skips the same ones.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from airis.batches import LogBatch, SpanBatch
from airis.sources.decode import decode_metrics

if TYPE_CHECKING:
    from airis.sources.simulator.metrics import Simulator

__all__ = ["Kind", "batches_from_child", "simulated_batches"]

Kind = Literal["metrics", "logs", "traces"]
#: Batches made ahead of the flow (memory bound: a batch is about 1,000 events).
DEPTH = 8
_END = "end"
_FAILED = "failed"
#: The ``source`` of an invalid metric event's dead letter.
_SOURCE = "simulator"


def simulated_batches(kind: Kind, sim: Simulator, ticks_per_batch: int) -> Iterator[list[Any]]:
    """The simulator's events of ``kind``, ``ticks_per_batch`` ticks a batch (in-process), as
    columns per service, in order of each service's first event: metric events validated
    (`decode_metrics`: a `MetricBatch` each), log lines and spans as a `LogBatch` or
    `SpanBatch` each."""
    from airis.sources.iterable_source import batched
    from airis.sources.simulator.logs import LogSimulator
    from airis.sources.simulator.traces import TraceSimulator

    if kind == "metrics":
        ticks: Iterator[list[Any]] = sim.ticks()
    elif kind == "logs":  # rows of fields, not an object per event
        ticks = LogSimulator(sim).tick_rows()
    else:
        ticks = TraceSimulator(sim).tick_rows()
    for chunk in batched(ticks, ticks_per_batch):
        events = [event for tick in chunk for event in tick]
        if kind == "metrics":
            yield decode_metrics(events, _SOURCE)
        elif kind == "logs":
            yield LogBatch.per_service_rows(events)
        else:
            yield SpanBatch.per_service_rows(events)


def batches_from_child(
    kind: Kind, sim: Simulator, ticks_per_batch: int
) -> Callable[[], Iterator[list[Any]]]:
    """`simulated_batches`, made in a child process each time the result is called.

    The first child starts at once, not at the first call: a child takes about half a
    second to send its first batch, which the flow's first read then need not wait out (the
    demo's three start together, while its flow is built and its store opened)."""
    ready = [_start(kind, sim, ticks_per_batch)]

    def open_batches() -> Iterator[list[Any]]:
        child, channel = ready.pop() if ready else _start(kind, sim, ticks_per_batch)
        try:
            while True:
                tag, payload = _receive(channel, child)
                if tag == _END:
                    break
                if tag == _FAILED:
                    raise RuntimeError(f"the {kind} simulator's process failed:\n{payload}")
                yield payload
            child.join()
        finally:
            if child.is_alive():  # the flow stopped reading early
                child.terminate()
                child.join()

    return open_batches


def _start(kind: Kind, sim: Simulator, ticks_per_batch: int) -> tuple[Any, Any]:
    """A started child making ``kind``'s batches, and the queue it sends them through."""
    context = multiprocessing.get_context("spawn")
    channel = context.Queue(maxsize=DEPTH)
    child = context.Process(
        target=_produce, args=(kind, sim, ticks_per_batch, channel), daemon=True,
        name=f"airis-sim-{kind}",
    )  # fmt: skip
    child.start()
    return child, channel


def _receive(channel: Any, child: Any) -> tuple[str, Any]:
    while True:
        try:
            return channel.get(timeout=1.0)
        except queue.Empty:
            if not child.is_alive():
                code = child.exitcode
                raise RuntimeError(f"the simulator's process died (exit code {code})") from None


def _produce(kind: Kind, sim: Simulator, ticks_per_batch: int, channel: Any) -> None:
    """The child: every batch, then the end (or why it failed)."""
    try:
        for batch in simulated_batches(kind, sim, ticks_per_batch):
            channel.put(("batch", batch))
        channel.put((_END, None))
    except BaseException:  # the parent must hear of it, not wait forever
        channel.put((_FAILED, traceback.format_exc()))
        raise
