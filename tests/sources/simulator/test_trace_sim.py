"""Tests of the trace simulator: determinism, structure, topology, errors and timing of spans."""

from __future__ import annotations

import doctest
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from functools import cache

import numpy as np
import pytest

import airis.sources.simulator.traces as trace_sim
from airis.events import Span
from airis.sources.simulator import Simulator, recent_simulation
from airis.sources.simulator.effects import make_fault
from airis.sources.simulator.traces import TraceSimulator

T0 = datetime(2024, 1, 3, 10, tzinfo=UTC)  # a Wednesday morning
TOL = timedelta(microseconds=2)  # timestamps are rounded to microseconds


def minutes(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


@cache
def faulty_sim() -> Simulator:
    """1.5 h with an error burst, an outage and a traffic surge."""
    faults = [
        make_fault("error_burst", "catalog-service", minutes(15), minutes(35)),
        make_fault("dependency_outage", "catalog-db", minutes(45), minutes(60)),
        make_fault("traffic_surge", "api-gateway", minutes(70), minutes(85)),
    ]
    return Simulator(start=T0, hours=1.5, seed=3, faults=faults)


@cache
def faulty_spans() -> tuple[tuple[Span, ...], ...]:
    return tuple(tuple(b) for b in TraceSimulator(faulty_sim()).ticks())


def kind(span: Span) -> str:
    return span.attributes["span.kind"]


def test_doctests() -> None:
    result = doctest.testmod(trace_sim, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_deterministic_for_a_seed() -> None:
    sim = recent_simulation(4, seed=5, end=datetime(2024, 3, 6, 12, tzinfo=UTC))
    first = [b for _, b in zip(range(40), TraceSimulator(sim).ticks(), strict=False)]
    again = [b for _, b in zip(range(40), TraceSimulator(sim).ticks(), strict=False)]
    other = [b for _, b in zip(range(40), TraceSimulator(sim, seed=9).ticks(), strict=False)]
    assert first == again
    assert first != other
    assert sum(map(len, first)) > 40 * 20


def test_batches_align_with_ticks_and_validate() -> None:
    sim = faulty_sim()
    states = list(sim.states())
    batches = faulty_spans()
    assert len(batches) == len(states) == sim.n_ticks
    interval = timedelta(seconds=sim.interval_seconds)
    for st, batch in zip(states, batches, strict=True):
        for s in batch:
            if s.parent_span_id is None:  # traces start inside their tick
                assert st.ts <= s.start < st.ts + interval
    spans = [s for b in batches for s in b]
    for s in spans[::97]:
        assert Span.model_validate(s.model_dump()) == s
    assert all(kind(s) in ("server", "client") for s in spans)
    assert all((s.peer_service is not None) == (kind(s) == "client") for s in spans)
    assert len({s.span_id for s in spans}) == len(spans)


def test_rows_are_valid_spans_in_span_s_field_order() -> None:
    sim = Simulator(start=T0, hours=0.5, seed=4, faults=[])
    rows = [row for tick in TraceSimulator(sim).tick_rows() for row in tick]
    spans = [s for tick in TraceSimulator(sim).ticks() for s in tick]
    assert len(rows) == len(spans) > 100
    for row, span in zip(rows, spans, strict=True):
        assert Span.model_validate(dict(zip(Span.model_fields, row, strict=True))) == span


def test_parents_exist_in_the_same_trace_and_contain_their_children() -> None:
    spans = [s for b in faulty_spans() for s in b]
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    roots = 0
    for s in spans:
        if s.parent_span_id is None:
            roots += 1
            assert kind(s) == "server"
            continue
        parent = by_id[(s.trace_id, s.parent_span_id)]
        assert parent.start - TOL <= s.start
        end = s.start + timedelta(milliseconds=s.duration_ms)
        assert end <= parent.start + timedelta(milliseconds=parent.duration_ms) + TOL
        if kind(s) == "client":  # the caller's server span calls out
            assert kind(parent) == "server" and parent.service == s.service
        else:  # a server span answers its caller's client span
            assert kind(parent) == "client" and parent.peer_service == s.service
    assert roots > 1000


def test_edges_are_topology_edges_and_cover_it() -> None:
    sim = faulty_sim()
    calls = Counter(
        (s.service, s.peer_service) for b in faulty_spans()[:300] for s in b if s.peer_service
    )
    edges = set(sim.topology.edges)
    assert set(calls) <= edges
    assert len(set(calls)) >= 0.9 * len(edges)
    # Call counts follow the calls per request of the edges.
    per_request = dict(zip(sim.topology.edges, sim.topology.calls, strict=True))
    base = calls[("frontend", "api-gateway")]
    for edge in [("order-service", "order-db"), ("catalog-service", "catalog-cache")]:
        caller_share = sum(n for (a, b), n in calls.items() if b == edge[0]) / base
        expected = caller_share * per_request[edge] * base
        assert calls[edge] == pytest.approx(expected, rel=0.25)


def test_error_status_follows_error_rate() -> None:
    sim = faulty_sim()
    states = list(sim.states())
    burst = next(f for f in sim.faults if f.kind == "error_burst")
    rates: dict[bool, list[float]] = defaultdict(list)
    status: dict[bool, list[bool]] = defaultdict(list)
    for st, batch in zip(states, faulty_spans(), strict=True):
        active = burst in st.faults
        i = sim.topology.index(burst.service)
        rates[active].append(float(st.error_rate[i]))
        status[active] += [
            s.status == "error" for s in batch if s.service == burst.service and kind(s) == "server"
        ]
    assert len(status[True]) > 300
    during, expected = np.mean(status[True]), np.mean(rates[True])
    assert expected > 0.1
    assert during == pytest.approx(expected, abs=0.05)
    assert np.mean(status[False]) < 0.02


def test_outage_refuses_calls() -> None:
    sim = faulty_sim()
    outage = next(f for f in sim.faults if f.kind == "dependency_outage")
    to_db = defaultdict(list)
    for st, batch in zip(sim.states(), faulty_spans(), strict=True):
        for s in batch:
            if s.peer_service == outage.service:  # by the tick its trace started in
                to_db[outage in st.faults].append(s)
    refused = [s.attributes.get("error.type") == "connection_refused" for s in to_db[True]]
    assert np.mean(refused) > 0.9
    assert all(s.status == "error" for s in to_db[True] if "error.type" in s.attributes)
    assert not any("error.type" in s.attributes for s in to_db[False])


def test_surge_on_an_api_adds_traces_entering_there() -> None:
    sim = faulty_sim()
    surge = next(f for f in sim.faults if f.kind == "traffic_surge")
    entries = Counter(
        (s.service, surge.active_at(s.start))
        for b in faulty_spans()
        for s in b
        if s.parent_span_id is None
    )
    assert entries[(surge.service, True)] > entries[("frontend", True)]
    assert set(entries) <= {("frontend", False), ("frontend", True), (surge.service, True)}


def test_durations_follow_latency() -> None:
    """Leaf services' server spans have the state's median latency."""
    sim = faulty_sim()
    states = list(sim.states())[:80]
    for name in ("catalog-cache", "order-db", "user-db"):
        i = sim.topology.index(name)
        durations = [
            s.duration_ms
            for b in faulty_spans()[:80]
            for s in b
            if s.service == name and kind(s) == "server"
        ]
        median = np.median([st.latency_ms[i] for st in states])
        assert np.median(durations) == pytest.approx(median, rel=0.15)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="traces_per_tick"):
        TraceSimulator(faulty_sim(), traces_per_tick=float("nan"))
    with pytest.raises(ValueError, match="error_propagation"):
        TraceSimulator(faulty_sim(), error_propagation=2)
