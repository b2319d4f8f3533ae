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
import re
import string
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np

from airis.events import LogRecord, trusted
from airis.sources.simulator.ground_truth import Deploy, Fault
from airis.sources.simulator.metrics import Z99, ServiceState, Simulator
from airis.sources.simulator.schedule import deploys_of, stream_rng
from airis.sources.simulator.topology import Topology
from airis.sources.simulator.traffic import service_profile

__all__ = [
    "DEFAULT_LINES_PER_TICK",
    "ERROR_WEIGHT",
    "FAULT_TEMPLATES",
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

# --------------------------------------------------------------------------------------------
# Catalogues. Templates are str.format strings; fields come from the line's context (``ms``,
# ``callee``...) or from `_GENERATORS`. Messages per role: INFO, slow WARN, routine WARN, ERROR.

_ROLE_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "frontend": {
        "info": (
            '{ip} - - "GET /product/{n} HTTP/1.1" 200 {size} {ms}ms',
            '{ip} - - "GET /search?q={word} HTTP/1.1" 200 {size} {ms}ms',
            '{ip} - - "POST /cart/items HTTP/1.1" 201 {size} {ms}ms',
            "rendered /checkout for user {uid} in {ms} ms (request_id={rid})",
        ),
        "slow": ("slow page render: GET /product/{n} took {ms} ms (request_id={rid})",),
        "warn": (
            "session {hex8} expired, redirecting user {uid} to /login",
            "static asset /assets/app.{hex8}.js served from origin (CDN miss)",
        ),
        "error": (
            '{ip} - - "GET /checkout HTTP/1.1" 502 {size} {ms}ms',
            "upstream request failed: {callee} returned 503 after {ms} ms (request_id={rid})",
        ),
    },
    "api": {
        "info": (
            "request_id={rid} method=GET path=/api/v1/{resource}/{n} status=200 "
            "duration_ms={ms} user_id={uid}",
            "request_id={rid} method=POST path=/api/v1/{resource} status=201 "
            "duration_ms={ms} user_id={uid} bytes={size}",
        ),
        "slow": ("slow request: request_id={rid} path=/api/v1/{resource}/{n} duration_ms={ms}",),
        "warn": (
            "rate limit at 80% for client {ip}",
            "deprecated endpoint /api/v0/{resource} called by client {ip}",
        ),
        "error": (
            "request_id={rid} method=GET path=/api/v1/{resource}/{n} status=503 "
            'duration_ms={ms} error="upstream {callee} unavailable"',
            'request_id={rid} status=500 error="unexpected response from {callee}"',
        ),
    },
    "backend": {
        "info": (
            "[{rid}] {Stem}Service.get{Stem} completed in {ms} ms",
            "[{rid}] processed {stem} {n} for user {uid} in {ms} ms",
        ),
        "slow": ("[{rid}] {Stem}Service.handle took {ms} ms, above the {thr} ms budget",),
        "warn": (
            "retrying call to {callee} (attempt 2 of 3)",
            "feature flag {stem}_v2 not found, using default",
        ),
        "error": (
            "[{rid}] failed to process {stem} {n}: {exc}",
            "[{rid}] call to {callee} failed: {exc}",
        ),
    },
    "database": {
        "info": (
            "duration: {ms} ms  statement: SELECT * FROM {table} WHERE id = {n}",
            "duration: {ms} ms  statement: UPDATE {table} SET updated_at = now() WHERE id = {n}",
        ),
        "slow": (
            "slow query: duration: {ms} ms  statement: SELECT * FROM {table} WHERE user_id = {uid}",
        ),
        "warn": (
            "autovacuum: table {table} has {n} dead tuples",
            "checkpoints are occurring too frequently ({k} seconds apart)",
        ),
        "error": (
            "ERROR:  deadlock detected while updating {table} (process {pid})",
            "ERROR:  canceling statement due to statement timeout on {table}",
        ),
    },
    "cache": {
        "info": (
            "GET {stem}:{n} hit in {ms} ms",
            "SET {stem}:{n} {size} bytes ttl=300 in {ms} ms",
        ),
        "slow": ("slowlog: MGET {stem}:{n} took {ms} ms",),
        "warn": ("evicted {k} keys under maxmemory-policy allkeys-lru",),
        "error": (
            "READONLY You can't write against a read only replica ({stem}:{n})",
            "client {ip} closed: connection reset by peer",
        ),
    },
    "queue": {
        "info": (
            "published message {rid} to {topic} partition {k} offset {offset} ({size} bytes)",
            "consumer group {stem}-workers committed offset {offset} on {topic}-{k}",
        ),
        "slow": ("produce to {topic} partition {k} took {ms} ms",),
        "warn": ("consumer lag on {topic}-{k} is {n} messages",),
        "error": (
            "failed to append to {topic}-{k}: NotLeaderForPartitionException",
            "message {rid} rejected: RecordTooLargeException ({size} bytes)",
        ),
    },
}

