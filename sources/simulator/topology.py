"""The simulated system's shape: services, their roles, and who calls whom.

A `Topology` is a DAG of services from frontends through APIs and backends down to databases,
caches and queues. External traffic enters at the frontends and flows down the DAG: a callee's
rate is the sum of its callers' rates times the calls per request of each edge.
`default_topology` is the 15-service web shop the simulator uses unless given another one.

Each role (`ROLES`) also comes with ranges of typical behaviour (``ROLE_PROFILES``): the
simulator draws every service's latency, error rate, load and resources from them, and
fault propagation uses the typical latency of each role.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

__all__ = ["ROLES", "Topology", "default_topology"]

ROLES: tuple[str, ...] = ("frontend", "api", "backend", "database", "cache", "queue")

# Per role: uniform ranges of each service's profile (drawn by the simulator; the typical
# latency of a role also scales propagated fault latency).
# fmt: off
ROLE_PROFILES: dict[str, dict[str, tuple[float, float]]] = {
    "frontend": {
        "latency_ms": (80, 150), "sigma": (0.45, 0.6), "error_rate": (0.001, 0.003),
        "peak_util": (0.35, 0.5), "memory": (40, 60), "disk": (15, 30),
        "disk_per_day": (0.2, 0.5),
    },
    "api": {
        "latency_ms": (30, 80), "sigma": (0.5, 0.65), "error_rate": (0.001, 0.004),
        "peak_util": (0.35, 0.55), "memory": (35, 60), "disk": (15, 30),
        "disk_per_day": (0.2, 0.5),
    },
    "backend": {
        "latency_ms": (10, 50), "sigma": (0.5, 0.7), "error_rate": (0.001, 0.005),
        "peak_util": (0.3, 0.6), "memory": (30, 65), "disk": (15, 35),
        "disk_per_day": (0.2, 0.6),
    },
    "database": {
        "latency_ms": (2, 8), "sigma": (0.6, 0.8), "error_rate": (0.0002, 0.001),
        "peak_util": (0.35, 0.6), "memory": (55, 75), "disk": (40, 60),
        "disk_per_day": (0.8, 1.5),
    },
    "cache": {
        "latency_ms": (0.4, 1.5), "sigma": (0.4, 0.55), "error_rate": (0.0001, 0.0005),
        "peak_util": (0.2, 0.4), "memory": (50, 70), "disk": (5, 15),
        "disk_per_day": (0.05, 0.2),
    },
    "queue": {
        "latency_ms": (1, 4), "sigma": (0.45, 0.6), "error_rate": (0.0002, 0.001),
        "peak_util": (0.2, 0.4), "memory": (35, 55), "disk": (30, 50),
        "disk_per_day": (0.8, 1.5),
    },
}
# fmt: on

#: Valid service names: those `airis.events.MetricPoint` accepts.
_NAME = re.compile(r"[A-Za-z0-9_.:/-]{1,128}")


@dataclass(frozen=True)
class Topology:
    """Services, their roles and who calls whom: a DAG from frontends down to data stores.

    External traffic enters at the ``frontend`` services (split evenly) and nowhere else, so
    frontends must have no callers and every other service at least one. The request rate
    of a service is the sum over its callers of the caller's rate times the edge's calls per
    request. Lists given for the fields are turned into tuples.

    Parameters
    ----------
    services
        Service names, unique; they appear verbatim in events.
    roles
        The role of each service (one of `ROLES`), aligned with ``services``.
    edges
        ``(caller, callee)`` pairs; together they must form a DAG.
    calls
        Calls per request along each edge, aligned with ``edges``; empty means 1.0 each.

    Examples
    --------
    >>> topo = Topology(
    ...     services=("web", "api", "db"),
    ...     roles=("frontend", "api", "database"),
    ...     edges=(("web", "api"), ("api", "db")),
    ... )
    >>> topo.callers_of("db"), topo.callees_of("web")
    (('web', 'api'), ('api', 'db'))
    """

    services: tuple[str, ...]
    roles: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    calls: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "services", tuple(self.services))
        object.__setattr__(self, "roles", tuple(self.roles))
        object.__setattr__(self, "edges", tuple((str(a), str(b)) for a, b in self.edges))
        calls = tuple(float(c) for c in self.calls) or (1.0,) * len(self.edges)
        object.__setattr__(self, "calls", calls)
        self._validate()

    def _validate(self) -> None:
        if not self.services:
            raise ValueError("Topology.services: at least one service is required")
        bad_names = [s for s in self.services if not _NAME.fullmatch(str(s))]
        if bad_names:
            raise ValueError(
                f"Topology.services: {bad_names} are not valid names "
                "(1-128 of letters, digits and _.:/-)"
            )
        if len(set(self.services)) != len(self.services):
            raise ValueError(f"Topology.services: duplicate names in {self.services}")
        if len(self.roles) != len(self.services):
            raise ValueError(
                f"Topology.roles: {len(self.roles)} roles for {len(self.services)} services"
            )
        bad = sorted({r for r in self.roles if r not in ROLES})
        if bad:
            raise ValueError(f"Topology.roles: unknown roles {bad}; expected one of {ROLES}")
        if len(self.calls) != len(self.edges):
            raise ValueError(
                f"Topology.calls: {len(self.calls)} values for {len(self.edges)} edges"
            )
        if any(not (math.isfinite(c) and c > 0) for c in self.calls):
            raise ValueError("Topology.calls: calls per request must be finite and positive")
        known = set(self.services)
        for caller, callee in self.edges:
            if caller not in known or callee not in known:
                raise ValueError(
                    f"Topology.edges: ({caller!r}, {callee!r}) names an unknown service"
                )
            if caller == callee:
                raise ValueError(f"Topology.edges: {caller!r} calls itself")
        if len(set(self.edges)) != len(self.edges):
            raise ValueError("Topology.edges: duplicate edges")
        if len(self._order) != len(self.services):
            raise ValueError("Topology.edges: the call graph has a cycle")
        for service, role in zip(self.services, self.roles, strict=True):
            has_callers = bool(self.direct_callers(service))
            if role == "frontend" and has_callers:
                raise ValueError(f"Topology: frontend {service!r} must not have callers")
            if role != "frontend" and not has_callers:
                raise ValueError(f"Topology: {service!r} ({role}) has no callers, so no traffic")

    def index(self, service: str) -> int:
        """Position of ``service`` in `services` (and in every per-service array)."""
        try:
            return self._index[service]
        except KeyError:
            raise ValueError(f"unknown service {service!r}") from None

    def role(self, service: str) -> str:
        """The role of ``service``."""
        return self.roles[self.index(service)]

    def by_role(self, *roles: str) -> tuple[str, ...]:
        """The services with any of the given roles, in `services` order."""
        return tuple(s for s, r in zip(self.services, self.roles, strict=True) if r in roles)

    def direct_callers(self, service: str) -> tuple[str, ...]:
        """Services that call ``service`` directly."""
        return self._sorted(a for a, b in self.edges if b == service)

    def direct_callees(self, service: str) -> tuple[str, ...]:
        """Services that ``service`` calls directly."""
        return self._sorted(b for a, b in self.edges if a == service)

    def callers_of(self, service: str) -> tuple[str, ...]:
        """All services upstream of ``service`` (transitive callers), in `services` order."""
        return self._sorted(self._reach(service, self.direct_callers))

    def callees_of(self, service: str) -> tuple[str, ...]:
        """All services downstream of ``service`` (transitive callees), in `services` order."""
        return self._sorted(self._reach(service, self.direct_callees))

    def call_graph(self) -> dict[str, set[str]]:
        """Caller → direct callees, for every service (the form incidents and RCA take)."""
        graph: dict[str, set[str]] = {service: set() for service in self.services}
        for caller, callee in self.edges:
            graph[caller].add(callee)
        return graph

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: ``roles`` as a ``{service: role}`` map, ``edges`` as pairs."""
        return {
            "services": list(self.services),
            "roles": dict(zip(self.services, self.roles, strict=True)),
            "edges": [list(e) for e in self.edges],
            "calls": list(self.calls),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Topology:
        """Inverse of `to_dict`."""
        services = tuple(data["services"])
        roles = data["roles"]
        if isinstance(roles, Mapping):
            roles = tuple(roles[s] for s in services)
        return cls(services, tuple(roles), tuple(data["edges"]), tuple(data.get("calls", ())))

    # Derived structure, computed once (cached_property writes to __dict__, past frozen).

    @cached_property
    def _index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.services)}

    @cached_property
    def _order(self) -> tuple[int, ...]:
        """Service indices in topological order (callers first); shorter if there is a cycle."""
        index = {s: i for i, s in enumerate(self.services)}
        indegree = [0] * len(self.services)
        for _, callee in self.edges:
            indegree[index[callee]] += 1
        ready = [i for i, d in enumerate(indegree) if d == 0]
        order: list[int] = []
        while ready:
            i = ready.pop(0)
            order.append(i)
            for caller, callee in self.edges:
                if index[caller] == i:
                    indegree[index[callee]] -= 1
                    if indegree[index[callee]] == 0:
                        ready.append(index[callee])
        return tuple(order)

    @cached_property
    def _calls(self) -> np.ndarray:
        """``W[i, j]``: calls to service j per request served by service i."""
        w = np.zeros((len(self.services), len(self.services)))
        for (caller, callee), c in zip(self.edges, self.calls, strict=True):
            w[self._index[caller], self._index[callee]] = c
        return w

    @cached_property
    def _depth(self) -> int:
        """Edges on the longest path (rate propagation needs this many passes)."""
        level = [0] * len(self.services)
        for i in self._order:
            for j in np.flatnonzero(self._calls[i]):
                level[j] = max(level[j], level[i] + 1)
        return max(level)

    @cached_property
    def _entry(self) -> np.ndarray:
        """Share of the external traffic entering at each service."""
        entry = np.array([r == "frontend" for r in self.roles], dtype=float)
        return entry / entry.sum()

    @cached_property
    def _flow(self) -> np.ndarray:
        """``G[j, i]``: rate at j per unit of rate injected at i (through all paths)."""
        n = len(self.services)
        return np.linalg.inv(np.eye(n) - self._calls.T)

    @cached_property
    def _base_rates(self) -> np.ndarray:
        """Rate of each service per unit of external traffic."""
        return self._flow @ self._entry

    def _sorted(self, names: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(set(names), key=self.index))

    def _reach(self, service: str, step: Callable[[str], tuple[str, ...]]) -> set[str]:
        self.index(service)
        seen: set[str] = set()
        todo = list(step(service))
        while todo:
            s = todo.pop()
            if s not in seen:
                seen.add(s)
                todo.extend(step(s))
        return seen


