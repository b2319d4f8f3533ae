"""CallGraph: the caller → callees mapping learned from dependency edges."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from airis.events import DependencyEdge
from airis.operators.incidents.call_graph import CallGraph

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def edge(caller: str, callee: str, calls: int = 1) -> DependencyEdge:
    return DependencyEdge(window_start=T0, window_end=T0, caller=caller, callee=callee,
                          calls=calls, errors=0, p50_ms=1, p95_ms=1, p99_ms=1)  # fmt: skip


def test_an_edge_counts_once_it_has_enough_calls_summed_over_windows() -> None:
    graph = CallGraph(min_calls=5)
    assert [graph.learn_one(edge("a", "b", 2)) for _ in range(3)] == [False, False, True]
    assert graph.topology() == {"a": {"b"}} and len(graph) == 1
    assert graph.learn_one(edge("a", "b", 9)) is False  # known already: not new


def test_self_calls_are_no_edges() -> None:
    graph = CallGraph(min_calls=1)
    assert graph.learn_one(edge("a", "a", 100)) is False
    assert graph.topology() == {}


def test_topology_is_a_copy() -> None:
    graph = CallGraph(min_calls=1)
    graph.learn_one(edge("a", "b"))
    graph.topology()["a"].add("zzz")
    assert graph.topology() == {"a": {"b"}}


def test_survives_a_snapshot() -> None:
    graph = CallGraph(min_calls=2)
    graph.learn_one(edge("a", "b"))
    restored = pickle.loads(pickle.dumps(graph))
    assert restored.learn_one(edge("a", "b")) is True


def test_rejects_min_calls_below_one() -> None:
    with pytest.raises(ValueError, match="min_calls"):
        CallGraph(min_calls=0)
