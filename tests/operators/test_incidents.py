"""IncidentGrouper: anomalies close in time and topology make one incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airis.events import Anomaly
from airis.operators.incidents import IncidentGrouper

T0 = datetime(2026, 11, 25, tzinfo=UTC)
GRAPH = {"web": {"api"}, "api": {"db", "cache"}, "db": set(), "cache": set(), "mail": set()}


def anomaly(service: str, minute: float, score: float = 0.95, signal: str = "cpu") -> Anomaly:
    start = T0 + timedelta(minutes=minute)
    return Anomaly(
        id=f"{service}-{minute}", service=service, signal=signal, kind="spike",
        window_start=start, window_end=start + timedelta(seconds=10), score=score,
        observed=10, expected=1, lower=0, upper=2, state="seasonal", detector="robust/level",
    )  # fmt: skip


def test_a_propagating_fault_is_one_incident_with_onsets_and_peaks() -> None:
    grouper = IncidentGrouper(GRAPH, confirm_after=1)
    for a in [anomaly("db", 0), anomaly("api", 1, 0.97), anomaly("web", 2), anomaly("db", 3, 1)]:
        grouper.add_one(a)
    (incident,) = grouper.close_all()
    assert set(incident.services) == {"db", "api", "web"}
    assert incident.services["db"].onset == T0 and incident.services["db"].peak.score == 1
    assert incident.anomaly_count == 4 and incident.started_at == T0


def test_unrelated_services_and_distant_times_make_separate_incidents() -> None:
    grouper = IncidentGrouper(GRAPH, gap_seconds=300, confirm_after=1)
    for a in [anomaly("db", 0), anomaly("mail", 1), anomaly("db", 30)]:
        grouper.add_one(a)
    incidents = grouper.close_all()
    assert sorted((sorted(i.services), i.started_at.minute) for i in incidents) == [
        (["db"], 0), (["db"], 30), (["mail"], 1),
    ]  # fmt: skip


def test_a_bridging_anomaly_merges_two_incidents_into_the_older() -> None:
    grouper = IncidentGrouper(GRAPH, max_hops=1, confirm_after=1)
    first = grouper.add_one(anomaly("db", 0))
    grouper.add_one(anomaly("web", 1))  # two hops from db: a separate incident
    assert len(grouper.open_incidents()) == 2
    merged = grouper.add_one(anomaly("api", 2))  # next to both
    assert merged.id == first.id and set(merged.services) == {"db", "web", "api"}
    assert len(grouper.open_incidents()) == 1


def test_incidents_resolve_after_a_quiet_gap_and_time_alone_groups_without_a_graph() -> None:
    grouper = IncidentGrouper(None, gap_seconds=120, confirm_after=1)
    grouper.add_one(anomaly("db", 0))
    grouper.add_one(anomaly("mail", 1))
    assert grouper.close_due(T0 + timedelta(minutes=2)) == []
    (done,) = grouper.close_due(T0 + timedelta(minutes=3, seconds=1))
    assert set(done.services) == {"db", "mail"}


def test_an_incident_no_signal_confirms_is_dropped_when_it_closes() -> None:
    grouper = IncidentGrouper(GRAPH, confirm_after=3)
    grouper.add_one(anomaly("mail", 0))  # a lone spike
    for minute in (0, 0.2, 0.4):
        grouper.add_one(anomaly("db", minute))
    (kept,) = grouper.close_all()
    assert set(kept.services) == {"db"} and kept.signal_windows == {"db/cpu": 3}