def default_topology() -> Topology:
    """A 15-service web shop: frontend → 2 APIs → 6 backends → 3 databases, 2 caches, a queue.

    Examples
    --------
    >>> topo = default_topology()
    >>> len(topo.services), topo.role("order-db")
    (15, 'database')
    >>> topo.callers_of("payment-service")
    ('frontend', 'api-gateway', 'order-service')
    """
    nodes = [
        ("frontend", "frontend"),
        ("api-gateway", "api"),
        ("search-api", "api"),
        ("order-service", "backend"),
        ("cart-service", "backend"),
        ("recommendation-service", "backend"),
        ("user-service", "backend"),
        ("catalog-service", "backend"),
        ("payment-service", "backend"),
        ("user-db", "database"),
        ("catalog-db", "database"),
        ("order-db", "database"),
        ("session-cache", "cache"),
        ("catalog-cache", "cache"),
        ("order-queue", "queue"),
    ]
    edges = [
        ("frontend", "api-gateway", 1.0),
        ("frontend", "search-api", 0.35),
        ("api-gateway", "user-service", 0.6),
        ("api-gateway", "catalog-service", 0.8),
        ("api-gateway", "cart-service", 0.4),
        ("api-gateway", "order-service", 0.1),
        ("api-gateway", "recommendation-service", 0.5),
        ("search-api", "catalog-service", 1.0),
        ("search-api", "recommendation-service", 0.3),
        ("order-service", "user-service", 0.5),
        ("order-service", "payment-service", 1.0),
        ("order-service", "order-db", 2.0),
        ("order-service", "order-queue", 1.0),
        ("cart-service", "catalog-service", 0.5),
        ("cart-service", "session-cache", 1.0),
        ("recommendation-service", "catalog-cache", 2.0),
        ("recommendation-service", "user-db", 0.2),
        ("user-service", "user-db", 0.5),
        ("user-service", "session-cache", 1.0),
        ("catalog-service", "catalog-cache", 1.2),
        ("catalog-service", "catalog-db", 0.3),
        ("payment-service", "order-db", 1.0),
    ]
    return Topology(
        services=tuple(s for s, _ in nodes),
        roles=tuple(r for _, r in nodes),
        edges=tuple((a, b) for a, b, _ in edges),
        calls=tuple(c for _, _, c in edges),
    )
