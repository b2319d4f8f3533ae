"""A seeded, deterministic microservice telemetry simulator with injected faults and ground truth.

The simulated system is a `Topology`: a DAG of services from frontends through APIs and
backends down to databases, caches and queues. Every tick (10 s of simulated time by default)
the simulator computes a `ServiceState` — the *true* load, latency, error probability and
resource usage of all services at once, vectorised with numpy — and then measures metric
events from it with noise. Logs and spans can later be sampled from the same states.

How the numbers behave:

* **Traffic** enters at the frontends: a weekday peak of ``peak_rate`` req/s shaped by
  `seasonality` (a daily curve, 20 % of peak around 04:00 UTC and 100 % around 16:00; weekends
  at 65 %), times a slow log-AR(1) wobble. It flows down the DAG: a callee's rate is the sum
  of its callers' rates times the calls per request of each edge.
* **cpu** follows utilisation (rate over a per-service capacity sized for 30–60 % at peak);
  **latency** is log-normal per service and rises mildly with utilisation, steeply past 90 %;
  **errors** are a small per-service probability, plus load shedding past 100 %.
* **memory** is flat with a gentle GC sawtooth; **disk** grows slowly (databases and queues
  about 1 %/day).
* **Noise**: request counts are Poisson, errors binomial, percentiles and resources Gaussian
  (see ``_MEASURE_NOISE``); a few harmless single-tick spikes (`Spike`) per service per day.
* **Faults** (`Fault`, eight kinds in `FAULT_KINDS`) change their root service and propagate:
  rate changes flow down the DAG, error and latency changes flow up to the callers,
  attenuated per hop and by the share of requests making the call. A fault's ``affected``
  lists the services whose metrics it visibly changes; smaller error and latency effects
  are not applied at all, smaller rate shifts (under 5 %) still flow (see ``VISIBLE_*``).

`default_schedule` draws a day of faults that covers every kind, with a quiet stretch for
measuring false alarms; `Simulator.ground_truth` returns everything as JSON-able data, and
`Simulator.from_ground_truth` rebuilds the identical run from it.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, TypeVar

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_INTERVAL_SECONDS",
    "DEFAULT_PEAK_RATE",
    "DEFAULT_SPIKES_PER_DAY",
    "DEFAULT_START",
    "FAULT_KINDS",
    "FAULT_SIGNALS",
    "ROLES",
    "SIGNALS",
    "Deploy",
    "Fault",
    "Schedule",
    "ServiceState",
    "Simulator",
    "Spike",
    "Topology",
    "default_fault_schedule",
    "default_schedule",
    "default_topology",
    "make_fault",
    "pace",
    "quiet_stretch",
    "seasonality",
]

ROLES: tuple[str, ...] = ("frontend", "api", "backend", "database", "cache", "queue")
#: Signals emitted for every service at every tick, in this order.
SIGNALS: tuple[str, ...] = (
    "request_rate",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "error_rate",
    "cpu",
    "memory",
    "disk",
)
FAULT_KINDS: tuple[str, ...] = (
    "latency_spike",
    "error_burst",
    "cpu_saturation",
    "memory_leak",
    "disk_fill",
    "traffic_surge",
    "dependency_outage",
    "bad_deploy",
)
#: The signals of the root service that each fault kind moves most clearly.
FAULT_SIGNALS: dict[str, tuple[str, ...]] = {
    "latency_spike": ("latency_p50", "latency_p95", "latency_p99"),
    "error_burst": ("error_rate",),
    "cpu_saturation": ("cpu", "latency_p50", "latency_p95", "latency_p99"),
    "memory_leak": ("memory",),
    "disk_fill": ("disk",),
    "traffic_surge": ("request_rate", "cpu"),
    "dependency_outage": ("request_rate", "error_rate", "cpu"),
    "bad_deploy": ("error_rate", "latency_p50", "latency_p95", "latency_p99"),
}

DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
DEFAULT_HOURS = 24.0
DEFAULT_INTERVAL_SECONDS = 10.0
#: External requests per second into the frontends at the weekday peak.
DEFAULT_PEAK_RATE = 400.0
#: Mean number of harmless single-tick spikes per service per simulated day.
DEFAULT_SPIKES_PER_DAY = 3.0

#: Schedule rules: no fault before the warm-up ends; at least MIN_GAP between faults and
#: after the last one; one fault-free stretch of QUIET (less for runs under 10 h).
WARMUP = timedelta(hours=2)
MIN_GAP = timedelta(minutes=30)
QUIET = timedelta(hours=2)
MIN_SCHEDULE_HOURS = 4.0

#: A propagated effect is applied (and its service listed in ``affected``) only if it is at
#: least this large: added error ratio, added latency fraction, relative request-rate change.
VISIBLE_ERROR_RATE = 0.02
VISIBLE_LATENCY = 0.3
VISIBLE_RATE_CHANGE = 0.05

# Independent random streams, so that e.g. adding log generation later cannot change metrics.
_STREAM_PROFILE, _STREAM_PROCESS, _STREAM_MEASURE, _STREAM_SPIKES, _STREAM_SCHEDULE = range(5)

# Daily curve: NIGHT of peak at TROUGH_HOUR (UTC), peak twelve hours later.
_NIGHT = 0.2
_TROUGH_HOUR = 4.0
_DAY_SHAPE = 1.5
# Weekly curve: Saturday and Sunday at WEEKEND of a weekday, with smooth RAMP_DAYS transitions.
_WEEKEND = 0.65
_RAMP_DAYS = 0.25

# Slow process noise: (stationary relative sd, correlation time in seconds) of log-AR(1)s.
_TRAFFIC_WOBBLE = (0.03, 300.0)
_LOAD_WOBBLE = (0.02, 60.0)
_LATENCY_WOBBLE = (0.03, 60.0)
# Measurement noise: relative sd of p50 and of the p95/p50 and p99/p95 gaps; absolute sd in
# percentage points of cpu, memory and disk.
_MEASURE_NOISE = {
    "latency_p50": 0.03,
    "latency_p95": 0.04,
    "latency_p99": 0.06,
    "cpu": 1.5,
    "memory": 0.3,
    "disk": 0.05,
}
# Standard normal quantiles of the log-normal latency model.
_Z95 = 1.6449
_Z99 = 2.3263
# cpu = idle + (CPU_FULL - idle) * utilisation, capped at CPU_MAX; latency factor from load.
_CPU_FULL = 95.0
_CPU_MAX = 99.0
_LOAD_LATENCY = (0.3, 0.9, 4.0)  # 1 + a * u**2 + c * max(0, u - knee)**2
_SHED_ERRORS = 0.15  # added error ratio per unit of utilisation above 1

# Per role: uniform ranges of each service's profile.
# fmt: off
_ROLE_PROFILES: dict[str, dict[str, tuple[float, float]]] = {
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
#: Typical median latency of each role, to turn propagated milliseconds into factors.
_NOMINAL_LATENCY_MS = {role: sum(p["latency_ms"]) / 2 for role, p in _ROLE_PROFILES.items()}
_COMMON_PROFILE: dict[str, tuple[float, float]] = {
    "cpu_idle": (2.0, 8.0),
    "gc_amplitude": (0.3, 0.8),  # percentage points of memory (about 1-3 noise sigmas)
    "gc_period": (900.0, 3600.0),  # seconds
}

# Fault kinds: which roles may be the root, duration range in minutes, parameter ranges
# (drawn uniformly by `default_schedule`; `make_fault` uses the midpoint) and fixed parameters.
_ROOT_ROLES: dict[str, tuple[str, ...]] = {
    "latency_spike": ("backend", "database", "cache"),
    "error_burst": ("api", "backend"),
    "cpu_saturation": ("api", "backend", "database"),
    "memory_leak": ("api", "backend"),
    "disk_fill": ("database", "queue"),
    "traffic_surge": ("frontend", "api"),
    "dependency_outage": ("database", "cache", "queue"),
    "bad_deploy": ("api", "backend"),
}
_DURATION_MINUTES: dict[str, tuple[int, int]] = {
    kind: (45, 60) if kind in ("memory_leak", "disk_fill") else (10, 60) for kind in FAULT_KINDS
}
_PARAM_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "latency_spike": {"latency_factor": (4.0, 8.0)},
    "error_burst": {"error_rate": (0.1, 0.3)},
    "cpu_saturation": {"cpu": (94.0, 98.0), "latency_factor": (2.0, 3.0)},
    "memory_leak": {"target": (92.0, 96.0)},
    "disk_fill": {"target": (92.0, 97.0)},
    "traffic_surge": {"rate_factor": (2.5, 4.0)},
    "dependency_outage": {
        "served_fraction": (0.02, 0.06),
        "error_rate": (0.9, 0.99),
        "caller_error_rate": (0.25, 0.4),
        "caller_latency_factor": (2.0, 3.5),
    },
    "bad_deploy": {"error_rate": (0.05, 0.15), "latency_factor": (1.3, 1.8)},
}
_FIXED_PARAMS: dict[str, dict[str, float]] = {
    "latency_spike": {"attenuation": 0.5},
    "error_burst": {"attenuation": 0.3},
    "cpu_saturation": {"attenuation": 0.4},
    "memory_leak": {},
    "disk_fill": {},
    "traffic_surge": {},
    "dependency_outage": {"attenuation": 0.4},
    "bad_deploy": {"attenuation": 0.3},
}

# Harmless spikes: magnitude ranges (multiplier for traffic and latency, added error ratio,
# added cpu points), closest allowed spacing on one service, distance kept from faults.
_SPIKE_KINDS: dict[str, tuple[float, float]] = {
    "traffic": (1.8, 2.5),
    "latency": (2.5, 4.0),
    "errors": (0.05, 0.15),
    "cpu": (25.0, 40.0),
}
_SPIKE_SIGNALS: dict[str, tuple[str, ...]] = {
    "traffic": ("request_rate", "cpu"),
    "latency": ("latency_p50", "latency_p95", "latency_p99"),
    "errors": ("error_rate",),
    "cpu": ("cpu",),
}
_SPIKE_SPACING = timedelta(minutes=5)
_SPIKE_FAULT_MARGIN = timedelta(minutes=5)
_DEPLOYS_PER_DAY = 3

_T = TypeVar("_T")
#: Valid service names: those `airis.events.MetricPoint` accepts.
_NAME = re.compile(r"[A-Za-z0-9_.:/-]{1,128}")


# --------------------------------------------------------------------------------------------
# Topology


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


# --------------------------------------------------------------------------------------------
# Records: faults, deploys, spikes, schedules


def _utc(ts: datetime, name: str) -> datetime:
    if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {ts!r}")
    return ts.astimezone(UTC)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_ts(value: str | datetime, name: str) -> datetime:
    return _utc(value if isinstance(value, datetime) else datetime.fromisoformat(value), name)


@dataclass(frozen=True)
class Fault:
    """One injected fault and its ground truth: root cause, time span, affected services.

    The fault is active at ticks with ``start <= ts < end``. ``affected`` starts with the
    root ``service`` and lists every service whose metrics it visibly changes; build faults
    with `make_fault` (or `default_schedule`) so that it matches what the simulator does.

    Parameters
    ----------
    id
        Unique id within a run, e.g. ``"f03-memory_leak"``.
    kind
        One of `FAULT_KINDS`.
    service
        The root cause.
    start
        First instant of the fault (timezone-aware; stored in UTC).
    end
        First instant after the fault (the fix, restart or rollback).
    affected
        The root first, then the services it propagates to, in topology order.
    params
        Magnitudes of the effect (see `make_fault`); JSON-able scalars only.
    """

    id: str
    kind: str
    service: str
    start: datetime
    end: datetime
    affected: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"Fault.kind: unknown kind {self.kind!r}; expected one of {FAULT_KINDS}"
            )
        object.__setattr__(self, "start", _utc(self.start, "Fault.start"))
        object.__setattr__(self, "end", _utc(self.end, "Fault.end"))
        object.__setattr__(self, "affected", tuple(self.affected))
        object.__setattr__(self, "params", dict(self.params))
        if self.end <= self.start:
            raise ValueError(f"Fault {self.id}: end {self.end} is not after start {self.start}")
        if not self.affected or self.affected[0] != self.service:
            raise ValueError(f"Fault {self.id}: affected must start with the root {self.service!r}")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def active_at(self, ts: datetime) -> bool:
        """Whether the fault is active at ``ts``."""
        return self.start <= ts < self.end

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (timestamps as ISO 8601 strings ending in ``Z``)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "service": self.service,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "affected": list(self.affected),
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Inverse of `to_dict`."""
        return cls(
            id=data["id"],
            kind=data["kind"],
            service=data["service"],
            start=_parse_ts(data["start"], "Fault.start"),
            end=_parse_ts(data["end"], "Fault.end"),
            affected=tuple(data["affected"]),
            params=dict(data.get("params", {})),
        )


