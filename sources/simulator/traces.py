"""Distributed traces of a simulated run, sampled from the same states as its metrics.

`TraceSimulator` turns every `ServiceState` of a `Simulator` into a batch of `Span`\\ s: a
few traces per tick, each one request walking the topology's DAG from its entry service.

**Span convention** (OpenTelemetry's): every call between services is two spans.

* A **server** span on the callee (``attributes["span.kind"] == "server"``,
  ``peer_service`` None) covers the callee's work, children included. The entry service's
  server span is the trace's root (no parent).
* A **client** span on the caller (``"span.kind" == "client"``, ``peer_service`` = the
  callee, also in ``attributes["peer.service"]``) is a child of the caller's server span and
  the parent of the callee's server span. It lasts from sending the request to getting the
  answer (the server span plus network time) and has the status the caller saw.

So the dependency graph is read from client spans alone: each is one call on the edge
``(span.service, span.peer_service)``, with ``duration_ms`` the latency the caller saw and
``status == "error"`` a failed call. A call that never reached the callee (a
``dependency_outage``) has a client span with ``attributes["error.type"] ==
"connection_refused"`` and no server span below it.

How the numbers follow the state of the tick:

* Traces start at the frontends at a rate following their request rate (``traces_per_tick``
  is the mean over a weekday), and also at any service that gets more requests than its
  callers send it (a ``traffic_surge`` on an API is outside traffic arriving there).
* Each request calls each callee ``calls`` times per the edge on average (the integer part
  always, the fraction with that probability); a call reaches the callee with probability
  ``rate / rate sent by the callers`` when that is well under one (a ``dependency_outage``),
  else always.
* A server span takes the service's log-normal latency (``latency_ms * exp(sigma * z)``). Its
  calls run one after another when they fit in that time, in parallel otherwise, and the span
  lasts at least until its last call returns plus its own work, so children always lie within
  their parents.
* Parents contain their children, so a service calling slower services (as ``search-api``
  calls ``catalog-service`` in the default topology) has longer server spans than its
  ``latency_ms`` alone: the simulator draws each service's latency independently.
* A server span fails with the service's error probability: a failed call fails its caller
  with probability ``error_propagation``, and the service's own failures are drawn so that
  both together match its ``error_rate``.

The output is a pure function of the simulator and the seed, on its own random streams.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from airis.events import Span, constructed_rows
from airis.sources.simulator.metrics import ServiceState, Simulator
from airis.sources.simulator.schedule import stream_rng
from airis.sources.simulator.topology import Topology

__all__ = ["DEFAULT_TRACES_PER_TICK", "SpanRow", "TraceSimulator"]

#: A span's fields, in `Span`'s order: trace_id, span_id, parent_span_id, service, name,
#: start, duration_ms, status, peer_service, attributes.
SpanRow = tuple[str, str, str | None, str, str, datetime, float, str, str | None, dict[str, str]]

DEFAULT_TRACES_PER_TICK = 5.0
#: Mean external load of a weekday as a fraction of its peak (mean of `seasonality`).
_MEAN_LOAD = 0.54
#: A service gets outside traffic when its rate exceeds what its callers send by this much,
#: and refuses calls when it falls short by this much; smaller gaps are the simulator's load
#: wobble (2 % sd), while surges, spikes and outages move the rate by 80 % or more.
_RATE_GAP = 0.15
#: Share of a server span's time spent on its own work (split before and after its calls).
_OWN_WORK = (0.1, 0.3)
#: Round-trip network time of a call, in milliseconds.
_NETWORK_MS = (0.2, 1.2)
#: A call that is refused waits this share of the caller's latency (connect timeout, retries).
_REFUSED_WAIT = (0.3, 0.6)
#: Far from the faults' (0-4) and the log simulator's streams: independent draws.
_STREAM_TRACES = 0x545243


def _stem(service: str) -> str:
    return service.split("-")[0].split("_")[0] or service


def _operations(topo: Topology) -> tuple[tuple[str, ...], ...]:
    """Span names of each service's operations, by role (low cardinality, like real ones).

    >>> from airis.sources.simulator.topology import default_topology
    >>> ops = _operations(default_topology())
    >>> ops[default_topology().index("order-db")]
    ('SELECT orders', 'INSERT orders', 'UPDATE orders')
    """
    out = []
    for name, role in zip(topo.services, topo.roles, strict=True):
        stem = _stem(name)
        plural = stem if stem.endswith("s") else f"{stem}s"
        cap = stem.capitalize()
        if role == "frontend":
            ops = ("GET /", "GET /product/:id", "GET /search", "POST /cart", "GET /checkout")
        elif role == "api":
            resources = [_stem(c) for c in topo.direct_callees(name)] or [stem]
            gets = [f"GET /api/v1/{r}s/:id" for r in resources]
            ops = (*gets, f"POST /api/v1/{resources[0]}s")
        elif role == "backend":
            ops = (
                f"{cap}Service/Get{cap}",
                f"{cap}Service/List{cap}s",
                f"{cap}Service/Update{cap}",
            )
        elif role == "database":
            ops = (f"SELECT {plural}", f"INSERT {plural}", f"UPDATE {plural}")
        elif role == "cache":
            ops = ("GET", "MGET", "SET")
        else:  # queue
            ops = (f"{stem}-events publish",)
        out.append(ops)
    return tuple(out)


@dataclass(slots=True)
class _Server:
    """A server span before it has ids and absolute times (offsets in ms from its start)."""

    service: int
    name: str
    duration: float
    error: bool
    calls: list[tuple[float, _Call]] = field(default_factory=list)  # (offset, call)


@dataclass(slots=True)
class _Call:
    """A client span and, when the call reached the callee, the callee's server span."""

    callee: int
    name: str
    duration: float
    error: bool
    server: _Server | None
    lag: float  # ms from the client span's start to the server span's start


