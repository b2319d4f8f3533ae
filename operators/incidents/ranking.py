"""An open incident as the `Incident` that is stored and published: its services and lasting
signals, its new log templates, and its root-cause candidates ranked with their evidence
(`rank_open_incident`, `to_incident`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from airis.events import Anomaly, Incident, RcaCandidate
from airis.operators.incidents.grouping import (
    AUXILIARY_WINDOWS,
    OpenIncident,
    excess_of,
    is_auxiliary_key,
    template_services,
)
from airis.operators.incidents.rca import ChangeEvent, RcaConfig, ServiceAnomaly, rank_incident

__all__ = ["LOAD_SIGNALS", "MAX_TEMPLATES", "rank_open_incident", "to_incident"]


def rank_open_incident(
    incident: OpenIncident,
    graph: Mapping[str, Iterable[str]] | None = None,
    changes: Iterable[tuple[str, datetime]] = (),
    top_k: int | None = 5,
    config: RcaConfig | None = None,
    min_windows: int = 1,
) -> list[RcaCandidate]:
    """Rank the incident's services as root causes (`airis.operators.incidents.rca`), best first.

    Every service of the incident anomalous in at least ``min_windows`` windows of one metric
    signal is a candidate (no single symptom is assumed: a fault can surface at several
    callers); briefer ones still count as dependencies that may explain a candidate. A
    service's persistence is the windows of its most persistent metric signal; the lasting
    log and trace signals are named in its evidence but not scored (scoring them changed no
    ranking on ``airis eval rca``: the metrics of the same service already tell). ``changes``
    are ``(service, time)`` change events (deploys).

    A service's ``excess`` is its largest latency rise (`ServiceEvidence.excess`): a caller's
    latency contains its dependencies', so the ranking compares these rises rather than
    z-scores between a caller and its slow dependency (see `airis.operators.incidents.rca`,
    topology); this takes every service's latency in one unit.

    Latency and errors spread from a dependency up to its callers, but load spreads down:
    when most of the incident's services show a request-rate anomaly, the cause sits upstream,
    so the ranking walks the call graph the other way (callers count as dependencies). The
    rises still compare: a caller's latency contains a busier callee's slowdown, so on the
    reversed graph an anomalous caller at least as much slower explains its callee, and the
    ranking moves up towards where the load came from (measured on ``airis eval rca``, seeds
    1-8: a traffic surge at the frontend ranked 3rd without, 1st with).
    """
    deps = {s: set(c) for s, c in (graph or {}).items()}
    if _load_led(incident):
        deps = _reversed(deps)
    for service in incident.services:
        deps.setdefault(service, set())
    windows = _windows_per_service(incident)
    anomalies = {
        service: ServiceAnomaly(
            onset=evidence.onset.timestamp(),
            magnitude=_magnitude(evidence.peak),
            detail=_detail(evidence.peak),
            persistence=float(windows.get(service, 0)),
            notes=_log_notes(incident, service),
            excess=excess_of(evidence),
        )
        for service, evidence in incident.services.items()
    }
    events = [ChangeEvent(service, ts.timestamp()) for service, ts in changes]
    # Brief anomalies stay as context (a dependency that blipped) but are no candidates.
    eligible = {s for s, n in windows.items() if n >= min_windows} or None
    return rank_incident(
        incident.id,
        deps,
        anomalies,
        changes=events,
        top_k=top_k,
        config=config,
        eligible=eligible,
    )


def to_incident(
    incident: OpenIncident,
    candidates: list[RcaCandidate],
    status: str = "resolved",
    auxiliary_windows: int = AUXILIARY_WINDOWS,
) -> Incident:
    """The `Incident` event of an incident (with its ranked candidates).

    Its signals are the metric ones and the log and trace ones anomalous in at least
    ``auxiliary_windows`` windows: measured on ``airis eval rca``, most log signals that join
    for fewer are one-window blips of services the fault did not touch, which would make two
    occurrences of one problem look different to the incident memory. For the same reason,
    its log templates are those of its services and of the services of its signals: a
    template that joined through such a blip is left out with the blip.
    """
    services = sorted(incident.services, key=lambda s: incident.services[s].onset)
    root = candidates[0].service if candidates else None
    signals = sorted(_signature_signals(incident, auxiliary_windows))
    involved = set(services) | {key.split("/", 1)[0] for key in signals}
    of_service = template_services(incident)
    templates = [
        text
        for template_id, text in incident.log_templates.items()
        if of_service.get(template_id, services[0] if services else "") in involved
    ]
    auxiliary = sum(map(is_auxiliary_key, signals))
    summary = (
        f"{len(services)} services, {len(signals)} signals ({auxiliary} from logs or traces), "
        f"{incident.anomaly_count} anomalous windows; most likely cause: {root or 'unknown'}"
    )
    return Incident(
        id=incident.id,
        status=status,
        started_at=incident.started_at,
        updated_at=incident.last_seen,
        ended_at=incident.last_seen if status == "resolved" else None,
        services=services,
        signals=signals,
        anomaly_count=incident.anomaly_count,
        root_cause=root,
        summary=summary,
        candidates=candidates,
        log_templates=sorted(templates)[:MAX_TEMPLATES],
    )


def _signature_signals(incident: OpenIncident, auxiliary_windows: int) -> list[str]:
    return [
        key
        for key, windows in incident.signal_windows.items()
        if windows >= auxiliary_windows or not is_auxiliary_key(key)
    ]


#: New log templates kept per incident (a burst of new messages is one fact, not a hundred).
MAX_TEMPLATES = 20

#: Signals that measure offered load: their anomalies travel from callers to callees.
LOAD_SIGNALS = frozenset({"request_rate"})


def _load_led(incident: OpenIncident) -> bool:
    loaded = {key.split("/", 1)[0] for key in incident.signal_windows if key.split("/", 1)[1]
              in LOAD_SIGNALS}  # fmt: skip
    return len(loaded) * 2 > len(incident.services)


def _windows_per_service(incident: OpenIncident) -> dict[str, int]:
    """Per service, the anomalous windows of its most persistent signal."""
    out: dict[str, int] = {}
    for key, count in incident.signal_windows.items():
        if not is_auxiliary_key(key):
            service = key.split("/", 1)[0]
            out[service] = max(out.get(service, 0), count)
    return out


def _log_notes(incident: OpenIncident, service: str) -> tuple[str, ...]:
    """What the service's own logs or traces did, when that lasted (`AUXILIARY_WINDOWS`)."""
    lasting = sorted(
        (key.split("/", 1)[1], windows)
        for key, windows in incident.signal_windows.items()
        if key.split("/", 1)[0] == service
        and is_auxiliary_key(key)
        and windows >= AUXILIARY_WINDOWS
    )
    return tuple(f"{signal} anomalous too, in {windows} windows" for signal, windows in lasting)


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
