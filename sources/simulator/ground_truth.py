"""The ground truth of a simulated run: its faults, deploys and harmless spikes as JSON-able
records, and which incident a fault became.

* **Faults** (`Fault`, eight kinds in `FAULT_KINDS`) change their root service and propagate
  (`airis.sources.simulator.effects`); a fault's ``affected`` lists the services whose metrics
  it visibly changes.
* **Deploys** (`Deploy`) are change events; they change no metric. A ``bad_deploy`` fault
  starts with a faulty deploy and ends with its rollback.
* **Spikes** (`Spike`) are harmless single-tick blips, a few per service per day, kept away
  from the faults of their service; they must not raise alerts.
* `incident_of` matches a fault to the incident of the dataflow that overlaps it most.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from airis.events import Incident

__all__ = [
    "FAULT_KINDS",
    "FAULT_SIGNALS",
    "GRACE",
    "Deploy",
    "Fault",
    "Schedule",
    "Spike",
    "as_utc",
    "incident_of",
    "iso",
    "overlaps",
    "parse_ts",
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


_SPIKE_SIGNALS: dict[str, tuple[str, ...]] = {
    "traffic": ("request_rate", "cpu"),
    "latency": ("latency_p50", "latency_p95", "latency_p99"),
    "errors": ("error_rate",),
    "cpu": ("cpu",),
}


def as_utc(ts: datetime, name: str) -> datetime:
    if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {ts!r}")
    return ts.astimezone(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_ts(value: str | datetime, name: str) -> datetime:
    return as_utc(value if isinstance(value, datetime) else datetime.fromisoformat(value), name)


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
        object.__setattr__(self, "start", as_utc(self.start, "Fault.start"))
        object.__setattr__(self, "end", as_utc(self.end, "Fault.end"))
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
            "start": iso(self.start),
            "end": iso(self.end),
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
            start=parse_ts(data["start"], "Fault.start"),
            end=parse_ts(data["end"], "Fault.end"),
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
        object.__setattr__(self, "ts", as_utc(self.ts, "Deploy.ts"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "ts": iso(self.ts),
            "service": self.service,
            "version": self.version,
            "faulty": self.faulty,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deploy:
        """Inverse of `to_dict`."""
        return cls(
            parse_ts(data["ts"], "Deploy.ts"),
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
            "ts": iso(self.ts),
            "service": self.service,
            "kind": self.kind,
            "magnitude": self.magnitude,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Spike:
        """Inverse of `to_dict`."""
        return cls(
            parse_ts(data["ts"], "Spike.ts"),
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


#: How long after a fault ends an incident that starts still counts as its.
GRACE = timedelta(minutes=10)


def overlaps(incident: Incident, fault: Fault) -> bool:
    """Whether the incident overlaps the fault (with `GRACE` after its end)."""
    return incident.started_at <= fault.end + GRACE and incident.updated_at >= fault.start


def incident_of(fault: Fault, incidents: Sequence[Incident]) -> Incident | None:
    """The incident overlapping the fault with the most of its affected services' signals."""
    affected = set(fault.affected)
    best, best_count = None, 0
    for incident in incidents:
        if not overlaps(incident, fault):
            continue
        count = sum(signal.split("/", 1)[0] in affected for signal in incident.signals)
        if count > best_count:
            best, best_count = incident, count
    return best
