"""Injected faults, deploys and harmless spikes of a simulated run, and the schedule placing them.

* **Faults** (`Fault`, eight kinds in `FAULT_KINDS`) change their root service and propagate:
  rate changes flow down the DAG, error and latency changes flow up to the callers,
  attenuated per hop and by the share of requests making the call. A fault's ``affected``
  lists the services whose metrics it visibly changes; smaller error and latency effects
  are not applied at all, smaller rate shifts (under 5 %) still flow (see ``VISIBLE_*``).
  `make_fault` computes ``affected`` from the kind, the parameters and the `Topology`.
* **Deploys** (`Deploy`) are change events in the ground truth; they change no metric. A
  ``bad_deploy`` fault starts with a faulty deploy and ends with its rollback.
* **Spikes** (`Spike`) are harmless single-tick blips, a few per service per day, kept
  away from the faults of their service; they must not raise alerts.

`default_schedule` draws a day of faults that covers every kind, with a quiet stretch for
measuring false alarms; `quiet_stretch` finds one for hand-made faults. The simulator
(`airis.sources.simulator`) applies the effects computed here while a fault is active.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from airis.sources.topology import _ROLE_PROFILES, Topology, default_topology

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_HOURS",
    "DEFAULT_START",
    "FAULT_KINDS",
    "FAULT_SIGNALS",
    "MIN_GAP",
    "MIN_SCHEDULE_HOURS",
    "QUIET",
    "VISIBLE_ERROR_RATE",
    "VISIBLE_LATENCY",
    "VISIBLE_RATE_CHANGE",
    "WARMUP",
    "Deploy",
    "Fault",
    "Schedule",
    "Spike",
    "default_fault_schedule",
    "default_schedule",
    "make_fault",
    "quiet_stretch",
]

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
# All of them are numbered here; the simulator uses the profile, process and measure streams.
_STREAM_PROFILE, _STREAM_PROCESS, _STREAM_MEASURE, _STREAM_SPIKES, _STREAM_SCHEDULE = range(5)

#: Typical median latency of each role, to turn propagated milliseconds into factors.
_NOMINAL_LATENCY_MS = {role: sum(p["latency_ms"]) / 2 for role, p in _ROLE_PROFILES.items()}

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
# Random streams and spikes


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([stream, seed])


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


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
