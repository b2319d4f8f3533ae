"""What each kind of fault does: its effect on its root service, how that spreads through the
DAG, and which services it visibly changes.

Rate changes flow down the DAG, error and latency changes flow up to the callers, attenuated per
hop and by the share of requests making the call. Smaller error and latency effects than
``VISIBLE_*`` are not applied at all; smaller rate shifts (under 5 %) still flow. `make_fault`
computes a fault's ``affected`` services from its kind, parameters and the `Topology`; the
simulator (`airis.sources.simulator.metrics`) applies `scheduled_effect` while it is active.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from airis.sources.simulator.ground_truth import FAULT_KINDS, Fault, as_utc
from airis.sources.simulator.topology import ROLE_PROFILES, Topology, default_topology

logger = logging.getLogger(__name__)

__all__ = [
    "PARAM_RANGES",
    "VISIBLE_ERROR_RATE",
    "VISIBLE_LATENCY",
    "VISIBLE_RATE_CHANGE",
    "make_fault",
    "scheduled_effect",
]


#: A propagated effect is applied (and its service listed in ``affected``) only if it is at
#: least this large: added error ratio, added latency fraction, relative request-rate change.
VISIBLE_ERROR_RATE = 0.02


VISIBLE_LATENCY = 0.3


VISIBLE_RATE_CHANGE = 0.05


#: Typical median latency of each role, to turn propagated milliseconds into factors.
_NOMINAL_LATENCY_MS = {role: sum(p["latency_ms"]) / 2 for role, p in ROLE_PROFILES.items()}


PARAM_RANGES: dict[str, dict[str, tuple[float, float]]] = {
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
    start = as_utc(start, "start")
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
        k: round((lo + hi) / 2, 4) for k, (lo, hi) in PARAM_RANGES[kind].items()
    }
    merged.update(_FIXED_PARAMS[kind])
    merged.update(params)
    return merged


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


def scheduled_effect(
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
