"""Log lines of a simulated run, sampled from the same states as its metrics.

`LogSimulator` turns every `ServiceState` of a `Simulator` into a batch of `LogRecord`\\ s,
one batch per tick with the tick's timestamps (each line jittered inside its tick):

* **Request lines** sample the requests a service serves: their number follows the service's
  request rate (``lines_per_tick_per_service`` is the mean over a weekday), each request fails
  with the tick's error probability and takes a log-normal latency around the tick's median.
  Successful requests log INFO, or WARN when slower than the service's normal p99; failed
  ones log ERROR, and are logged `ERROR_WEIGHT` times as often as successful ones (services
  keep their errors, sample their successes), so a 0.2 % error rate shows as about 1 % of the
  lines and a 20 % burst as more than half. Errors of a service that calls others usually
  name a callee, preferring the ones that fail.
* **Routine warnings** (retries, evictions, vacuum...) at a small share of the lines.
* **Fault lines** while a fault is active, only on the services it affects (`FAULT_TEMPLATES`,
  e.g. "GC overhead" for ``memory_leak``, "connection refused to <root> at <ip>:<port>" on the
  direct callers of a ``dependency_outage``). `fault_kind_of` tells which kind a body
  belongs to, so tests and evaluations can check the logs against the ground truth.
* **Deploy lines** ("deployed version v1.2.3") at every `Deploy` of the run, a ``bad_deploy``
  fault's included.

Messages come from a catalogue per role (`ROLES`) with realistic variable fields: request
ids, IPs, paths with ids, user ids, sizes, durations. Request lines carry random trace and
span ids (not those of `airis.sources.simulator.traces`). The output is a pure function of the
simulator and the seed, and uses its own random streams, so metrics never change because
logs are generated.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter

import numpy as np

from airis.events import LogRecord, constructed_rows
from airis.sources.simulator.ground_truth import Deploy, Fault
from airis.sources.simulator.log_messages import (
    FAULT_TEMPLATES,
    PORTS,
    ROLE_TEMPLATES,
    fault_kind_of,
    render,
)
from airis.sources.simulator.metrics import Z99, ServiceState, Simulator
from airis.sources.simulator.schedule import deploys_of, stream_rng
from airis.sources.simulator.topology import Topology
from airis.sources.simulator.traffic import service_profile

__all__ = [
    "DEFAULT_LINES_PER_TICK",
    "ERROR_WEIGHT",
    "FAULT_TEMPLATES",
    "LogRow",
    "LogSimulator",
    "fault_kind_of",
    "service_ip",
]

DEFAULT_LINES_PER_TICK = 2.0
#: A failed request is this many times as likely to be logged as a successful one.
ERROR_WEIGHT = 5.0
#: Mean external load of a weekday as a fraction of its peak (mean of `seasonality`), so that
#: ``lines_per_tick_per_service`` is a weekday mean rather than a peak.
_MEAN_LOAD = 0.54
#: Routine warnings per request line.
_ROUTINE_WARN = 0.02
#: Fault lines per tick per line of ``lines_per_tick_per_service``: at the root, elsewhere.
_FAULT_RATE = (0.5, 0.25)
#: Far from the faults' (0-4) and the trace simulator's streams: independent draws.
_STREAM_LOGS = 0x4C4F47
#: A line's fields, in `LogRecord`'s order: ts, service, severity, body, trace_id, span_id,
#: attributes.
LogRow = tuple[datetime, str, str, str, str | None, str | None, dict[str, str]]
_TS = itemgetter(0)
# The attributes of a simulated line (none): one dict shared by every line, never changed,
# so a batch pickles it once.
_NO_ATTRIBUTES: dict[str, str] = {}

# --------------------------------------------------------------------------------------------
# Catalogues. Templates are str.format strings; fields come from the line's context (``ms``,
# ``callee``...) or from `GENERATORS`. Messages per role: INFO, slow WARN, routine WARN, ERROR.


# --------------------------------------------------------------------------------------------
# Static context of the services


def _stem(service: str) -> str:
    return service.split("-")[0].split("_")[0] or service


def _plural(word: str) -> str:
    return word if word.endswith("s") else f"{word}s"


def service_ip(topology: Topology, service: str) -> str:
    """A stable private address of ``service`` (the same in every line of a run)."""
    i = topology.index(service)
    return f"10.0.{1 + i // 200}.{10 + i % 200}"


@dataclass(frozen=True)
class _Service:
    """What the lines of one service need that never changes during a run."""

    name: str
    role: str
    ctx: dict[str, str]  # fixed template fields
    resources: tuple[str, ...]  # what its request paths name
    callees: tuple[int, ...]
    slow_ms: float  # a request above this is a slow request (the normal p99)


def _services(sim: Simulator) -> tuple[_Service, ...]:
    topo = sim.topology
    prof = service_profile(topo, sim.seed, sim.peak_rate)
    # Normal p99 at a typical load (latency grows mildly with utilisation, by about 10 %).
    slow = prof.latency_ms * np.exp(Z99 * prof.sigma) * 1.1
    out = []
    for i, (name, role) in enumerate(zip(topo.services, topo.roles, strict=True)):
        stem = _stem(name)
        ctx = {
            "service": name,
            "stem": stem,
            "Stem": stem.capitalize(),
            "resource": _plural(stem),
            "table": _plural(stem),
            "topic": f"{stem}-events",
            "thr": f"{slow[i]:.0f}",
        }
        callees = tuple(topo.index(c) for c in topo.direct_callees(name))
        # An API's paths name the resources of the services behind it.
        resources = tuple(_plural(_stem(topo.services[j])) for j in callees)
        resources = resources if role == "api" and resources else (ctx["resource"],)
        out.append(_Service(name, role, ctx, resources, callees, float(slow[i])))
    return tuple(out)


def _via(topo: Topology, service: str, root: str) -> str:
    """The direct callee of ``service`` on a path to ``root`` (``root`` if none)."""
    for callee in topo.direct_callees(service):
        if callee == root or root in topo.callees_of(callee):
            return callee
    return root


# --------------------------------------------------------------------------------------------
# The simulator


class LogSimulator:
    """Log lines of a `Simulator`'s run, one batch per tick, consistent with its metrics.

    See the module docstring for what is logged. Each batch holds the lines whose timestamps
    fall inside one tick ``[ts, ts + interval)``, sorted by time; ``ticks`` yields exactly one
    batch per state of ``sim.states()`` (an empty list when nothing was logged).

    Parameters
    ----------
    sim
        The run; its states drive the lines.
    lines_per_tick_per_service
        Mean request lines per tick and service over a weekday; the number at a tick follows
        the service's request rate.
    seed
        Seed of the log draws; ``None`` takes the simulator's.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from airis.sources.simulator.effects import make_fault
    >>> t0 = datetime(2024, 1, 3, 12, tzinfo=UTC)
    >>> leak = make_fault("memory_leak", "order-service", t0.replace(minute=10),
    ...                   t0.replace(minute=30))
    >>> sim = Simulator(start=t0, hours=0.5, seed=7, faults=[leak])
    >>> batches = list(LogSimulator(sim).ticks())
    >>> len(batches) == sim.n_ticks, all(b[0].ts >= t0 for b in batches if b)
    (True, True)
    >>> 15 * 2 < sum(map(len, batches)) / len(batches) < 15 * 6
    True
    >>> gc = [r for b in batches for r in b if fault_kind_of(r.body) == "memory_leak"]
    >>> {r.service for r in gc}, min(r.ts for r in gc) >= leak.start
    ({'order-service'}, True)
    """

    def __init__(
        self,
        sim: Simulator,
        lines_per_tick_per_service: float = DEFAULT_LINES_PER_TICK,
        seed: int | None = None,
    ) -> None:
        if not (math.isfinite(lines_per_tick_per_service) and lines_per_tick_per_service >= 0):
            raise ValueError(
                "LogSimulator: lines_per_tick_per_service must be finite and >= 0, "
                f"got {lines_per_tick_per_service!r}"
            )
        self.sim = sim
        self.lines_per_tick = float(lines_per_tick_per_service)
        self.seed = sim.seed if seed is None else int(seed)
        topo = sim.topology
        self._services = _services(sim)
        # Request rate at which a service logs ``lines_per_tick`` lines per tick.
        self._ref_rate = topo._base_rates * sim.peak_rate * _MEAN_LOAD
        fields = itemgetter(*LogRecord.model_fields)
        self._deploys = {
            tick: [fields(record.__dict__) for record in records]
            for tick, records in _deploy_lines(sim).items()
        }

    def ticks(self) -> Iterator[list[LogRecord]]:
        """One list of `LogRecord` per tick of the simulator, in time order."""
        for rows in self.tick_rows():
            yield constructed_rows(LogRecord, rows)

    def tick_rows(self) -> Iterator[list[LogRow]]:
        """`ticks` as rows: each line's fields, in `LogRecord`'s order (what `LogBatch`
        columns are made of, without a `LogRecord` per line)."""
        rng = stream_rng(self.seed, _STREAM_LOGS)
        rnd = random.Random(int(rng.integers(2**63)))
        sim = self.sim
        for st in sim.states():
            rows = self._requests(st, rng, rnd)
            rows += self._fault_lines(st, rng, rnd)
            rows += self._deploys.get(st.tick, [])
            rows.sort(key=_TS)
            yield rows

    def records(self) -> Iterator[LogRecord]:
        """The lines of `ticks`, one by one."""
        for batch in self.ticks():
            yield from batch

    # -- request lines

    def _requests(
        self, st: ServiceState, rng: np.random.Generator, rnd: random.Random
    ) -> list[LogRow]:
        lam = self.lines_per_tick * st.request_rate / self._ref_rate
        err = st.error_rate
        n_ok = rng.poisson(lam * (1 - err))
        n_err = rng.poisson(lam * np.minimum(err * ERROR_WEIGHT, 1e6))
        n_warn = rng.poisson(lam * _ROUTINE_WARN)
        interval = self.sim.interval_seconds
        out: list[LogRow] = []
        for i, svc in enumerate(self._services):
            if not (n_ok[i] or n_err[i] or n_warn[i]):
                continue
            templates = ROLE_TEMPLATES[svc.role]
            median, sigma = float(st.latency_ms[i]), float(st.latency_sigma[i])
            mu = math.log(max(median, 1e-6))
            for _ in range(n_ok[i]):
                ms = rnd.lognormvariate(mu, sigma)
                kind, severity = ("slow", "WARN") if ms > svc.slow_ms else ("info", "INFO")
                ctx = {**svc.ctx, "ms": _ms(ms), "resource": rnd.choice(svc.resources)}
                out.append(self._line(st.ts, interval, svc, severity, templates[kind], ctx, rnd))
            for _ in range(n_err[i]):
                ms = rnd.lognormvariate(mu, sigma)
                callee = self._failing_callee(svc, st, rnd)
                ctx = {
                    **svc.ctx,
                    "ms": _ms(ms),
                    "callee": callee,
                    "resource": rnd.choice(svc.resources),
                }
                out.append(self._line(st.ts, interval, svc, "ERROR", templates["error"], ctx, rnd))
            for _ in range(n_warn[i]):
                ctx = {**svc.ctx, "callee": self._failing_callee(svc, st, rnd)}
                line = self._line(st.ts, interval, svc, "WARN", templates["warn"], ctx, rnd, False)
                out.append(line)
        return out

    def _failing_callee(self, svc: _Service, st: ServiceState, rnd: random.Random) -> str:
        """A direct callee, likelier the more it fails (the service itself if it has none)."""
        if not svc.callees:
            return svc.name
        weights = [float(st.error_rate[j]) + 1e-4 for j in svc.callees]
        j = rnd.choices(svc.callees, weights)[0]
        return self.sim.topology.services[j]

    @staticmethod
    def _line(
        tick_ts: datetime,
        interval: float,
        svc: _Service,
        severity: str,
        templates: Sequence[str],
        ctx: dict[str, str],
        rnd: random.Random,
        traced: bool = True,
    ) -> LogRow:
        body = render(rnd.choice(templates), rnd, ctx)
        ts = tick_ts + timedelta(0, rnd.random() * interval)  # (days, seconds): no keyword
        if not traced:
            return (ts, svc.name, severity, body, None, None, _NO_ATTRIBUTES)
        trace_id = f"{rnd.getrandbits(128):032x}"
        span_id = f"{rnd.getrandbits(64):016x}"
        return (ts, svc.name, severity, body, trace_id, span_id, _NO_ATTRIBUTES)

    # -- fault lines

    def _fault_lines(
        self, st: ServiceState, rng: np.random.Generator, rnd: random.Random
    ) -> list[LogRow]:
        out: list[LogRow] = []
        topo, interval = self.sim.topology, self.sim.interval_seconds
        for fault in st.faults:
            groups = FAULT_TEMPLATES[fault.kind]
            # Leaks and fills get louder as they grow.
            ramp = _progress(fault, st.ts) if fault.kind in ("memory_leak", "disk_fill") else 1.0
            direct = set(topo.direct_callers(fault.service))
            for service in fault.affected:
                if service == fault.service:
                    lines, rate = groups["root"], _FAULT_RATE[0]
                elif service in direct:
                    lines, rate = groups.get("callers") or groups["others"], _FAULT_RATE[1]
                else:
                    lines, rate = groups["others"], _FAULT_RATE[1]
                if not lines:
                    continue
                count = rng.poisson(self.lines_per_tick * rate * ramp)
                if not count:
                    continue
                i = topo.index(service)
                svc = self._services[i]
                ctx = {**svc.ctx, **self._fault_ctx(fault, st, i)}
                for _ in range(count):
                    severity, template = rnd.choice(lines)
                    ctx["ms"] = _ms(float(st.latency_ms[i]) * rnd.lognormvariate(0.5, 0.3))
                    line = self._line(st.ts, interval, svc, severity, (template,), ctx, rnd, False)
                    out.append(line)
        return out

    def _fault_ctx(self, fault: Fault, st: ServiceState, i: int) -> dict[str, str]:
        topo = self.sim.topology
        service, root = topo.services[i], fault.service
        return {
            "root": root,
            "root_ip": service_ip(topo, root),
            "root_port": str(PORTS.get(topo.role(root), 8080)),
            "via": _via(topo, service, root),
            "mem": f"{st.memory[i]:.0f}",
            "disk": f"{st.disk[i]:.0f}",
            "rps": f"{st.request_rate[i]:.0f}",
        }


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _progress(fault: Fault, ts: datetime) -> float:
    """How far into ``fault`` ``ts`` is, in (0, 1]."""
    done = (ts - fault.start).total_seconds() + 1
    return min(1.0, max(0.05, done / fault.duration.total_seconds()))


def _deploy_lines(sim: Simulator) -> dict[int, list[LogRecord]]:
    """The deploy lines of the run by tick: its deploys, plus those its bad deploys imply."""
    deploys = list(sim.deploys)
    known = {(d.ts, d.service) for d in deploys}
    deploys += [d for d in deploys_of(sim.faults) if (d.ts, d.service) not in known]
    bad_ends = {(f.end, f.service) for f in sim.faults if f.kind == "bad_deploy"}
    current: dict[str, str] = {}
    out: dict[int, list[LogRecord]] = {}
    for d in sorted(deploys, key=lambda d: d.ts):
        previous = current.get(d.service)
        current[d.service] = d.version
        tick = math.floor((d.ts - sim.start).total_seconds() / sim.interval_seconds)
        if not 0 <= tick < sim.n_ticks:
            continue
        out.setdefault(tick, []).append(_deploy_record(d, previous, (d.ts, d.service) in bad_ends))
    return out


def _deploy_record(d: Deploy, previous: str | None, rollback: bool) -> LogRecord:
    """
    >>> from datetime import UTC, datetime
    >>> d = Deploy(datetime(2024, 1, 1, tzinfo=UTC), "cart-service", "v1.3.0")
    >>> _deploy_record(d, "v1.4.0", True).body
    'deployed version v1.3.0 (rollback of v1.4.0)'
    """
    body = f"deployed version {d.version}"
    if previous is not None:
        body += f" ({'rollback of' if rollback else 'was'} {previous})"
    return LogRecord(
        ts=d.ts,
        service=d.service,
        severity="INFO",
        body=body,
        attributes={"event": "deploy", "version": d.version},
    )
