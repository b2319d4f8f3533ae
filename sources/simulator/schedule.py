"""Where faults, deploys and spikes go in a simulated run, and the run's random streams.

`default_schedule` draws a day of faults that covers every kind, with a quiet stretch for
measuring false alarms; `quiet_stretch` finds one for hand-made faults. Each part of the
simulation draws from its own seeded stream (`stream_rng`), so that adding one cannot change
another.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from airis.sources.simulator.effects import PARAM_RANGES, make_fault
from airis.sources.simulator.ground_truth import FAULT_KINDS, Deploy, Fault, Schedule, Spike, as_utc
from airis.sources.simulator.topology import Topology, default_topology

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_HOURS",
    "DEFAULT_START",
    "MIN_GAP",
    "MIN_SCHEDULE_HOURS",
    "QUIET",
    "STREAM_MEASURE",
    "STREAM_PROCESS",
    "STREAM_PROFILE",
    "STREAM_SCHEDULE",
    "STREAM_SPIKES",
    "WARMUP",
    "check_seed",
    "default_fault_schedule",
    "default_schedule",
    "deploys_of",
    "draw_spikes",
    "quiet_stretch",
    "stream_rng",
]


DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday


DEFAULT_HOURS = 24.0


#: Schedule rules: no fault before the warm-up ends; at least MIN_GAP between faults and
#: after the last one; one fault-free stretch of QUIET (less for runs under 10 h).
WARMUP = timedelta(hours=2)


MIN_GAP = timedelta(minutes=30)


QUIET = timedelta(hours=2)


MIN_SCHEDULE_HOURS = 4.0


# Independent random streams, so that e.g. adding log generation later cannot change metrics.
# All of them are numbered here; the simulator uses the profile, process and measure streams.
STREAM_PROFILE, STREAM_PROCESS, STREAM_MEASURE, STREAM_SPIKES, STREAM_SCHEDULE = range(5)


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


# Harmless spikes: magnitude ranges (multiplier for traffic and latency, added error ratio,
# added cpu points), closest allowed spacing on one service, distance kept from faults.
_SPIKE_KINDS: dict[str, tuple[float, float]] = {
    "traffic": (1.8, 2.5),
    "latency": (2.5, 4.0),
    "errors": (0.05, 0.15),
    "cpu": (25.0, 40.0),
}


_SPIKE_SPACING = timedelta(minutes=5)


_SPIKE_FAULT_MARGIN = timedelta(minutes=5)


_DEPLOYS_PER_DAY = 3


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
    start = as_utc(start, "start")
    if not hours >= MIN_SCHEDULE_HOURS:
        raise ValueError(
            f"default_schedule: hours={hours} is too short; a fault schedule needs at least "
            f"{MIN_SCHEDULE_HOURS:g} h (2 h warm-up, faults, a quiet stretch). "
            "Pass faults=[] to Simulator for a fault-free run."
        )
    check_seed(seed)
    topo = topology or default_topology()
    rng = stream_rng(seed, STREAM_SCHEDULE)
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
        lo_hi = PARAM_RANGES[kind]
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
    lo = as_utc(start, "start") + warmup
    hi = as_utc(end, "end")
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


def deploys_of(faults: Iterable[Fault]) -> tuple[Deploy, ...]:
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


def stream_rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([stream, seed])


def check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def draw_spikes(
    topo: Topology,
    start: datetime,
    n_ticks: int,
    interval: float,
    seed: int,
    per_day: float,
    faults: Sequence[Fault],
) -> tuple[Spike, ...]:
    rng = stream_rng(seed, STREAM_SPIKES)
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
