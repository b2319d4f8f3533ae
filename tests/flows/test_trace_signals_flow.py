"""Traces through the metrics dataflow: RED signals detected with the metrics, edges stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from bytewax.testing import TestingSink, TestingSource, run_main

from airis.batches import unbatched
from airis.events import (
    Alert,
    Anomaly,
    DeadLetter,
    DependencyEdge,
    Incident,
    LogRecord,
    MetricPoint,
    Span,
)
from airis.flows.metrics_anomaly import build_flow
from airis.settings import Settings
from airis.signals import TRACE_SIGNALS
from airis.sources.iterable_source import simulated_traces_source, simulator_source
from airis.sources.simulator import recent_simulation
from airis.sources.simulator.traces import TraceSimulator

#: Fixed simulated hours: what the detectors see at a fault depends on the hour of day
#: (at the 04:00 hour of 2026-12-05 these faults raised no single incident / trace alert).
END = datetime(2026, 12, 5, 3, tzinfo=UTC)


@pytest.mark.slow
def test_simulated_traces_become_red_signals_edges_and_anomalies_during_faults() -> None:
    sim = recent_simulation(4, seed=2, end=END)  # a latency spike on order-db
    out: list = []
    flow = build_flow(
        simulator_source(sim), TestingSink(out), Settings(), sim.topology.call_graph(),
        traces=simulated_traces_source(sim),
    )  # fmt: skip
    run_main(flow)

    spans = [e for e in unbatched(out) if isinstance(e, Span)]
    assert len(spans) == sum(len(b) for b in TraceSimulator(sim).ticks())  # all stored
    assert not [e for e in out if isinstance(e, DeadLetter)]
    edges = [e for e in out if isinstance(e, DependencyEdge)]
    assert {(e.caller, e.callee) for e in edges} == set(sim.topology.edges)
    red = [e for e in unbatched(out) if isinstance(e, MetricPoint) and e.signal in TRACE_SIGNALS]
    assert {p.service for p in red} == set(sim.services)

    fault_windows = [(f.start, f.end, set(f.affected)) for f in sim.faults]

    def during_fault(service: str, ts) -> bool:
        return any(s <= ts <= e and service in svc for s, e, svc in fault_windows)

    trace_anomalies = [e for e in out if isinstance(e, Anomaly) and e.signal in TRACE_SIGNALS]
    assert any(during_fault(a.service, a.window_start) for a in trace_anomalies)
    # what pages someone (an alert) must be a fault
    trace_alerts = [e for e in out if isinstance(e, Alert) and e.signal in TRACE_SIGNALS]
    assert trace_alerts and all(during_fault(a.service, a.starts_at) for a in trace_alerts)


@pytest.mark.slow
def test_without_a_topology_incidents_follow_the_call_graph_learned_from_traces() -> None:
    # A latency spike on payment-service: measured, grouping and ranking by time alone give
    # another candidate order than with the call graph, so learning is visible here.
    sim = recent_simulation(4, seed=6, end=END)

    def incidents(topology) -> list[Incident]:
        out: list = []
        flow = build_flow(
            simulator_source(sim), TestingSink(out), Settings(), topology,
            traces=simulated_traces_source(sim),
        )  # fmt: skip
        run_main(flow)
        return [e for e in out if isinstance(e, Incident)]

    given = incidents(sim.topology.call_graph())
    learned = incidents(None)
    assert given and [(i.id, i.services, i.root_cause) for i in learned] == [
        (i.id, i.services, i.root_cause) for i in given
    ]
    assert [c.service for c in learned[0].candidates] == [c.service for c in given[0].candidates]


def test_late_log_lines_and_spans_are_dead_letters_with_their_reason() -> None:
    t0 = datetime(2026, 11, 20, tzinfo=UTC)

    def at(minute: float) -> datetime:
        return t0 + timedelta(minutes=minute)

    lines = [LogRecord(ts=at(m), service="api", body=f"GET /{m}") for m in (0, 1, 5, 0.5)]
    spans = [
        Span(trace_id="a" * 32, span_id=f"{i:016x}", service="api", name="GET /", start=at(m),
             duration_ms=5.0, attributes={"span.kind": "server"})
        for i, m in enumerate((0, 1, 5, 0.5))
    ]  # fmt: skip
    out: list = []
    flow = build_flow(
        TestingSource([]), TestingSink(out), Settings(),
        logs=TestingSource(lines), traces=TestingSource(spans),
    )  # fmt: skip
    run_main(flow)

    letters = [e for e in out if isinstance(e, DeadLetter)]
    assert sorted(d.source for d in letters) == ["logs", "traces"]
    assert all(d.reason == "late: its window had closed" for d in letters)
    assert {json.loads(d.payload).get("body") for d in letters} == {"GET /0.5", None}


def _two_service_spans(t0: datetime, minutes: int, failing: tuple[int, int]) -> list[Span]:
    """frontend → payments, 20 requests every 10 s; half of them fail in ``failing`` minutes.

    The issue-12 cold start, as a real OpenTelemetry Collector delivered it: traces only.
    """
    spans, n = [], 0
    for tick in range(minutes * 6):
        at = t0 + timedelta(seconds=10 * tick)
        bad_minute = failing[0] <= tick // 6 < failing[1]
        for r in range(20):
            error = bad_minute and r % 2 == 0
            trace = f"{n:032x}"
            for k, (service, kind, duration) in enumerate(
                (("frontend", "server", 40.0), ("frontend", "client", 30.0),
                 ("payments", "server", 25.0))
            ):  # fmt: skip
                spans.append(Span(
                    trace_id=trace, span_id=f"{3 * n + k:016x}", service=service, name="pay",
                    start=at + timedelta(milliseconds=r), duration_ms=duration,
                    status="error" if error else "ok",
                    peer_service="payments" if kind == "client" else None,
                    attributes={"span.kind": kind},
                ))  # fmt: skip
            n += 1
    return spans


@pytest.mark.parametrize("priors", [True, False])
def test_a_cold_start_on_traces_only_alerts_and_opens_an_incident(priors: bool) -> None:
    """30 minutes of spans of two services, no metrics; minutes 15-20 half the requests fail.
    Every detector is still warming up (a point a minute): only the priors can speak."""
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    spans = _two_service_spans(t0, 30, failing=(15, 20))
    out: list = []
    flow = build_flow(
        TestingSource([]), TestingSink(out), Settings(cold_start_priors=priors),
        traces=TestingSource(spans),
    )  # fmt: skip
    run_main(flow)
    alerts = [e for e in out if isinstance(e, Alert) and e.status == "firing"]
    incidents = [e for e in out if isinstance(e, Incident)]
    if not priors:  # what the issue saw: nothing
        assert not alerts and not incidents
        return
    fail_start, fail_end = t0 + timedelta(minutes=15), t0 + timedelta(minutes=20)
    assert {(a.service, a.signal) for a in alerts} >= {("payments", "trace_error_ratio")}
    assert all(fail_start <= a.starts_at <= fail_end for a in alerts)
    first = min(a.updated_at or a.starts_at for a in alerts)
    assert first - fail_start <= timedelta(minutes=4)
    (incident,) = incidents
    assert incident.root_cause == "payments"
