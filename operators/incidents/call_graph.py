"""The service call graph, learned from dependency edges as traces reveal them.

Where no topology is configured (the Kafka flow), incidents and root-cause ranking still
need to know who calls whom. `CallGraph` keeps every caller → callee pair that traces have
shown at least ``min_calls`` times, and hands it out as the ``caller → callees`` mapping the
incident grouper and the ranking take. Edges are never forgotten: a dependency that is idle
at night is still a dependency.

Examples
--------
>>> from datetime import UTC, datetime
>>> from airis.events import DependencyEdge
>>> t = datetime(2026, 1, 1, tzinfo=UTC)
>>> def edge(caller, callee, calls):
...     return DependencyEdge(window_start=t, window_end=t, caller=caller, callee=callee,
...                           calls=calls, errors=0, p50_ms=1, p95_ms=2, p99_ms=3)
>>> graph = CallGraph(min_calls=3)
>>> graph.learn_one(edge("api", "db", 5))
True
>>> graph.learn_one(edge("api", "cache", 1)), graph.learn_one(edge("api", "cache", 1))
(False, False)
>>> graph.learn_one(edge("api", "cache", 1))
True
>>> {caller: sorted(callees) for caller, callees in graph.topology().items()}
{'api': ['cache', 'db']}
"""

from __future__ import annotations

from airis.events import DependencyEdge

__all__ = ["CallGraph"]


class CallGraph:
    """Caller → callees seen in traces (see the module docstring).

    Parameters
    ----------
    min_calls
        Calls an edge needs, summed over windows, before it counts: a single stray span
        (a misattributed peer, a one-off script) does not rewire the graph.
    """

    def __init__(self, min_calls: int = 3) -> None:
        if min_calls < 1:
            raise ValueError(f"CallGraph: min_calls must be >= 1, got {min_calls!r}")
        self.min_calls = min_calls
        self._calls: dict[tuple[str, str], int] = {}
        self._graph: dict[str, set[str]] = {}

    def learn_one(self, edge: DependencyEdge) -> bool:
        """Count ``edge``'s calls; True when this makes it a new edge of the graph."""
        if edge.caller == edge.callee:
            return False
        key = (edge.caller, edge.callee)
        before = self._calls.get(key, 0)
        self._calls[key] = before + edge.calls
        if before < self.min_calls <= self._calls[key]:
            self._graph.setdefault(edge.caller, set()).add(edge.callee)
            return True
        return False

    def topology(self) -> dict[str, set[str]]:
        """Caller → callees of the edges learned so far (a copy)."""
        return {caller: set(callees) for caller, callees in self._graph.items()}

    def __len__(self) -> int:
        return sum(len(callees) for callees in self._graph.values())
