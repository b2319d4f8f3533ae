"""The simulator's batches from a child process are the in-process ones, in order."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import pytest

from airis.batches import EventBatch, MetricBatch, unbatched
from airis.events import MetricPoint
from airis.flows.batching import group_by
from airis.sources.iterable_source import (
    TICKS_PER_BATCH,
    simulated_logs_source,
    simulated_traces_source,
    simulator_source,
)
from airis.sources.simulator import Simulator
from airis.sources.simulator.logs import LogSimulator
from airis.sources.simulator.process import batches_from_child, simulated_batches
from airis.sources.simulator.traces import TraceSimulator

START = datetime(2026, 12, 1, tzinfo=UTC)


def _sim() -> Simulator:
    return Simulator(start=START, hours=0.5, seed=11, faults=[])


@pytest.mark.parametrize("kind", ["metrics", "logs", "traces"])
def test_a_child_gives_the_batches_made_in_process(kind: str) -> None:
    sim = _sim()
    here = list(simulated_batches(kind, sim, 10))  # type: ignore[arg-type]
    there = list(batches_from_child(kind, sim, 10)())  # type: ignore[arg-type]
    assert len(there) == len(here) > 0
    assert there == here


def test_the_first_child_starts_before_the_batches_are_asked_for() -> None:
    running = set(multiprocessing.active_children())  # another test's may still run
    open_batches = batches_from_child("metrics", _sim(), 10)

    started = [
        p
        for p in multiprocessing.active_children()
        if p.name == "airis-sim-metrics" and p not in running
    ]
    assert len(started) == 1 and started[0].is_alive()
    assert list(open_batches()) == list(simulated_batches("metrics", _sim(), 10))
    started[0].join(10)
    assert started[0].exitcode == 0  # the batches came from it, then it ended
    again = list(open_batches())  # a second read (a replay) has a child of its own
    assert again == list(simulated_batches("metrics", _sim(), 10))


@pytest.mark.parametrize("kind", ["metrics", "logs", "traces"])
def test_events_come_as_one_batch_per_service_of_the_simulator_s_events(kind: str) -> None:
    sim = _sim()
    made = [event for batch in simulated_batches(kind, sim, 10) for event in batch]  # type: ignore[arg-type]
    if kind == "metrics":  # validated: as MetricPoint(**event) would be
        assert all(type(b) is MetricBatch and b.key == b.service for b in made)
        events = [MetricPoint(**event) for tick in sim.ticks() for event in tick]
    else:
        assert all(isinstance(b, EventBatch) for b in made)
        assert all(set(b.column("service")) == {b.service} for b in made)
        ticks = LogSimulator(sim).ticks() if kind == "logs" else TraceSimulator(sim).ticks()
        events = [event for tick in ticks for event in tick]
    assert len({b.service for b in made}) == len(sim.services) > 1
    assert _by_service(made) == _by_service(events)


def test_a_resumed_source_skips_the_batches_before_its_snapshot() -> None:
    source = simulated_traces_source(_sim(), own_process=True)
    first = source.build_part("read", "simulator-traces", None)
    batches = [first.next_batch() for _ in range(3)]
    resumed = source.build_part("read", "simulator-traces", first.snapshot() - 1)
    assert resumed.next_batch() == batches[2]


def _all_batches(source: Any) -> list[list[Any]]:
    part = source.build_part("read", source.list_parts()[0], None)
    batches = []
    with contextlib.suppress(StopIteration):
        while True:
            batches.append(part.next_batch())
    return batches


@pytest.mark.parametrize("make", [simulator_source, simulated_logs_source, simulated_traces_source])
def test_batches_of_simulated_time_hold_the_same_events_in_the_same_order(make: Any) -> None:
    """``batch_seconds`` (the demo's 300) changes how many ticks a batch holds, nothing else."""
    sim = _sim()  # 180 ticks of 10 s
    default = _all_batches(make(sim))
    five_minutes = _all_batches(make(sim, own_process=True, batch_seconds=300.0))
    assert len(default) == 180 // TICKS_PER_BATCH
    assert len(five_minutes) == 180 // 30
    made, made_by_default = ([e for b in bs for e in b] for bs in (five_minutes, default))
    # a batch per service: each service's events in the same order
    assert _by_service(made) == _by_service(made_by_default)


def _by_service(items: list[Any]) -> dict[str, list[Any]]:
    """Each service's events, in order (a batch holds one service's)."""
    return group_by(unbatched(items), lambda e: e.service)


def test_a_reader_that_stops_early_stops_the_child() -> None:
    batches = batches_from_child("traces", _sim(), 10)()
    assert next(batches)
    batches.close()  # the generator's finally ends the child; nothing hangs


class _Broken(Simulator):
    """A simulator whose metrics fail after a few ticks (importable by the child)."""

    def ticks(self, speed: float | None = None) -> Iterator[list[dict[str, Any]]]:
        yield from islice(super().ticks(speed), 15)
        raise ValueError("the simulator broke")


def test_a_failing_child_says_why() -> None:
    sim = _Broken(start=START, hours=0.5, seed=11, faults=[])
    batches = batches_from_child("metrics", sim, 10)()
    assert next(batches)
    with pytest.raises(RuntimeError, match="the simulator broke"):
        list(batches)