@dataclass(frozen=True)
class Deploy:
    """A change event: ``service`` started running ``version`` at ``ts``.

    ``faulty`` marks the deploy that starts a ``bad_deploy`` fault; its rollback at the end
    of the fault is a second, non-faulty deploy of the previous version. Deploys themselves
    change no metric.
    """

    ts: datetime
    service: str
    version: str
    faulty: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", _utc(self.ts, "Deploy.ts"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "ts": _iso(self.ts),
            "service": self.service,
            "version": self.version,
            "faulty": self.faulty,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deploy:
        """Inverse of `to_dict`."""
        return cls(
            _parse_ts(data["ts"], "Deploy.ts"),
            data["service"],
            data["version"],
            bool(data.get("faulty", False)),
        )


@dataclass(frozen=True)
class Spike:
    """A harmless single-tick blip on one service: not a fault, must not raise an alert.

    ``kind`` is ``traffic`` (request rate × ``magnitude``, cpu follows), ``latency`` (all
    percentiles × ``magnitude``), ``errors`` (+``magnitude`` error ratio) or ``cpu``
    (+``magnitude`` points).
    """

    ts: datetime
    service: str
    kind: str
    magnitude: float

    @property
    def signals(self) -> tuple[str, ...]:
        """The signals this spike moves."""
        return _SPIKE_SIGNALS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "ts": _iso(self.ts),
            "service": self.service,
            "kind": self.kind,
            "magnitude": self.magnitude,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Spike:
        """Inverse of `to_dict`."""
        return cls(
            _parse_ts(data["ts"], "Spike.ts"),
            data["service"],
            data["kind"],
            float(data["magnitude"]),
        )