#: Per fault kind, (severity, template) of the lines at the ``root``, at the direct
#: ``callers`` of the root, and at the ``others`` it affects (falling back to ``others`` for
#: callers). ``via`` is the callee on the way to the root; ``mem``, ``disk`` and ``rps`` are
#: the service's current values.
FAULT_TEMPLATES: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {
    "latency_spike": {
        "root": (("WARN", "request queue building up: {queued} pending, p99 {ms} ms"),),
        "others": (("WARN", "timeout budget exceeded waiting for {via}: {ms} ms"),),
    },
    "error_burst": {
        "root": (
            (
                "ERROR",
                "HTTP 500 Internal Server Error: unhandled {exc} in {Stem}Handler "
                "(request_id={rid})",
            ),
        ),
        "others": (("ERROR", "HTTP 502 Bad Gateway: {via} answered 500 (request_id={rid})"),),
    },
    "cpu_saturation": {
        "root": (("WARN", "CPU throttled in {pct}% of CFS periods, event loop lag {ms} ms"),),
        "others": (("WARN", "deadline exceeded on call to {via} after {ms} ms"),),
    },
    "memory_leak": {
        "root": (
            ("WARN", "GC overhead high: {pct}% of time spent in garbage collection"),
            ("WARN", "heap usage {mem}% of {heap} MiB after full GC"),
        ),
        "others": (),
    },
    "disk_fill": {
        "root": (
            ("WARN", "disk usage {disk}% on /var/lib/{stem}/data, {free} GiB free"),
            ("WARN", "low disk space on /var/lib/{stem}/data: compaction deferred"),
        ),
        "others": (),
    },
    "traffic_surge": {
        "root": (
            ("WARN", "rate limiter engaged: {rps} req/s above the soft limit"),
            ("INFO", "autoscaler: scaling {service} from {k} to {k2} replicas"),
        ),
        "others": (("WARN", "connection pool {stem}-pool at {pct}% ({n} connections in use)"),),
    },
    "dependency_outage": {
        "root": (
            ("ERROR", "health check failed: not accepting connections ({queued} clients waiting)"),
        ),
        "callers": (("ERROR", "connection refused to {root} at {root_ip}:{root_port}"),),
        "others": (("ERROR", "upstream {via} timed out after {ms} ms"),),
    },
    "bad_deploy": {
        "root": (
            (
                "ERROR",
                "NullPointerException in com.shop.{stem}.{Stem}Controller.handle"
                "({Stem}Controller.java:{line})",
            ),
            ("ERROR", "java.lang.IllegalStateException: missing config key {stem}.v2.enabled"),
        ),
        "others": (
            ("ERROR", "call to {via} failed: 500 Internal Server Error (request_id={rid})"),
        ),
    },
}

_WORDS = ("shoes", "laptop", "coffee", "lamp", "backpack", "headphones", "desk", "jacket")
_EXCEPTIONS = (
    "TimeoutException",
    "IllegalArgumentException",
    "SQLTransientConnectionException",
    "IOException: connection reset",
    "ValidationException",
)
_PORTS = {"database": 5432, "cache": 6379, "queue": 9092}


def _uuid(rnd: random.Random) -> str:
    return str(uuid.UUID(int=rnd.getrandbits(128), version=4))


_GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "rid": _uuid,
    "ip": lambda r: (
        f"{r.choice((10, 172, 192))}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"
    ),
    "n": lambda r: str(r.randrange(1, 100_000)),
    "uid": lambda r: str(r.randrange(1000, 1_000_000)),
    "size": lambda r: str(int(r.lognormvariate(8.0, 1.0))),
    "word": lambda r: r.choice(_WORDS),
    "hex8": lambda r: f"{r.getrandbits(32):08x}",
    "k": lambda r: str(r.randrange(1, 12)),
    "k2": lambda r: str(r.randrange(12, 24)),
    "queued": lambda r: str(r.randrange(20, 500)),
    "offset": lambda r: str(r.randrange(1_000_000, 90_000_000)),
    "pid": lambda r: str(r.randrange(1000, 65_000)),
    "exc": lambda r: r.choice(_EXCEPTIONS),
    "pct": lambda r: str(r.randrange(60, 99)),
    "line": lambda r: str(r.randrange(40, 400)),
    "heap": lambda r: r.choice(("2048", "4096")),
    "free": lambda r: f"{r.uniform(0.2, 3.0):.1f}",
}


@lru_cache(maxsize=512)
def _fields_of(template: str) -> tuple[str, ...]:
    return tuple(f for _, f, _, _ in string.Formatter().parse(template) if f)


def _render(template: str, rnd: random.Random, ctx: dict[str, str]) -> str:
    """``template`` filled from ``ctx``, drawing the fields it lacks from `_GENERATORS`.

    >>> _render("GET {stem}:{n}", random.Random(1), {"stem": "session", "n": "7"})
    'GET session:7'
    """
    values = {f: ctx[f] if f in ctx else _GENERATORS[f](rnd) for f in _fields_of(template)}
    return template.format(**values)


@lru_cache(maxsize=1)
def _fault_patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    out = []
    for kind, groups in FAULT_TEMPLATES.items():
        for lines in groups.values():
            for _, template in lines:
                parts = re.split(r"\{[^}]*\}", template)
                out.append((re.compile(".+?".join(re.escape(p) for p in parts)), kind))
    return tuple(out)


def fault_kind_of(body: str) -> str | None:
    """The fault kind whose `FAULT_TEMPLATES` produced ``body``, or None for other lines.

    >>> fault_kind_of("connection refused to catalog-db at 10.0.1.20:5432")
    'dependency_outage'
    >>> fault_kind_of("GET session:42 hit in 0.8 ms") is None
    True
    """
    for pattern, kind in _fault_patterns():
        if pattern.fullmatch(body):
            return kind
    return None


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
        self._deploys = _deploy_lines(sim)

    def ticks(self) -> Iterator[list[LogRecord]]:
        """One list of `LogRecord` per tick of the simulator, in time order."""
        rng = stream_rng(self.seed, _STREAM_LOGS)
        rnd = random.Random(int(rng.integers(2**63)))
        sim = self.sim
        for st in sim.states():
            records = self._requests(st, rng, rnd)
            records += self._fault_lines(st, rng, rnd)
            records += self._deploys.get(st.tick, [])
            records.sort(key=lambda r: r.ts)
            yield records

    def records(self) -> Iterator[LogRecord]:
        """The lines of `ticks`, one by one."""
        for batch in self.ticks():
            yield from batch

    # -- request lines

    def _requests(
        self, st: ServiceState, rng: np.random.Generator, rnd: random.Random
    ) -> list[LogRecord]:
        lam = self.lines_per_tick * st.request_rate / self._ref_rate
        err = st.error_rate
        n_ok = rng.poisson(lam * (1 - err))
        n_err = rng.poisson(lam * np.minimum(err * ERROR_WEIGHT, 1e6))
        n_warn = rng.poisson(lam * _ROUTINE_WARN)
        interval = self.sim.interval_seconds
        out: list[LogRecord] = []
        for i, svc in enumerate(self._services):
            if not (n_ok[i] or n_err[i] or n_warn[i]):
                continue
            templates = _ROLE_TEMPLATES[svc.role]
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
    ) -> LogRecord:
        body = _render(rnd.choice(templates), rnd, ctx)
        ts = tick_ts + timedelta(seconds=rnd.random() * interval)
        if not traced:
            return trusted(LogRecord, ts=ts, service=svc.name, severity=severity, body=body)
        return trusted(
            LogRecord,
            ts=ts,
            service=svc.name,
            severity=severity,
            body=body,
            trace_id=f"{rnd.getrandbits(128):032x}",
            span_id=f"{rnd.getrandbits(64):016x}",
        )

    # -- fault lines

    def _fault_lines(
        self, st: ServiceState, rng: np.random.Generator, rnd: random.Random
    ) -> list[LogRecord]:
        out: list[LogRecord] = []
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
            "root_port": str(_PORTS.get(topo.role(root), 8080)),
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
