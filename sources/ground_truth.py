"""Matching the dataflow's incidents to the simulator's ground truth (its faults)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from airis.events import Incident
from airis.sources.faults import Fault

__all__ = ["GRACE", "incident_of", "overlaps"]

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