@dataclass(frozen=True)
class Schedule:
    """What `default_schedule` plans: faults in time order, the quiet stretch, the deploys."""

    faults: tuple[Fault, ...]
    quiet: tuple[datetime, datetime] | None
    deploys: tuple[Deploy, ...] = ()


def make_fault(
    kind: str,
    service: str,
    start: datetime,
    end: datetime,
    *,
    topology: Topology | None = None,
    params: Mapping[str, Any] | None = None,
    id: str | None = None,
) -> Fault:
    """A `Fault` whose ``affected`` is computed from its kind, parameters and the topology.

    Parameters not given take the middle of their usual range:

    * ``latency_spike``: ``latency_factor`` (×4–8 on the root's latency);
    * ``error_burst``: ``error_rate`` (0.1–0.3 added to the root's error ratio);
    * ``cpu_saturation``: ``cpu`` (94–98 %), ``latency_factor`` (×2–3);
    * ``memory_leak``, ``disk_fill``: ``target`` percent reached at the end (92–97), a linear
      ramp from the normal level; back to normal when the fault ends;
    * ``traffic_surge``: ``rate_factor`` (×2.5–4 on the root's request rate, flows down);
    * ``dependency_outage``: ``served_fraction`` of requests still reaching the root
      (0.02–0.06), its ``error_rate`` (0.9–0.99), and the ``caller_error_rate`` (0.25–0.4)
      and ``caller_latency_factor`` (×2–3.5) of direct callers;
    * ``bad_deploy``: ``error_rate`` (0.05–0.15 added), ``latency_factor`` (×1.3–1.8),
      plus ``version``/``previous_version`` strings for the deploy and rollback events.

    Effects reach the callers of the root: an added error ratio, and added milliseconds of
    median latency (the root's extra latency, or for an outage the callers' timeouts). Each
    further hop multiplies them by ``attenuation`` (0.3–0.5, by kind), each edge by its calls
    per request capped at 1. A caller is affected only where the result is visible: at least
    `VISIBLE_ERROR_RATE` added errors, or `VISIBLE_LATENCY` of its typical latency. Rate
    changes (surge, outage) flow down to the callees.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> f = make_fault("dependency_outage", "session-cache",
    ...                datetime(2024, 1, 1, 3, tzinfo=UTC), datetime(2024, 1, 1, 3, 20, tzinfo=UTC))
    >>> f.affected
    ('session-cache', 'frontend', 'api-gateway', 'order-service', 'cart-service', 'user-service')
    """
    topo = topology or default_topology()
    if kind not in FAULT_KINDS:
        raise ValueError(f"make_fault: unknown kind {kind!r}; expected one of {FAULT_KINDS}")
    topo.index(service)
    merged = _full_params(kind, params or {})
    effect = _effect_arrays(kind, service, merged, topo)
    affected = _affected(service, effect, topo)
    start = _utc(start, "start")
    return Fault(
        id=id or f"{kind}-{service}-{start:%Y%m%dT%H%M%S}",
        kind=kind,
        service=service,
        start=start,
        end=end,
        affected=affected,
        params=merged,
    )


