"""ServiceTraceSignals: spans → per-window RED points and dependency edges."""

from __future__ import annotations

import pickle
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airis.events import Span
from airis.operators.signals.trace_signals import (
    ServiceTraceSignals,
    TraceWindow,
    is_call,
    quantile,
)
from airis.sources.simulator import Simulator
from airis.sources.simulator.effects import make_fault
from airis.sources.simulator.traces import TraceSimulator

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def span(
    sec: float,
    ms: float = 10.0,
    *,
    status: str = "ok",
    peer: str | None = None,
    kind: str | None = "auto",
    service: str = "api",
) -> Span:
    attributes = {}
    if kind == "auto":
        kind = "client" if peer else "server"
    if kind is not None:
        attributes["span.kind"] = kind
    return Span(
        trace_id="a" * 32, span_id=f"{int(sec * 1000):016x}", service=service, name="op",
        start=T0 + timedelta(seconds=sec), duration_ms=ms, status=status, peer_service=peer,
        attributes=attributes,
    )  # fmt: skip


def values(window: TraceWindow) -> dict[str, float]:
    return {p.signal: p.value for p in window.points}


def test_red_signals_come_from_served_spans_only() -> None:
    traces = ServiceTraceSignals(window_seconds=10, lateness_seconds=0)
    spans = [span(1, 10), span(2, 30, status="error"), span(3, 20), span(4, 500, peer="db")]
    windows, _ = traces.update_many([*spans, span(10, 1)])
    [window] = windows
    assert window.start == T0 and window.service == "api"
    assert values(window) == {
        "trace_rate": 0.3,
        "trace_error_ratio": pytest.approx(1 / 3),
        "trace_p95_ms": pytest.approx(29.0),
    }
    assert all(p.ts == T0 and p.service == "api" for p in window.points)


def test_edges_count_calls_errors_and_latency_quantiles_per_callee() -> None:
    durations = [float(d) for d in range(1, 101)]
    calls = [span(i * 0.05, d, peer="db", status="error" if i < 7 else "ok")
             for i, d in enumerate(durations)]  # fmt: skip
    calls.append(span(6, 3, peer="cache"))
    windows, _ = ServiceTraceSignals(window_seconds=10).update_many([*calls, span(30, 1)])
    cache, db = windows[0].edges
    assert (cache.caller, cache.callee, cache.calls, cache.errors) == ("api", "cache", 1, 0)
    assert (db.callee, db.calls, db.errors, db.error_rate) == ("db", 100, 7, 0.07)
    expected = np.percentile(durations, [50, 95, 99])
    assert [db.p50_ms, db.p95_ms, db.p99_ms] == pytest.approx(expected)
    assert (db.window_start, db.window_end) == (T0, T0 + timedelta(seconds=10))


def test_a_window_without_served_spans_reports_only_its_rate() -> None:
    windows, _ = ServiceTraceSignals(window_seconds=10).update_many(
        [span(1, peer="db"), span(30, 1)]
    )
    assert values(windows[0]) == {"trace_rate": 0.0}
    assert len(windows[0].edges) == 1


@pytest.mark.parametrize(
    ("kind", "peer", "expected"),
    [
        ("server", None, False),
        ("consumer", None, False),
        ("client", "db", True),
        ("producer", "queue", True),
        ("client", None, False),  # a call to nobody known is no edge
        (None, "db", True),  # no kind: a peer makes it a call
        (None, None, False),
        ("internal", None, None),
    ],
)
def test_span_kinds(kind: str | None, peer: str | None, expected: bool | None) -> None:
    assert bool(is_call(span(0, peer=peer, kind=kind))) == bool(expected)
    if expected is None:
        assert is_call(span(0, peer=peer, kind=kind)) is None


def test_internal_spans_count_as_neither() -> None:
    windows, _ = ServiceTraceSignals(window_seconds=10).update_many(
        [span(1, kind="internal"), span(30, 1)]
    )
    assert values(windows[0]) == {"trace_rate": 0.0} and windows[0].edges == ()


def test_windows_wait_for_lateness_and_late_spans_are_returned() -> None:
    traces = ServiceTraceSignals(window_seconds=10, lateness_seconds=5)
    closed, late = traces.update_many([span(1), span(12)])
    assert closed == [] and late == []  # 12 < 10 + 5: the first window still waits
    closed, late = traces.update_many([span(9), span(15)])
    assert [w.start for w in closed] == [T0] and late == []
    assert values(closed[0])["trace_rate"] == 0.2  # the span at 9 s arrived in time
    closed, late = traces.update_many([span(2)])
    assert closed == [] and [s.start for s in late] == [T0 + timedelta(seconds=2)]
    [rest] = traces.close_all()
    assert rest.start == T0 + timedelta(seconds=10)


def test_rejects_nonsense_windows() -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        ServiceTraceSignals(window_seconds=0)
    with pytest.raises(ValueError, match="lateness_seconds"):
        ServiceTraceSignals(lateness_seconds=-1)


def test_state_survives_a_snapshot() -> None:
    """Bytewax pickles the state at snapshots: a restored copy must go on identically."""
    spans = [span(s * 0.7, 5 + s % 13, peer="db" if s % 3 else None) for s in range(60)]
    first, second = spans[:30], spans[30:]
    whole = ServiceTraceSignals(window_seconds=10)
    expected = whole.update_many(spans)[0] + whole.close_all()
    resumed = ServiceTraceSignals(window_seconds=10)
    got = resumed.update_many(first)[0]
    resumed = pickle.loads(pickle.dumps(resumed))
    got += resumed.update_many(second)[0] + resumed.close_all()
    assert got == expected


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=50), st.floats(0, 1))
@settings(deadline=None)
def test_quantile_matches_numpy(xs: list[float], q: float) -> None:
    assert quantile(sorted(xs), q) == pytest.approx(np.percentile(xs, q * 100), abs=1e-6)


@pytest.mark.slow
def test_simulated_traces_give_the_call_graph_and_show_an_outage_on_its_edges() -> None:
    start = datetime(2026, 1, 7, 10, tzinfo=UTC)
    outage = make_fault(
        "dependency_outage", "catalog-db", start + timedelta(hours=1),
        start + timedelta(hours=1, minutes=20),
    )  # fmt: skip
    sim = Simulator(start=start, hours=2, seed=5, faults=[outage])
    by_service: dict[str, ServiceTraceSignals] = defaultdict(ServiceTraceSignals)
    windows: list[TraceWindow] = []
    for batch in TraceSimulator(sim).ticks():
        for s in batch:
            windows += by_service[s.service].update_many([s])[0]
    for traces in by_service.values():
        windows += traces.close_all()
    edges = [e for w in windows for e in w.edges]
    assert {(e.caller, e.callee) for e in edges} == set(sim.topology.edges)

    def error_rate(during: bool) -> float:
        calls = [e for e in edges if e.callee == "catalog-db"
                 and (outage.start <= e.window_start < outage.end) == during]  # fmt: skip
        return sum(e.errors for e in calls) / sum(e.calls for e in calls)

    assert error_rate(during=True) > 0.5 > 0.05 > error_rate(during=False)
