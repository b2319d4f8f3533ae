"""Tests of the simulated topology: a layered DAG, validation, JSON round trip."""

from __future__ import annotations

import doctest
import json

import pytest

import airis.sources.simulator.topology as topology
from airis.sources.simulator.topology import ROLES, Topology, default_topology


def test_default_topology_is_a_layered_dag() -> None:
    topo = default_topology()
    assert len(topo.services) >= 12
    assert set(topo.roles) == set(ROLES)
    (frontend,) = topo.by_role("frontend")
    assert set(topo.callees_of(frontend)) == set(topo.services) - {frontend}
    for service in topo.services:
        for callee in topo.callees_of(service):
            assert service in topo.callers_of(callee)
            assert callee not in topo.callers_of(service)
    for role in ("database", "cache", "queue"):
        for service in topo.by_role(role):
            assert topo.direct_callees(service) == ()
    assert topo.direct_callers("order-db") == ("order-service", "payment-service")


@pytest.mark.parametrize(
    ("services", "roles", "edges", "match"),
    [
        (
            ("a", "b", "c"),
            ("frontend", "api", "backend"),
            [("a", "b"), ("b", "c"), ("c", "b")],
            "cycle",
        ),
        (("a", "b"), ("frontend", "api"), [("a", "x")], "unknown service"),
        (("a", "b"), ("frontend", "frontend"), [("a", "b")], "must not have callers"),
        (("a", "b"), ("frontend", "api"), [], "no callers"),
        (("a", "a"), ("frontend", "api"), [], "duplicate"),
        (("a", "b"), ("frontend", "gateway"), [("a", "b")], "unknown roles"),
    ],
)
def test_topology_rejects_invalid_graphs(services, roles, edges, match) -> None:
    with pytest.raises(ValueError, match=match):
        Topology(services, roles, tuple(edges))


def test_topology_round_trips_through_json() -> None:
    topo = default_topology()
    again = Topology.from_dict(json.loads(json.dumps(topo.to_dict())))
    assert again == topo
    assert again.callers_of("user-db") == topo.callers_of("user-db")


def test_docstring_examples() -> None:
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(topology, optionflags=flags)
    assert result.attempted >= 5 and result.failed == 0
