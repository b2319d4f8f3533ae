"""A seeded, deterministic microservice telemetry simulator with injected faults and ground truth.

The simulated system is a `Topology` (`airis.sources.simulator.topology`): a DAG of services from
frontends through APIs and backends down to databases, caches and queues. Every tick (10 s of
simulated time by default) the simulator computes a `ServiceState` — the *true* load,
latency, error probability and resource usage of all services at once, vectorised with
numpy — and then measures metric events from it with noise. Logs and spans can later be
sampled from the same states.

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
* **Faults** (`Fault`, eight kinds) change their root service and propagate through the DAG;
  `airis.sources.simulator.effects` computes their effects and which services they visibly
  change.

Unless given faults, the simulator draws `default_schedule`: a day of faults that covers
every kind, with a quiet stretch for measuring false alarms. `Simulator.ground_truth` returns
everything as JSON-able data, and `Simulator.from_ground_truth` rebuilds the identical run
from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from airis.signals import SERVICE_SIGNALS
from airis.sources.simulator.effects import scheduled_effect
from airis.sources.simulator.ground_truth import Deploy, Fault, Spike, as_utc, iso, parse_ts
from airis.sources.simulator.pacing import pace
from airis.sources.simulator.schedule import (
    DEFAULT_HOURS,
    DEFAULT_START,
    STREAM_MEASURE,
    STREAM_PROCESS,
    check_seed,
    default_schedule,
    deploys_of,
    draw_spikes,
    quiet_stretch,
    stream_rng,
)
from airis.sources.simulator.topology import Topology, default_topology
from airis.sources.simulator.traffic import ar1, seasonality, service_profile

__all__ = [
    "DEFAULT_INTERVAL_SECONDS",
    "DEFAULT_PEAK_RATE",
    "DEFAULT_SPIKES_PER_DAY",
    "SIGNALS",
    "ServiceState",
    "Simulator",
    "recent_simulation",
]

#: Signals emitted for every service at every tick, in this order.
SIGNALS = SERVICE_SIGNALS

DEFAULT_INTERVAL_SECONDS = 10.0
#: External requests per second into the frontends at the weekday peak.
DEFAULT_PEAK_RATE = 400.0
#: Mean number of harmless single-tick spikes per service per simulated day.
DEFAULT_SPIKES_PER_DAY = 3.0


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
Z99 = 2.3263
# cpu = idle + (CPU_FULL - idle) * utilisation, capped at CPU_MAX; latency factor from load.
_CPU_FULL = 95.0
_CPU_MAX = 99.0
_LOAD_LATENCY = (0.3, 0.9, 4.0)  # 1 + a * u**2 + c * max(0, u - knee)**2
_SHED_ERRORS = 0.15  # added error ratio per unit of utilisation above 1


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
        check_seed(seed)
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
        self.start = as_utc(start, "Simulator start")
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
            default_deploys = deploys_of(faults)
            default_quiet = quiet_stretch(faults, self.start, self.end)
        self.faults: tuple[Fault, ...] = tuple(sorted(faults, key=lambda f: f.start))
        self.deploys: tuple[Deploy, ...] = tuple(
            sorted(default_deploys if deploys is None else deploys, key=lambda d: d.ts)
        )
        self.quiet = (
            default_quiet
            if quiet is None
            else (as_utc(quiet[0], "quiet start"), as_utc(quiet[1], "quiet end"))
        )
        for f in self.faults:
            for s in f.affected:
                self.topology.index(s)
        self.spikes: tuple[Spike, ...] = draw_spikes(
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
        prof = service_profile(topo, self.seed, self.peak_rate)
        rng = stream_rng(self.seed, STREAM_PROCESS)
        effects = [scheduled_effect(f, topo, self.start, interval) for f in self.faults]
        spikes: dict[int, list[Spike]] = {}
        for s in self.spikes:
            tick = round((s.ts - self.start).total_seconds() / interval)
            spikes.setdefault(tick, []).append(s)
        w_t = topo._calls.T.copy()
        entry = topo._entry * self.peak_rate
        depth = topo._depth
        (phi_t, sd_t), (phi_l, sd_l), (phi_x, sd_x) = (
            ar1(*_TRAFFIC_WOBBLE, interval),
            ar1(*_LOAD_WOBBLE, interval),
            ar1(*_LATENCY_WOBBLE, interval),
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

    def tables(self) -> Iterator[tuple[datetime, np.ndarray]]:
        """What `ticks` is made of: each tick's time and measured values, one row per service
        and one column per signal of `SIGNALS` (for readers that want arrays, not events)."""
        rng = stream_rng(self.seed, STREAM_MEASURE)
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
            gap99 = (Z99 - _Z95) * sigma + noise["latency_p99"] * z[2]
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
            ).T
            yield st.ts, table

    def _measure(self) -> Iterator[list[dict[str, Any]]]:
        services = self.topology.services
        for ts, table in self.tables():
            yield [
                {"ts": ts, "service": service, "signal": signal, "value": value}
                for service, row in zip(services, table.tolist(), strict=True)
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
            "start": iso(self.start),
            "end": iso(self.end),
            "hours": self.hours,
            "interval_seconds": self.interval_seconds,
            "spikes_per_day": self.spikes_per_day,
            "peak_rate": self.peak_rate,
            "signals": list(SIGNALS),
            "topology": self.topology.to_dict(),
            "faults": [f.to_dict() for f in self.faults],
            "deploys": [d.to_dict() for d in self.deploys],
            "quiet": None if self.quiet is None else [iso(t) for t in self.quiet],
            "spikes": [s.to_dict() for s in self.spikes],
        }

    @classmethod
    def from_ground_truth(cls, data: Mapping[str, Any]) -> Simulator:
        """The simulator that produced ``data`` (the output of `ground_truth`)."""
        quiet = data.get("quiet")
        return cls(
            topology=Topology.from_dict(data["topology"]),
            start=parse_ts(data["start"], "start"),
            hours=data["hours"],
            seed=data["seed"],
            interval_seconds=data["interval_seconds"],
            faults=[Fault.from_dict(f) for f in data["faults"]],
            deploys=[Deploy.from_dict(d) for d in data["deploys"]],
            quiet=None
            if quiet is None
            else (parse_ts(quiet[0], "quiet"), parse_ts(quiet[1], "quiet")),
            spikes_per_day=data.get("spikes_per_day", DEFAULT_SPIKES_PER_DAY),
            peak_rate=data.get("peak_rate", DEFAULT_PEAK_RATE),
        )

    def __repr__(self) -> str:
        return (
            f"Simulator(start={iso(self.start)}, hours={self.hours:g}, seed={self.seed}, "
            f"interval_seconds={self.interval_seconds:g}, services={len(self.services)}, "
            f"faults={len(self.faults)})"
        )


# --------------------------------------------------------------------------------------------
# Pacing


def recent_simulation(hours: float, seed: int, end: datetime | None = None) -> Simulator:
    """A `Simulator` of ``hours`` ending at the last whole hour (or at ``end``).

    Recent timestamps keep the data inside storage TTLs and dashboards' default ranges;
    aligning to the hour makes re-runs within the hour produce identical events (and ids).
    """
    end = end or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return Simulator(start=end - timedelta(hours=hours), hours=hours, seed=seed)
