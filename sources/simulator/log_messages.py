"""The log messages of the simulated services: per role and per fault kind, templates with
typed fields, rendered with seeded values; and which fault kind a message belongs to."""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from functools import lru_cache

ROLE_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
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


PORTS = {"database": 5432, "cache": 6379, "queue": 9092}


def _uuid(rnd: random.Random) -> str:
    """A random version-4 UUID as text: ``str(uuid.UUID(int=bits, version=4))`` written out
    (the same text from the same bits, at a third of the cost).

    >>> import uuid
    >>> _uuid(random.Random(3)) == str(uuid.UUID(int=random.Random(3).getrandbits(128), version=4))
    True
    """
    bits = rnd.getrandbits(128) & _UUID_KEEP | _UUID_V4
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# The bits `uuid.UUID(version=4)` sets: the variant (RFC 4122) and the version number.
_UUID_KEEP = ~((0xC000 << 48) | (0xF000 << 64))
_UUID_V4 = (0x8000 << 48) | (4 << 76)


GENERATORS: dict[str, Callable[[random.Random], str]] = {
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


def render(template: str, rnd: random.Random, ctx: dict[str, str]) -> str:
    """``template`` filled from ``ctx``, drawing the fields it lacks from `GENERATORS`.

    >>> render("GET {stem}:{n}", random.Random(1), {"stem": "session", "n": "7"})
    'GET session:7'
    """
    values = {f: ctx[f] if f in ctx else GENERATORS[f](rnd) for f in _fields_of(template)}
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
