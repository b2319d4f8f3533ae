"""Logs through the metrics dataflow: templates mined, log signals detected with the metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bytewax.testing import TestingSink, run_main

from airis.batches import unbatched
from airis.events import Alert, Anomaly, Incident, LogRecord, LogTemplate, MetricPoint
from airis.flows.metrics_anomaly import build_flow
from airis.settings import Settings
from airis.signals import LOG_SIGNALS
from airis.sources.iterable_source import simulated_logs_source, simulator_source
from airis.sources.simulator import recent_simulation

#: Fixed simulated hours: what the detectors see at a fault depends on the hour of day
#: (at the 04:00 hour of 2026-12-05 these faults raised no single incident / trace alert).
END = datetime(2026, 12, 5, 3, tzinfo=UTC)


@pytest.mark.slow
def test_simulated_logs_become_signals_templates_and_anomalies_during_faults() -> None:
    sim = recent_simulation(4, seed=3, end=END)
    out: list = []
    flow = build_flow(
        simulator_source(sim), TestingSink(out), Settings(), sim.topology.call_graph(),
        logs=simulated_logs_source(sim),
    )  # fmt: skip
    run_main(flow)

    records = [e for e in unbatched(out) if isinstance(e, LogRecord)]
    signals = [e for e in unbatched(out) if isinstance(e, MetricPoint) and e.signal in LOG_SIGNALS]
    templates = [e for e in out if isinstance(e, LogTemplate)]
    assert records and templates and signals
    assert {p.service for p in signals} == set(sim.services)
    fault_windows = [(f.start, f.end, set(f.affected)) for f in sim.faults]

    def during_fault(service: str, ts) -> bool:
        return any(s <= ts <= e and service in svc for s, e, svc in fault_windows)

    log_anomalies = [e for e in out if isinstance(e, Anomaly) and e.signal in LOG_SIGNALS]
    assert any(during_fault(a.service, a.window_start) for a in log_anomalies)
    # single anomalous windows happen; what pages someone (an alert) must be a fault
    log_alerts = [e for e in out if isinstance(e, Alert) and e.signal in LOG_SIGNALS]
    assert log_alerts and all(during_fault(a.service, a.starts_at) for a in log_alerts)


@pytest.mark.slow
def test_new_log_templates_of_an_incident_s_services_become_part_of_it() -> None:
    sim = recent_simulation(4, seed=3, end=END)  # an error burst on user-service
    out: list = []
    remembered: list = []
    flow = build_flow(
        simulator_source(sim), TestingSink(out), Settings(), sim.topology.call_graph(),
        logs=simulated_logs_source(sim), memory=TestingSink(remembered),
    )  # fmt: skip
    run_main(flow)

    [incident] = [e for e in out if isinstance(e, Incident)]
    assert [i for _key, i in remembered] == [incident]  # and to the incident memory
    assert incident.log_templates
    involved = set(incident.services) | {s.split("/")[0] for s in incident.signals}
    earliest = incident.started_at - timedelta(minutes=1)
    latest = incident.updated_at + timedelta(minutes=5)
    for text in incident.log_templates:  # new while it was open, on a service involved
        assert any(
            t.template == text and t.service in involved and earliest <= t.first_seen <= latest
            for t in out
            if isinstance(t, LogTemplate)
        ), text
    assert any("Internal Server Error" in t for t in incident.log_templates)
