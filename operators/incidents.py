"""Grouping anomalies into incidents: one problem, one incident, not N alerts.

`IncidentGrouper` reads anomalies in event-time order. An anomaly joins an open incident when
it is close in time (its window starts within ``gap`` of the incident's latest anomaly) and
close in the topology (its service is in the incident, or within ``max_hops`` calls of one of
its services, in either direction: a fault spreads to callers and callees). When an anomaly
fits several open incidents they merge into the oldest. An incident resolves once ``gap`` of
event time passes without an anomaly for it. Without a topology, time alone decides.

Each incident keeps, per service, when it first turned anomalous (onset) and its strongest
anomaly, which is what root-cause ranking (`airis.operators.rca`) needs.

Examples
--------
>>> from datetime import UTC, datetime, timedelta
>>> from airis.events import Anomaly
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> def anomaly(service, minute, score=0.95):
...     start = t0 + timedelta(minutes=minute)
...     return Anomaly(id=f"{service}{minute}", service=service, signal="latency_p99",
...                    kind="spike", window_start=start, window_end=start + timedelta(seconds=10),
...                    score=score, observed=9, expected=1, lower=0, upper=2, state="seasonal",
...                    detector="robust/level")
>>> graph = {"web": {"api"}, "api": {"db"}, "db": set(), "mail": set()}
>>> grouper = IncidentGrouper(graph, max_hops=2, confirm_after=1)
>>> for a in [anomaly("db", 0), anomaly("api", 1), anomaly("web", 2), anomaly("mail", 3)]:
...     _ = grouper.add_one(a)
>>> sorted(sorted(i.services) for i in grouper.open_incidents())
[['api', 'db', 'web'], ['mail']]
>>> [sorted(i.services) for i in grouper.close_due(t0 + timedelta(minutes=20))]
[['api', 'db', 'web'], ['mail']]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from airis.events import Anomaly, Incident, RcaCandidate, event_id
from airis.operators.rca import ChangeEvent, ServiceAnomaly, rank_incident

__all__ = [
    "IncidentGrouper",
    "OpenIncident",
    "ServiceEvidence",
    "rank_open_incident",
    "to_incident",
]


@dataclass(slots=True)
class ServiceEvidence:
    """What an incident knows about one of its services."""

    onset: datetime
    peak: Anomaly
    anomalies: int = 1


@dataclass(slots=True)
class OpenIncident:
    """An incident being built: its anomalies per service, and when it started and last grew."""

    id: str
    started_at: datetime
    last_seen: datetime
    services: dict[str, ServiceEvidence] = field(default_factory=dict)
    signal_windows: dict[str, int] = field(default_factory=dict)
    """Anomalous windows per ``service/signal``."""
    anomaly_count: int = 0

    @property
    def signals(self) -> set[str]:
        return set(self.signal_windows)

    def confirmed(self, windows: int) -> bool:
        """Whether some signal was anomalous in at least ``windows`` windows."""
        return max(self.signal_windows.values(), default=0) >= windows

    def add(self, anomaly: Anomaly) -> None:
        seen = self.services.get(anomaly.service)
        if seen is None:
            self.services[anomaly.service] = ServiceEvidence(anomaly.window_start, anomaly)
        else:
            seen.anomalies += 1
            if anomaly.score > seen.peak.score:
                seen.peak = anomaly
        key = f"{anomaly.service}/{anomaly.signal}"
        self.signal_windows[key] = self.signal_windows.get(key, 0) + 1
        self.anomaly_count += 1
        self.last_seen = max(self.last_seen, anomaly.window_start)

    def absorb(self, other: OpenIncident) -> None:
        for service, evidence in other.services.items():
            mine = self.services.get(service)
            if mine is None:
                self.services[service] = evidence
                continue
            mine.onset = min(mine.onset, evidence.onset)
            mine.anomalies += evidence.anomalies
            if evidence.peak.score > mine.peak.score:
                mine.peak = evidence.peak
        for key, count in other.signal_windows.items():
            self.signal_windows[key] = self.signal_windows.get(key, 0) + count
        self.anomaly_count += other.anomaly_count
        self.started_at = min(self.started_at, other.started_at)
        self.last_seen = max(self.last_seen, other.last_seen)


class IncidentGrouper:
    """Group a time-ordered stream of anomalies into incidents.

    Parameters
    ----------
    graph
        Caller → callees of every known service; None or empty: group by time only.
    gap_seconds
        Event time without anomalies after which an incident resolves, and the largest gap
        between an anomaly and its incident's latest one.
    max_hops
        How far in the call graph (either direction) an anomaly's service may be from an
        incident's services to join it.
    confirm_after
        Anomalous windows one signal needs before its incident counts: incidents that never
        get there (a lone spike) are dropped when they close; their anomalies stay stored.
    """

    def __init__(
        self,
        graph: Mapping[str, Iterable[str]] | None = None,
        gap_seconds: float = 300.0,
        max_hops: int = 3,
        confirm_after: int = 3,
    ) -> None:
        self.gap = timedelta(seconds=gap_seconds)
        self.max_hops = max_hops
        self.confirm_after = confirm_after
        self._neighbours = _undirected(graph or {})
        self._open: list[OpenIncident] = []

    def add_one(self, anomaly: Anomaly) -> OpenIncident:
        """Put ``anomaly`` into its incident (new, existing or merged) and return it."""
        fits = [i for i in self._open if self._fits(i, anomaly)]
        if not fits:
            incident = OpenIncident(
                id=event_id("incident", anomaly.service, anomaly.window_start),
                started_at=anomaly.window_start,
                last_seen=anomaly.window_start,
            )
            self._open.append(incident)
        else:
            incident = min(fits, key=lambda i: i.started_at)
            for other in fits:
                if other is not incident:
                    incident.absorb(other)
                    self._open.remove(other)
        incident.add(anomaly)
        return incident

    def open_incidents(self) -> list[OpenIncident]:
        return list(self._open)

    def close_due(self, now: datetime) -> list[OpenIncident]:
        """Resolve and return the incidents quiet since ``now - gap`` (event time)."""
        due = [i for i in self._open if now - i.last_seen > self.gap]
        self._open = [i for i in self._open if i not in due]
        return [i for i in due if i.confirmed(self.confirm_after)]

    def close_all(self) -> list[OpenIncident]:
        """Resolve every open incident (end of input)."""
        due, self._open = self._open, []
        return [i for i in due if i.confirmed(self.confirm_after)]

    def _fits(self, incident: OpenIncident, anomaly: Anomaly) -> bool:
        if anomaly.window_start - incident.last_seen > self.gap:
            return False
        if not self._neighbours or anomaly.service in incident.services:
            return True
        near = self._within_hops(anomaly.service)
        return any(service in near for service in incident.services)

    def _within_hops(self, service: str) -> set[str]:
        seen = {service}
        frontier = deque([(service, 0)])
        while frontier:
            node, hops = frontier.popleft()
            if hops == self.max_hops:
                continue
            for nxt in self._neighbours.get(node, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append((nxt, hops + 1))
        return seen


def _undirected(graph: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for caller, callees in graph.items():
        out.setdefault(caller, set())
        for callee in callees:
            out[caller].add(callee)
            out.setdefault(callee, set()).add(caller)
    return out


def rank_open_incident(
    incident: OpenIncident,
    graph: Mapping[str, Iterable[str]] | None = None,
    changes: Iterable[tuple[str, datetime]] = (),
    top_k: int | None = 5,
) -> list[RcaCandidate]:
    """Rank the incident's services as root causes (`airis.operators.rca`), best first.

    Every service of the incident is a candidate (no single symptom is assumed: a fault can
    surface at several callers); ``changes`` are ``(service, time)`` change events (deploys).

    Latency and errors spread from a dependency up to its callers, but load spreads down:
    when most of the incident's services show a request-rate anomaly, the cause sits upstream,
    so the ranking walks the call graph the other way (callers count as dependencies).
    """
    deps = {s: set(c) for s, c in (graph or {}).items()}
    if _load_led(incident):
        deps = _reversed(deps)
    for service in incident.services:
        deps.setdefault(service, set())
    anomalies = {
        service: ServiceAnomaly(
            onset=evidence.onset.timestamp(),
            magnitude=_magnitude(evidence.peak),
            detail=_detail(evidence.peak),
        )
        for service, evidence in incident.services.items()
    }
    events = [ChangeEvent(service, ts.timestamp()) for service, ts in changes]
    return rank_incident(incident.id, deps, anomalies, changes=events, top_k=top_k)


def to_incident(
    incident: OpenIncident, candidates: list[RcaCandidate], status: str = "resolved"
) -> Incident:
    """The `Incident` event of an incident (with its ranked candidates)."""
    services = sorted(incident.services, key=lambda s: incident.services[s].onset)
    root = candidates[0].service if candidates else None
    summary = (
        f"{len(services)} services, {len(incident.signals)} signals, "
        f"{incident.anomaly_count} anomalous windows; most likely cause: {root or 'unknown'}"
    )
    return Incident(
        id=incident.id,
        status=status,
        started_at=incident.started_at,
        updated_at=incident.last_seen,
        ended_at=incident.last_seen if status == "resolved" else None,
        services=services,
        signals=sorted(incident.signals),
        anomaly_count=incident.anomaly_count,
        root_cause=root,
        summary=summary,
        candidates=candidates,
    )


#: Signals that measure offered load: their anomalies travel from callers to callees.
LOAD_SIGNALS = frozenset({"request_rate"})


def _load_led(incident: OpenIncident) -> bool:
    loaded = {key.split("/", 1)[0] for key in incident.signal_windows if key.split("/", 1)[1]
              in LOAD_SIGNALS}  # fmt: skip
    return len(loaded) * 2 > len(incident.services)


def _reversed(graph: Mapping[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {s: set() for s in graph}
    for caller, callees in graph.items():
        for callee in callees:
            out.setdefault(callee, set()).add(caller)
    return out


def _magnitude(peak: Anomaly) -> float:
    """How far outside its band the peak was, in band widths (≥ 0)."""
    width = max(peak.upper - peak.expected, peak.expected - peak.lower, 1e-9)
    return abs(peak.observed - peak.expected) / width


def _detail(peak: Anomaly) -> str:
    return (
        f"{peak.signal} {peak.kind}: observed {peak.observed:.4g} vs expected "
        f"{peak.expected:.4g} (score {peak.score:.3f})"
    )