@dataclass(frozen=True)
class _Tick:
    """Per-service probabilities of one tick."""

    latency: list[float]
    sigma: list[float]
    reach: list[float]  # a call arrives
    own_error: list[float]  # a server span fails by itself


class TraceSimulator:
    """Spans of a `Simulator`'s run, one batch per tick, consistent with its metrics.

    See the module docstring for the span convention and the behaviour. Every trace starts
    inside its tick ``[ts, ts + interval)``; its spans may end after the tick, and come in
    one batch, parents before children. ``ticks`` yields exactly one batch per state of
    ``sim.states()`` (an empty list when no trace started).

    Parameters
    ----------
    sim
        The run; its states drive the spans.
    traces_per_tick
        Mean traces started per tick over a weekday; the number at a tick follows traffic.
    seed
        Seed of the trace draws; ``None`` takes the simulator's.
    error_propagation
        Probability that a failed call fails the caller's server span.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> sim = Simulator(start=datetime(2024, 1, 3, 12, tzinfo=UTC), hours=0.1, seed=1, faults=[])
    >>> batches = list(TraceSimulator(sim).ticks())
    >>> len(batches) == sim.n_ticks
    True
    >>> spans = [s for b in batches for s in b]
    >>> root = spans[0]
    >>> root.service, root.parent_span_id, root.attributes["span.kind"]
    ('frontend', None, 'server')
    >>> edges = {(s.service, s.peer_service) for s in spans if s.peer_service}
    >>> ("frontend", "api-gateway") in edges and edges <= set(sim.topology.edges)
    True
    """

    def __init__(
        self,
        sim: Simulator,
        traces_per_tick: float = DEFAULT_TRACES_PER_TICK,
        seed: int | None = None,
        *,
        error_propagation: float = 0.3,
    ) -> None:
        if not (math.isfinite(traces_per_tick) and traces_per_tick >= 0):
            raise ValueError(
                f"TraceSimulator: traces_per_tick must be finite and >= 0, got {traces_per_tick!r}"
            )
        if not 0 <= error_propagation <= 1:
            raise ValueError(
                f"TraceSimulator: error_propagation must be in [0, 1], got {error_propagation!r}"
            )
        self.sim = sim
        self.traces_per_tick = float(traces_per_tick)
        self.seed = sim.seed if seed is None else int(seed)
        self.error_propagation = float(error_propagation)
        topo = sim.topology
        self._ops = _operations(topo)
        self._names = topo.services
        self._frontend = np.array([r == "frontend" for r in topo.roles])
        # (callee, whole calls, chance of one more) per caller
        self._callees: list[list[tuple[int, int, float]]] = [[] for _ in topo.services]
        for (caller, callee), c in zip(topo.edges, topo.calls, strict=True):
            whole = math.floor(c)
            self._callees[topo.index(caller)].append((topo.index(callee), whole, c - whole))
        # Requests of the whole system per tick at the weekday mean: a trace samples one.
        external = sim.peak_rate * _MEAN_LOAD * sim.interval_seconds
        self._sampling = self.traces_per_tick / external
        # Spans share their attributes' dicts (never changed once made): a batch of spans
        # pickles and unpickles each distinct one once.
        self._server_attributes = {"span.kind": "server"}
        self._client_attributes = [
            (
                {"span.kind": "client", "peer.service": callee},
                {"span.kind": "client", "peer.service": callee, "error.type": "connection_refused"},
            )
            for callee in topo.services
        ]

    def ticks(self) -> Iterator[list[Span]]:
        """One list of `Span` per tick of the simulator, in time order."""
        for rows in self.tick_rows():
            yield constructed_rows(Span, rows)

    def tick_rows(self) -> Iterator[list[SpanRow]]:
        """`ticks` as rows: each span's fields, in `Span`'s order (what `SpanBatch` columns
        are made of, without a `Span` per span)."""
        rng = stream_rng(self.seed, _STREAM_TRACES)
        rnd = random.Random(int(rng.integers(2**63)))
        for st in self.sim.states():
            yield self._tick(st, rng, rnd)

    def spans(self) -> Iterator[Span]:
        """The spans of `ticks`, one by one."""
        for batch in self.ticks():
            yield from batch

    def _tick(
        self, st: ServiceState, rng: np.random.Generator, rnd: random.Random
    ) -> list[SpanRow]:
        topo, interval = self.sim.topology, self.sim.interval_seconds
        rate = st.request_rate
        sent = topo._calls.T @ rate  # what the callers send each service
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(self._frontend | (sent <= 0), 1.0, rate / sent)
        reach = np.where(ratio < 1 - _RATE_GAP, ratio, 1.0)
        # Outside traffic: all of a frontend's, the unexplained excess of any other service.
        entering = np.where(self._frontend, rate, np.where(ratio > 1 + _RATE_GAP, rate - sent, 0))
        starts = rng.poisson(entering * interval * self._sampling)
        if not starts.any():
            return []
        tick = _Tick(
            latency=st.latency_ms.tolist(),
            sigma=st.latency_sigma.tolist(),
            reach=reach.tolist(),
            own_error=self._own_error(st.error_rate, reach).tolist(),
        )
        spans: list[SpanRow] = []
        for entry in np.flatnonzero(starts).tolist():
            for _ in range(int(starts[entry])):
                root = self._serve(entry, rnd.choice(self._ops[entry]), tick, rnd)
                offset_ms = rnd.random() * interval * 1000
                trace_id = f"{rnd.getrandbits(128):032x}"
                self._emit(root, st.ts, offset_ms, trace_id, None, rnd, spans)
        return spans

    def _own_error(self, error: np.ndarray, reach: np.ndarray) -> np.ndarray:
        """Probability that a server span fails by itself, so that in all it fails at ``error``.

        A call to ``j`` fails with ``c_j = 1 - reach_j * (1 - error_j)``; a server span
        fails through its calls with ``pi = 1 - prod_j (1 - p * c_j) ** calls_j``, so by
        itself it must fail with ``(error - pi) / (1 - pi)``.
        """
        call_fail = 1 - reach * (1 - error)
        log_ok = np.log1p(-np.minimum(self.error_propagation * call_fail, 1 - 1e-12))
        through_calls = 1 - np.exp(self.sim.topology._calls @ log_ok)
        own = (error - through_calls) / np.maximum(1 - through_calls, 1e-12)
        return np.clip(own, 0.0, 1.0)

    def _serve(self, i: int, name: str, tick: _Tick, rnd: random.Random) -> _Server:
        """The server span of service ``i`` and everything below it (relative times)."""
        draw = rnd.random
        latency = tick.latency[i] * math.exp(tick.sigma[i] * rnd.gauss(0.0, 1.0))
        calls: list[_Call] = []
        for j, whole, extra in self._callees[i]:
            for _ in range(whole + (draw() < extra)):
                calls.append(self._call(j, latency, tick, rnd))
        failed = draw() < tick.own_error[i]
        if not failed and any(c.error for c in calls):
            failed = draw() < self.error_propagation
        own = latency * _uniform(_OWN_WORK, draw)
        prefix = own * draw()
        server = _Server(i, name, latency, failed)
        if not calls:
            return server
        total = sum(c.duration for c in calls)
        if own + total <= latency:  # one after another, spread over the span
            gap = (latency - own - total) / (len(calls) + 1)
            at = prefix + gap
            for c in calls:
                server.calls.append((at, c))
                at += c.duration + gap
        else:  # in parallel, staggered slightly as they are sent
            for k, c in enumerate(calls):
                server.calls.append((prefix + 0.05 * k, c))
            end = max(at + c.duration for at, c in server.calls)
            server.duration = max(latency, end + (own - prefix))
        return server

    def _call(self, j: int, caller_latency: float, tick: _Tick, rnd: random.Random) -> _Call:
        name = rnd.choice(self._ops[j])
        if rnd.random() >= tick.reach[j]:
            wait = caller_latency * _uniform(_REFUSED_WAIT, rnd.random)
            return _Call(j, name, wait, True, None, 0.0)
        server = self._serve(j, name, tick, rnd)
        network = _uniform(_NETWORK_MS, rnd.random)
        return _Call(j, name, server.duration + network, server.error, server, network / 2)

    def _emit(
        self,
        server: _Server,
        tick_ts: datetime,
        start_ms: float,
        trace_id: str,
        parent: str | None,
        rnd: random.Random,
        out: list[SpanRow],
    ) -> None:
        """Append ``server`` and its subtree to ``out`` with ids and absolute times."""
        span_id = f"{rnd.getrandbits(64):016x}"
        service = self._names[server.service]
        # timedelta(0, 0, 0, ms) is timedelta(milliseconds=ms): keywords cost more per call.
        out.append((
            trace_id, span_id, parent, service, server.name,
            tick_ts + timedelta(0, 0, 0, start_ms), server.duration,
            "error" if server.error else "ok", None, self._server_attributes,
        ))  # fmt: skip
        for offset, call in server.calls:
            client_id = f"{rnd.getrandbits(64):016x}"
            callee = self._names[call.callee]
            attributes = self._client_attributes[call.callee][call.server is None]
            out.append((
                trace_id, client_id, span_id, service, call.name,
                tick_ts + timedelta(0, 0, 0, start_ms + offset), call.duration,
                "error" if call.error else "ok", callee, attributes,
            ))  # fmt: skip
            if call.server is not None:
                at = start_ms + offset + call.lag
                self._emit(call.server, tick_ts, at, trace_id, client_id, rnd, out)


def _uniform(bounds: tuple[float, float], draw: Callable[[], float]) -> float:
    """`random.Random.uniform` of ``bounds`` (the same number from the same draw), without
    its call and argument unpacking: millions of calls a simulated day."""
    low, high = bounds
    return low + (high - low) * draw()