def _full_params(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {
        k: round((lo + hi) / 2, 4) for k, (lo, hi) in _PARAM_RANGES[kind].items()
    }
    merged.update(_FIXED_PARAMS[kind])
    merged.update(params)
    return merged


# --------------------------------------------------------------------------------------------
# Fault effects


@dataclass(frozen=True)
class _Effect:
    """What one fault does to the per-service arrays while it is active."""

    root: int
    rate: np.ndarray  # multiplier on a service's own rate (flows downstream)
    latency: np.ndarray  # multiplier on median latency
    error_add: np.ndarray  # added error ratio
    error_floor: np.ndarray  # error ratio at least this
    cpu_floor: np.ndarray  # cpu at least this
    memory_target: float | None
    disk_target: float | None


def _effect_arrays(kind: str, service: str, p: Mapping[str, Any], topo: Topology) -> _Effect:
    n = len(topo.services)
    r = topo.index(service)
    rate, latency = np.ones(n), np.ones(n)
    error_add, error_floor, cpu_floor = np.zeros(n), np.zeros(n), np.zeros(n)
    memory_target = disk_target = None
    nominal = np.array([_NOMINAL_LATENCY_MS[role] for role in topo.roles])
    attenuation = float(p.get("attenuation", 0.0))

    def errors_up(at_caller: float) -> np.ndarray:
        added = _propagate_up(topo, r, np.full(n, at_caller), attenuation)
        return np.where(added >= VISIBLE_ERROR_RATE, added, 0.0)

    def latency_up(at_caller_ms: np.ndarray | float) -> np.ndarray:
        added_ms = _propagate_up(topo, r, np.broadcast_to(at_caller_ms, (n,)), attenuation)
        return np.where(added_ms >= VISIBLE_LATENCY * nominal, added_ms / nominal, 0.0)

    def slowdown(factor: float) -> np.ndarray:
        """Latency factors of the root and, through the added milliseconds, its callers."""
        factors = 1 + latency_up((factor - 1) * nominal[r] * attenuation)
        factors[r] = factor
        return factors

    if kind == "latency_spike":
        latency = slowdown(p["latency_factor"])
    elif kind == "error_burst":
        error_add = errors_up(p["error_rate"] * attenuation)
        error_add[r] = p["error_rate"]
    elif kind == "cpu_saturation":
        cpu_floor[r] = p["cpu"]
        latency = slowdown(p["latency_factor"])
    elif kind == "memory_leak":
        memory_target = float(p["target"])
    elif kind == "disk_fill":
        disk_target = float(p["target"])
    elif kind == "traffic_surge":
        rate[r] = p["rate_factor"]
    elif kind == "dependency_outage":
        rate[r] = p["served_fraction"]
        error_floor[r] = p["error_rate"]
        # Direct callers fail and wait for timeouts; their callers see part of it.
        error_add = errors_up(p["caller_error_rate"])
        latency = 1 + latency_up((p["caller_latency_factor"] - 1) * nominal)
    elif kind == "bad_deploy":
        error_add = errors_up(p["error_rate"] * attenuation)
        error_add[r] = p["error_rate"]
        latency = slowdown(p["latency_factor"])
    return _Effect(r, rate, latency, error_add, error_floor, cpu_floor, memory_target, disk_target)


def _propagate_up(
    topo: Topology, root: int, at_callers: np.ndarray, attenuation: float
) -> np.ndarray:
    """Effect reaching each service upstream of ``root``.

    A direct caller ``i`` gets ``at_callers[i]``, a caller further up gets its callee's effect
    times ``attenuation``; each edge also scales it by its calls per request (capped at 1,
    the share of requests that make the call). The strongest path counts.
    """
    w = np.minimum(topo._calls, 1.0)
    effect = np.zeros(len(topo.services))
    for i in reversed(topo._order):  # callees before callers
        if i == root:
            continue
        best = at_callers[i] * w[i, root]
        for k in np.flatnonzero(effect):
            best = max(best, effect[k] * attenuation * w[i, k])
        effect[i] = best
    return effect


def _affected(service: str, effect: _Effect, topo: Topology) -> tuple[str, ...]:
    r = effect.root
    visible = (
        (effect.latency != 1.0)
        | (effect.error_add > 0)
        | (effect.error_floor > 0)
        | (effect.cpu_floor > 0)
    )
    change = abs(effect.rate[r] - 1.0)
    if change > 0:
        rates = topo._base_rates
        share = topo._flow[:, r] * rates[r] / rates  # part of each rate that passes the root
        visible |= share * change >= VISIBLE_RATE_CHANGE
    names = [topo.services[i] for i in np.flatnonzero(visible) if i != r]
    return (service, *names)


def _scheduled_effect(
    fault: Fault, topo: Topology, start: datetime, interval: float
) -> tuple[Fault, int, int, _Effect]:
    """The fault, its first tick, the first tick after it, and its effect."""
    effect = _effect_arrays(fault.kind, fault.service, _full_params(fault.kind, fault.params), topo)
    expected = _affected(fault.service, effect, topo)
    if set(expected) != set(fault.affected):
        logger.warning(
            "fault %s lists affected %s but its effects reach %s; build faults with make_fault",
            fault.id,
            fault.affected,
            expected,
        )
    first = math.ceil((fault.start - start).total_seconds() / interval - 1e-9)
    stop = math.ceil((fault.end - start).total_seconds() / interval - 1e-9)
    return fault, first, stop, effect


# --------------------------------------------------------------------------------------------
# Schedules


def default_schedule(
    start: datetime = DEFAULT_START,
    hours: float = DEFAULT_HOURS,
    seed: int = 0,
    topology: Topology | None = None,
) -> Schedule:
    """Faults covering every kind, a quiet stretch and a few deploys, drawn from ``seed``.

    The layout follows the rules the detectors are scored by: nothing during the first 2 h
    (`WARMUP`), at least 30 min (`MIN_GAP`) between faults and after the last one, each fault
    10–60 min (``memory_leak`` and ``disk_fill`` 45–60 min), and one stretch of at least 2 h
    (`QUIET`; (hours − 2) / 4 for runs under 10 h) that is at least 30 min away from any
    fault. A day holds one fault of each of the eight kinds in random order, on varied root
    services; longer runs hold 8 per day, shorter ones fewer. About three harmless deploys
    per day go to services that have no fault within 30 min; each ``bad_deploy`` adds its
    faulty deploy at the start and a rollback at the end.

    Parameters
    ----------
    start
        Start of the run (timezone-aware).
    hours
        Length of the run; at least 4.
    seed
        Seed of the draw; the same arguments give the same schedule.
    topology
        The services to break; `default_topology` when omitted.

    Examples
    --------
    >>> s = default_schedule(hours=24, seed=1)
    >>> sorted({f.kind for f in s.faults}) == sorted(FAULT_KINDS)
    True
    >>> s.quiet[1] - s.quiet[0] >= QUIET
    True
    """
    start = _utc(start, "start")
    if not hours >= MIN_SCHEDULE_HOURS:
        raise ValueError(
            f"default_schedule: hours={hours} is too short; a fault schedule needs at least "
            f"{MIN_SCHEDULE_HOURS:g} h (2 h warm-up, faults, a quiet stretch). "
            "Pass faults=[] to Simulator for a fault-free run."
        )
    _check_seed(seed)
    topo = topology or default_topology()
    rng = _rng(seed, _STREAM_SCHEDULE)
    total = math.floor(hours * 60)  # minutes
    warmup, gap = _minutes(WARMUP), _minutes(MIN_GAP)
    quiet_len = min(_minutes(QUIET), math.floor((total - warmup) / 4))

    kinds = [k for k in _kind_cycle(rng, max(8, round(8 * hours / 24))) if _eligible(k, topo)]
    while True:
        # warm-up, faults with gaps, tail, and one gap widened by the quiet stretch + margin
        fixed = warmup + len(kinds) * gap + quiet_len + gap
        lows = [_DURATION_MINUTES[k][0] for k in kinds]
        if kinds and fixed + sum(lows) <= total:
            break
        if not kinds:
            raise ValueError(f"default_schedule: no fault fits into {hours} h")
        longest = max(lows)
        del kinds[len(lows) - 1 - lows[::-1].index(longest)]

    durations = [int(rng.integers(lo, hi + 1)) for lo, hi in map(_DURATION_MINUTES.get, kinds)]
    excess = fixed + sum(durations) - total
    if excess > 0:  # shrink towards the minimum durations
        room = sum(d - lo for d, lo in zip(durations, lows, strict=True))
        durations = [
            lo + math.floor((d - lo) * (1 - excess / room))
            for d, lo in zip(durations, lows, strict=True)
        ]
    slack = total - fixed - sum(durations)
    extra = np.floor(slack * rng.dirichlet(np.ones(len(kinds) + 1))).astype(int).tolist()
    quiet_slot = int(rng.integers(0, len(kinds)))

    used: set[str] = set()
    plan: list[tuple[str, str, datetime, datetime, dict[str, Any]]] = []
    quiet = None
    t = warmup + extra[0]
    for k, (kind, minutes) in enumerate(zip(kinds, durations, strict=True)):
        service = _pick_root(kind, topo, used, rng)
        lo_hi = _PARAM_RANGES[kind]
        params = {name: round(float(rng.uniform(lo, hi)), 3) for name, (lo, hi) in lo_hi.items()}
        f_start, f_end = start + timedelta(minutes=t), start + timedelta(minutes=t + minutes)
        plan.append((kind, service, f_start, f_end, params))
        t += minutes + gap + extra[k + 1]
        if k == quiet_slot:
            quiet_end = t + quiet_len
            quiet = (f_end + MIN_GAP, start + timedelta(minutes=quiet_end))
            t = quiet_end + gap

    faults = [
        make_fault(
            kind, service, f_start, f_end, topology=topo, params=params, id=f"f{k + 1:02d}-{kind}"
        )
        for k, (kind, service, f_start, f_end, params) in enumerate(plan)
    ]
    deploys, versions = _plan_deploys(faults, topo, start, hours, rng)
    for k, extra_params in versions.items():
        faults[k] = replace(faults[k], params={**faults[k].params, **extra_params})
    return Schedule(tuple(faults), quiet, deploys)


def default_fault_schedule(
    start: datetime = DEFAULT_START,
    hours: float = DEFAULT_HOURS,
    seed: int = 0,
    topology: Topology | None = None,
) -> list[Fault]:
    """The faults of `default_schedule` (same arguments), in time order."""
    return list(default_schedule(start, hours, seed, topology).faults)


def quiet_stretch(
    faults: Iterable[Fault],
    start: datetime,
    end: datetime,
    *,
    warmup: timedelta = WARMUP,
    margin: timedelta = MIN_GAP,
) -> tuple[datetime, datetime] | None:
    """The longest stretch after the warm-up that is at least ``margin`` from every fault.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> t0 = datetime(2024, 1, 1, tzinfo=UTC)
    >>> f = make_fault("error_burst", "cart-service", t0 + timedelta(hours=5),
    ...                t0 + timedelta(hours=5, minutes=20))
    >>> [ts.hour for ts in quiet_stretch([f], t0, t0 + timedelta(hours=8))]
    [2, 4]
    """
    lo = _utc(start, "start") + warmup
    hi = _utc(end, "end")
    spans = sorted((f.start - margin, f.end + margin) for f in faults)
    best: tuple[datetime, datetime] | None = None
    cursor = lo
    for s, e in [*spans, (hi, hi)]:
        s = min(s, hi)
        if s > cursor and (best is None or s - cursor > best[1] - best[0]):
            best = (cursor, s)
        cursor = max(cursor, e)
    return best


def _minutes(td: timedelta) -> int:
    return int(td.total_seconds() // 60)


def _kind_cycle(rng: np.random.Generator, n: int) -> list[str]:
    kinds: list[str] = []
    while len(kinds) < n:
        kinds.extend(FAULT_KINDS[i] for i in rng.permutation(len(FAULT_KINDS)))
    return kinds[:n]


def _eligible(kind: str, topo: Topology) -> bool:
    if topo.by_role(*_ROOT_ROLES[kind]):
        return True
    logger.warning("topology has no %s service to host %s; skipped", _ROOT_ROLES[kind], kind)
    return False


def _pick_root(kind: str, topo: Topology, used: set[str], rng: np.random.Generator) -> str:
    eligible = topo.by_role(*_ROOT_ROLES[kind])
    fresh = [s for s in eligible if s not in used] or list(eligible)
    service = fresh[int(rng.integers(0, len(fresh)))]
    used.add(service)
    return service


def _plan_deploys(
    faults: Sequence[Fault],
    topo: Topology,
    start: datetime,
    hours: float,
    rng: np.random.Generator,
) -> tuple[tuple[Deploy, ...], dict[int, dict[str, str]]]:
    """Harmless deploys plus each bad deploy and its rollback, with consistent versions.

    Harmless deploys keep 30 min away from any fault that affects their service. Returns the
    deploys and, per index of a ``bad_deploy`` fault, its ``version``/``previous_version``.
    """
    end = start + timedelta(hours=hours)
    candidates = topo.by_role("frontend", "api", "backend")
    # (ts, order, service, kind, fault index): kind is "harmless", "bad" or "rollback"
    events: list[tuple[datetime, int, str, str, int]] = []
    for k, f in enumerate(faults):
        if f.kind == "bad_deploy":
            events += [(f.start, 1, f.service, "bad", k), (f.end, 0, f.service, "rollback", k)]
    wanted = max(1, round(_DEPLOYS_PER_DAY * hours / 24))
    for _ in range(wanted):
        for _attempt in range(100):
            service = candidates[int(rng.integers(0, len(candidates)))]
            minute = int(rng.integers(_minutes(MIN_GAP), math.floor(hours * 60) - 30))
            ts = start + timedelta(minutes=minute)
            near_fault = any(
                service in f.affected and f.start - MIN_GAP <= ts <= f.end + MIN_GAP for f in faults
            )
            if not near_fault and ts < end:
                events.append((ts, 2, service, "harmless", -1))
                break
    current = {s: (1, int(rng.integers(0, 20)), int(rng.integers(0, 10))) for s in topo.services}
    history: dict[str, list[tuple[int, int, int]]] = {}
    versions: dict[int, dict[str, str]] = {}
    deploys: list[Deploy] = []
    for ts, _, service, kind, k in sorted(events):
        major, minor, patch = current[service]
        if kind == "harmless":
            current[service] = (major, minor, patch + 1)
        elif kind == "bad":
            history.setdefault(service, []).append(current[service])
            current[service] = (major, minor + 1, 0)
            versions[k] = {
                "version": _v(current[service]),
                "previous_version": _v((major, minor, patch)),
            }
        else:
            current[service] = history[service].pop()
        deploys.append(Deploy(ts, service, _v(current[service]), faulty=kind == "bad"))
    return tuple(deploys), versions


def _v(version: tuple[int, int, int]) -> str:
    return "v{}.{}.{}".format(*version)


def _deploys_of(faults: Iterable[Fault]) -> tuple[Deploy, ...]:
    """The deploy and rollback events implied by the ``bad_deploy`` faults."""
    deploys = []
    for f in faults:
        if f.kind == "bad_deploy":
            version = str(f.params.get("version", "v2.0.0"))
            previous = str(f.params.get("previous_version", "v1.0.0"))
            deploys += [
                Deploy(f.start, f.service, version, True),
                Deploy(f.end, f.service, previous),
            ]
    return tuple(sorted(deploys, key=lambda d: d.ts))


# --------------------------------------------------------------------------------------------
# Seasonality and per-service profiles


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


def seasonality(ts: datetime) -> float:
    """Expected external traffic at ``ts`` as a fraction of the weekday peak (UTC clock).

    Daily: 0.2 at 04:00, 1.0 at 16:00, a smooth curve in between. Weekly: Saturday and
    Sunday at 0.65 of a weekday, with 6 h transitions centred on midnight.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> round(seasonality(datetime(2024, 1, 3, 16, tzinfo=UTC)), 3)  # Wednesday afternoon
    1.0
    >>> round(seasonality(datetime(2024, 1, 6, 4, tzinfo=UTC)), 3)  # Saturday night
    0.13
    """
    ts = ts.astimezone(UTC)
    hour = ts.hour + ts.minute / 60 + ts.second / 3600
    day = (
        _NIGHT
        + (1 - _NIGHT)
        * ((1 - math.cos(2 * math.pi * (hour - _TROUGH_HOUR) / 24)) / 2) ** _DAY_SHAPE
    )
    e = (ts.weekday() + hour / 24 - 5 + _RAMP_DAYS / 2) % 7  # days since the weekend ramp began
    weekend = _smoothstep(e / _RAMP_DAYS) * _smoothstep((2 + _RAMP_DAYS - e) / _RAMP_DAYS)
    return day * (1 - (1 - _WEEKEND) * weekend)


@dataclass(frozen=True)
class _Profile:
    """Per-service constants of one run, arrays aligned with the topology's services."""

    latency_ms: np.ndarray
    sigma: np.ndarray
    error_rate: np.ndarray
    capacity: np.ndarray  # req/s at 100 % utilisation
    cpu_idle: np.ndarray
    memory: np.ndarray
    gc_amplitude: np.ndarray
    gc_period: np.ndarray
    gc_phase: np.ndarray  # seconds
    disk: np.ndarray
    disk_per_day: np.ndarray


def _profile(topo: Topology, seed: int, peak_rate: float) -> _Profile:
    rng = _rng(seed, _STREAM_PROFILE)
    cols: dict[str, list[float]] = {}
    for role in topo.roles:
        ranges = {**_ROLE_PROFILES[role], **_COMMON_PROFILE}
        for name, (lo, hi) in ranges.items():
            cols.setdefault(name, []).append(float(rng.uniform(lo, hi)))
    a = {k: np.array(v) for k, v in cols.items()}
    capacity = topo._base_rates * peak_rate / a["peak_util"]
    return _Profile(
        latency_ms=a["latency_ms"],
        sigma=a["sigma"],
        error_rate=a["error_rate"],
        capacity=capacity,
        cpu_idle=a["cpu_idle"],
        memory=a["memory"],
        gc_amplitude=a["gc_amplitude"],
        gc_period=a["gc_period"],
        gc_phase=rng.uniform(0, 1, len(topo.services)) * a["gc_period"],
        disk=a["disk"],
        disk_per_day=a["disk_per_day"],
    )


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([stream, seed])


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _ar1(sd: float, tau: float, interval: float) -> tuple[float, float]:
    """(phi, innovation sd) of an AR(1) with stationary ``sd`` and correlation time ``tau``."""
    phi = math.exp(-interval / tau)
    return phi, sd * math.sqrt(1 - phi * phi)


def _draw_spikes(
    topo: Topology,
    start: datetime,
    n_ticks: int,
    interval: float,
    seed: int,
    per_day: float,
    faults: Sequence[Fault],
) -> tuple[Spike, ...]:
    rng = _rng(seed, _STREAM_SPIKES)
    kinds = tuple(_SPIKE_KINDS)
    spacing = max(3, math.ceil(_SPIKE_SPACING.total_seconds() / interval))
    days = n_ticks * interval / 86400
    spikes: list[Spike] = []
    for service in topo.services:
        count = int(rng.poisson(per_day * days))
        ticks = np.sort(rng.integers(1, max(2, n_ticks - 1), count))
        which = rng.integers(0, len(kinds), count)
        unit = rng.uniform(0, 1, count)
        last = -spacing
        for tick, w, u in zip(ticks.tolist(), which.tolist(), unit.tolist(), strict=True):
            ts = start + timedelta(seconds=tick * interval)
            in_fault = any(
                service in f.affected
                and f.start - _SPIKE_FAULT_MARGIN <= ts < f.end + _SPIKE_FAULT_MARGIN
                for f in faults
            )
            if tick - last < spacing or in_fault or tick >= n_ticks - 1:
                continue
            lo, hi = _SPIKE_KINDS[kinds[w]]
            spikes.append(Spike(ts, service, kinds[w], round(lo + (hi - lo) * u, 3)))
            last = tick
    return tuple(sorted(spikes, key=lambda s: (s.ts, topo.index(s.service))))


# --------------------------------------------------------------------------------------------
# The simulator


@dataclass(frozen=True)
class ServiceState:
    """The true state of every service at one tick, before measurement noise.

    Arrays are aligned with ``Topology.services``; treat them as read-only. Metrics are
    measured from these values (`Simulator.ticks`); logs and spans can be sampled from
    the same state: a request to service ``i`` fails with probability ``error_rate[i]`` and
    takes ``latency_ms[i] * exp(sigma[i] * z)`` ms for a standard normal ``z``.

    Parameters
    ----------
    tick
        Index of the tick from the start of the run.
    ts
        Timestamp of the tick (UTC).
    request_rate
        Requests per second served.
    latency_ms
        Median latency in milliseconds.
    latency_sigma
        Log-normal shape of the latency distribution.
    error_rate
        Probability that a request fails.
    cpu, memory, disk
        Percent used.
    faults
        The faults active at this tick.
    """

    tick: int
    ts: datetime
    request_rate: np.ndarray
    latency_ms: np.ndarray
    latency_sigma: np.ndarray
    error_rate: np.ndarray
    cpu: np.ndarray
    memory: np.ndarray
    disk: np.ndarray
    faults: tuple[Fault, ...] = ()


class Simulator:
    """Metric events of a simulated microservice system, tick by tick, with ground truth.

    Every tick yields one event per service and signal (`SIGNALS`), shaped like
    ``airis.events.MetricPoint``: ``{"ts", "service", "signal", "value"}``. The run is a
    pure function of the arguments: the same arguments give the same events, and iterating
    `ticks` again starts over. See the module docstring for how the values behave.

    Parameters
    ----------
    topology
        The system; `default_topology` when omitted.
    start
        Timestamp of the first tick (timezone-aware; stored in UTC).
    hours
        Simulated length; the run has ``floor(hours * 3600 / interval_seconds)`` ticks.
    seed
        Seed of every random draw (a non-negative integer).
    interval_seconds
        Simulated seconds between ticks.
    faults
        Faults to inject; ``None`` draws `default_schedule` (which needs ``hours >= 4``),
        ``[]`` gives a fault-free run.
    deploys
        Change events for the ground truth; ``None`` takes the schedule's deploys, or the
        deploys and rollbacks implied by the ``bad_deploy`` faults when ``faults`` is given.
    quiet
        The fault-free stretch reported in the ground truth; ``None`` takes the schedule's,
        or the longest one found by `quiet_stretch` when ``faults`` is given.
    spikes_per_day
        Mean harmless single-tick spikes per service per simulated day.
    peak_rate
        External requests per second into the frontends at the weekday peak.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> sim = Simulator(start=datetime(2024, 1, 1, 12, tzinfo=UTC), hours=0.05, seed=42, faults=[])
    >>> batches = list(sim.ticks())
    >>> len(batches), len(batches[0])
    (18, 120)
    >>> first = batches[0][0]
    >>> first["ts"].isoformat(), first["service"], first["signal"]
    ('2024-01-01T12:00:00+00:00', 'frontend', 'request_rate')
    >>> 250 < first["value"] < 400
    True
    """

    def __init__(
        self,
        topology: Topology | None = None,
        start: datetime = DEFAULT_START,
        hours: float = DEFAULT_HOURS,
        seed: int = 0,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        faults: Sequence[Fault] | None = None,
        deploys: Sequence[Deploy] | None = None,
        *,
        quiet: tuple[datetime, datetime] | None = None,
        spikes_per_day: float = DEFAULT_SPIKES_PER_DAY,
        peak_rate: float = DEFAULT_PEAK_RATE,
    ) -> None:
        _check_seed(seed)
        for name, value in (
            ("hours", hours),
            ("interval_seconds", interval_seconds),
            ("peak_rate", peak_rate),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"Simulator: {name} must be finite and positive, got {value!r}")
        if not (math.isfinite(spikes_per_day) and spikes_per_day >= 0):
            raise ValueError(f"Simulator: spikes_per_day must be >= 0, got {spikes_per_day!r}")
        self.topology = topology or default_topology()
        self.start = _utc(start, "Simulator start")
        self.hours = float(hours)
        self.seed = int(seed)
        self.interval_seconds = float(interval_seconds)
        self.spikes_per_day = float(spikes_per_day)
        self.peak_rate = float(peak_rate)
        if self.n_ticks < 1:
            raise ValueError(f"Simulator: hours={hours} is shorter than one interval")
        if faults is None:
            schedule = default_schedule(self.start, self.hours, self.seed, self.topology)
            faults, default_deploys, default_quiet = (
                schedule.faults,
                schedule.deploys,
                schedule.quiet,
            )
        else:
            faults = tuple(faults)
            default_deploys = _deploys_of(faults)
            default_quiet = quiet_stretch(faults, self.start, self.end)
        self.faults: tuple[Fault, ...] = tuple(sorted(faults, key=lambda f: f.start))
        self.deploys: tuple[Deploy, ...] = tuple(
            sorted(default_deploys if deploys is None else deploys, key=lambda d: d.ts)
        )
        self.quiet = (
            default_quiet
            if quiet is None
            else (_utc(quiet[0], "quiet start"), _utc(quiet[1], "quiet end"))
        )
        for f in self.faults:
            for s in f.affected:
                self.topology.index(s)
        self.spikes: tuple[Spike, ...] = _draw_spikes(
            self.topology,
            self.start,
            self.n_ticks,
            self.interval_seconds,
            self.seed,
            self.spikes_per_day,
            self.faults,
        )

    @property
    def n_ticks(self) -> int:
        return math.floor(self.hours * 3600 / self.interval_seconds + 1e-9)

    @property
    def end(self) -> datetime:
        """The instant after the last tick's interval."""
        return self.start + timedelta(seconds=self.n_ticks * self.interval_seconds)

    @property
    def services(self) -> tuple[str, ...]:
        return self.topology.services

    def states(self) -> Iterator[ServiceState]:
        """The true state of every service, tick by tick (see `ServiceState`)."""
        topo, interval = self.topology, self.interval_seconds
        n = len(topo.services)
        prof = _profile(topo, self.seed, self.peak_rate)
        rng = _rng(self.seed, _STREAM_PROCESS)
        effects = [_scheduled_effect(f, topo, self.start, interval) for f in self.faults]
        spikes: dict[int, list[Spike]] = {}
        for s in self.spikes:
            tick = round((s.ts - self.start).total_seconds() / interval)
            spikes.setdefault(tick, []).append(s)
        w_t = topo._calls.T.copy()
        entry = topo._entry * self.peak_rate
        depth = topo._depth
        (phi_t, sd_t), (phi_l, sd_l), (phi_x, sd_x) = (
            _ar1(*_TRAFFIC_WOBBLE, interval),
            _ar1(*_LOAD_WOBBLE, interval),
            _ar1(*_LATENCY_WOBBLE, interval),
        )
        # Start the wobbles in their stationary distribution (no warm-up transient).
        z = rng.standard_normal(2 * n + 1)
        traffic = _TRAFFIC_WOBBLE[0] * z[0]
        load = _LOAD_WOBBLE[0] * z[1 : n + 1]
        lat_wobble = _LATENCY_WOBBLE[0] * z[n + 1 :]
        a, knee, c = _LOAD_LATENCY
        for i in range(self.n_ticks):
            elapsed = i * interval
            ts = self.start + timedelta(seconds=elapsed)
            z = rng.standard_normal(2 * n + 1)
            traffic = phi_t * traffic + sd_t * z[0]
            load = phi_l * load + sd_l * z[1 : n + 1]
            lat_wobble = phi_x * lat_wobble + sd_x * z[n + 1 :]

            mult = np.exp(load)
            latency = prof.latency_ms * np.exp(lat_wobble)
            error = prof.error_rate.copy()
            cpu_floor = None
            saw = ((elapsed + prof.gc_phase) % prof.gc_period) / prof.gc_period - 0.5
            memory = prof.memory + prof.gc_amplitude * saw
            disk = prof.disk + prof.disk_per_day * (elapsed / 86400)
            active = []
            for fault, first, stop, e in effects:
                if not first <= i < stop:
                    continue
                active.append(fault)
                mult *= e.rate
                latency *= e.latency
                error += e.error_add
                np.maximum(error, e.error_floor, out=error)
                cpu_floor = e.cpu_floor if cpu_floor is None else np.maximum(cpu_floor, e.cpu_floor)
                progress = (i - first + 1) / (stop - first)
                if e.memory_target is not None:
                    memory[e.root] += (e.memory_target - memory[e.root]) * progress
                if e.disk_target is not None:
                    disk[e.root] += (e.disk_target - disk[e.root]) * progress

            external = entry * (seasonality(ts) * math.exp(traffic))
            rate = mult * external
            for _ in range(depth):
                rate = mult * (external + w_t @ rate)

            cpu_add = None
            for s in spikes.get(i, ()):
                j = topo.index(s.service)
                if s.kind == "traffic":
                    rate[j] *= s.magnitude
                elif s.kind == "latency":
                    latency[j] *= s.magnitude
                elif s.kind == "errors":
                    error[j] += s.magnitude
                else:
                    cpu_add = np.zeros(n) if cpu_add is None else cpu_add
                    cpu_add[j] += s.magnitude

            util = rate / prof.capacity
            cpu = prof.cpu_idle + (_CPU_FULL - prof.cpu_idle) * util
            if cpu_add is not None:
                cpu += cpu_add
            if cpu_floor is not None:
                np.maximum(cpu, cpu_floor, out=cpu)
            np.minimum(cpu, _CPU_MAX, out=cpu)
            over = np.maximum(util - knee, 0.0)
            latency *= 1 + a * util * util + c * over * over
            error += _SHED_ERRORS * np.maximum(util - 1, 0.0)
            np.clip(error, 0.0, 1.0, out=error)
            yield ServiceState(
                tick=i,
                ts=ts,
                request_rate=rate,
                latency_ms=latency,
                latency_sigma=prof.sigma,
                error_rate=error,
                cpu=cpu,
                memory=np.clip(memory, 0, 100),
                disk=np.clip(disk, 0, 100),
                faults=tuple(active),
            )

    def ticks(self, speed: float | None = None) -> Iterator[list[dict[str, Any]]]:
        """Metric events, one list per tick in time order: ``len(services) * 8`` dicts each.

        ``speed=None`` runs as fast as possible; otherwise see `pace`.
        """
        return pace(self._measure(), speed)

    def points(self, speed: float | None = None) -> Iterator[dict[str, Any]]:
        """The events of `ticks`, one by one."""
        for batch in self.ticks(speed):
            yield from batch

    def _measure(self) -> Iterator[list[dict[str, Any]]]:
        rng = _rng(self.seed, _STREAM_MEASURE)
        services, interval = self.topology.services, self.interval_seconds
        noise = _MEASURE_NOISE
        for st in self.states():
            count = rng.poisson(st.request_rate * interval)
            errors = rng.binomial(count, st.error_rate)
            z = rng.standard_normal((6, len(services)))
            seen = np.maximum(count, 1)
            error_rate = np.where(count > 0, errors / seen, st.error_rate)
            sigma = st.latency_sigma
            p50 = st.latency_ms * np.exp(noise["latency_p50"] * z[0])
            p95 = p50 * np.exp(np.maximum(_Z95 * sigma + noise["latency_p95"] * z[1], 0.05))
            gap99 = (_Z99 - _Z95) * sigma + noise["latency_p99"] * z[2]
            p99 = p95 * np.exp(np.maximum(gap99, 0.03))
            table = np.stack(
                [
                    count / interval,
                    p50,
                    p95,
                    p99,
                    error_rate,
                    np.clip(st.cpu + noise["cpu"] * z[3], 0.0, 100.0),
                    np.clip(st.memory + noise["memory"] * z[4], 0.0, 100.0),
                    np.clip(st.disk + noise["disk"] * z[5], 0.0, 100.0),
                ]
            ).T.tolist()
            ts = st.ts
            yield [
                {"ts": ts, "service": service, "signal": signal, "value": value}
                for service, row in zip(services, table, strict=True)
                for signal, value in zip(SIGNALS, row, strict=True)
            ]

    def ground_truth(self) -> dict[str, Any]:
        """Everything needed to score a run, or rebuild it with `from_ground_truth`.

        JSON-able (timestamps as ISO 8601 strings): ``seed``, ``start``, ``end``, ``hours``,
        ``interval_seconds``, ``spikes_per_day``, ``peak_rate``, ``signals``, ``topology``,
        ``faults``, ``deploys``, ``quiet`` (``[start, end]`` or null) and ``spikes``.
        """
        return {
            "seed": self.seed,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "hours": self.hours,
            "interval_seconds": self.interval_seconds,
            "spikes_per_day": self.spikes_per_day,
            "peak_rate": self.peak_rate,
            "signals": list(SIGNALS),
            "topology": self.topology.to_dict(),
            "faults": [f.to_dict() for f in self.faults],
            "deploys": [d.to_dict() for d in self.deploys],
            "quiet": None if self.quiet is None else [_iso(t) for t in self.quiet],
            "spikes": [s.to_dict() for s in self.spikes],
        }

    @classmethod
    def from_ground_truth(cls, data: Mapping[str, Any]) -> Simulator:
        """The simulator that produced ``data`` (the output of `ground_truth`)."""
        quiet = data.get("quiet")
        return cls(
            topology=Topology.from_dict(data["topology"]),
            start=_parse_ts(data["start"], "start"),
            hours=data["hours"],
            seed=data["seed"],
            interval_seconds=data["interval_seconds"],
            faults=[Fault.from_dict(f) for f in data["faults"]],
            deploys=[Deploy.from_dict(d) for d in data["deploys"]],
            quiet=None
            if quiet is None
            else (_parse_ts(quiet[0], "quiet"), _parse_ts(quiet[1], "quiet")),
            spikes_per_day=data.get("spikes_per_day", DEFAULT_SPIKES_PER_DAY),
            peak_rate=data.get("peak_rate", DEFAULT_PEAK_RATE),
        )

    def __repr__(self) -> str:
        return (
            f"Simulator(start={_iso(self.start)}, hours={self.hours:g}, seed={self.seed}, "
            f"interval_seconds={self.interval_seconds:g}, services={len(self.services)}, "
            f"faults={len(self.faults)})"
        )


# --------------------------------------------------------------------------------------------
# Pacing


def pace(
    items: Iterable[_T],
    speed: float | None = None,
    *,
    ts_getter: Callable[[_T], datetime | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[_T]:
    """Yield ``items`` no faster than their timestamps advance, scaled by ``speed``.

    ``speed=None`` passes items through at once; ``1.0`` is real time (an item stamped 10 s
    after the first is yielded 10 s after it); ``k`` is k times faster. Items are tick
    batches (a list of events: the first event's ``ts`` counts) or single events (a mapping
    with ``ts``, a datetime or ISO 8601 string); items without a timestamp pass at once.

    Parameters
    ----------
    items
        The items, in time order.
    speed
        Simulated seconds per wall-clock second, or None for no pacing.
    ts_getter
        Reads an item's timestamp; the default handles batches and event dicts.
    clock
        Monotonic wall clock in seconds (injected by tests).
    sleep
        How to wait (injected by tests).

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> now, slept = [0.0], []
    >>> def sleep(s):
    ...     slept.append(s)
    ...     now[0] += s
    >>> events = [{"ts": datetime(2024, 1, 1, 0, 0, s, tzinfo=UTC)} for s in (0, 10, 20)]
    >>> _ = list(pace(events, speed=5.0, clock=lambda: now[0], sleep=sleep))
    >>> slept
    [2.0, 2.0]
    """
    if speed is not None and not (math.isfinite(speed) and speed > 0):
        raise ValueError(f"pace: speed must be None or a finite positive number, got {speed!r}")
    if speed is None:
        return iter(items)
    return _paced(items, speed, ts_getter or _item_ts, clock, sleep)


def _paced(
    items: Iterable[_T],
    speed: float,
    ts_getter: Callable[[_T], datetime | None],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> Iterator[_T]:
    origin: tuple[datetime, float] | None = None
    for item in items:
        ts = ts_getter(item)
        if ts is not None:
            if origin is None:
                origin = (ts, clock())
            else:
                due = origin[1] + (ts - origin[0]).total_seconds() / speed
                wait = due - clock()
                if wait > 0:
                    sleep(wait)
        yield item


def _item_ts(item: Any) -> datetime | None:
    if isinstance(item, list | tuple):
        item = item[0] if item else None
    ts = item.get("ts") if isinstance(item, Mapping) else None
    if isinstance(ts, str):
        try:
            ts = datetime.fromisoformat(ts)
        except ValueError:
            return None
    if isinstance(ts, datetime) and ts.tzinfo is not None:
        return ts
    return None
