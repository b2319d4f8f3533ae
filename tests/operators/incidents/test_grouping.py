"""IncidentGrouper: anomalies close in time and topology make one incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airis.events import Anomaly, LogTemplate
from airis.operators.incidents.grouping import IncidentGrouper
from airis.operators.incidents.ranking import rank_open_incident, to_incident

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


def test_a_log_or_trace_anomaly_alone_opens_no_incident() -> None:
    grouper = IncidentGrouper(GRAPH, confirm_after=1)
    for minute, signal in enumerate(["log_error_ratio", "log_new_templates", "trace_errors"]):
        assert grouper.add_one(anomaly("db", minute, signal=signal)) is None
    assert grouper.open_incidents() == [] and grouper.close_all() == []


def test_a_log_anomaly_during_an_incident_joins_it_without_growing_it() -> None:
    grouper = IncidentGrouper(GRAPH, gap_seconds=300, confirm_after=1)
    opened = grouper.add_one(anomaly("db", 0))
    joined = grouper.add_one(anomaly("api", 2, signal="log_error_ratio"))  # a caller of db
    assert joined is opened and joined.last_seen == T0  # it does not keep the incident open
    assert grouper.add_one(anomaly("mail", 3, signal="log_error_ratio")) is None  # unrelated
    assert grouper.add_one(anomaly("db", 20, signal="log_error_ratio")) is None  # too late
    (incident,) = grouper.close_all()
    assert set(incident.services) == {"db"} and set(incident.auxiliary) == {"api"}
    assert incident.signals == {"db/cpu", "api/log_error_ratio"}
    assert incident.auxiliary["api"].onset == T0 + timedelta(minutes=2)


def test_log_anomalies_neither_merge_nor_confirm_incidents() -> None:
    grouper = IncidentGrouper(GRAPH, max_hops=1, confirm_after=2)
    grouper.add_one(anomaly("db", 0))
    grouper.add_one(anomaly("web", 1))  # two hops from db: a separate incident
    for minute in (2, 2.2, 2.4):  # next to both, but only logs: no merge
        grouper.add_one(anomaly("api", minute, signal="log_error_ratio"))
    assert len(grouper.open_incidents()) == 2
    assert grouper.close_all() == []  # three log windows confirm nothing


def test_a_batch_closes_incidents_on_metric_time_only() -> None:
    grouper = IncidentGrouper(GRAPH, gap_seconds=300, confirm_after=1)
    grouper.add_many([anomaly("db", 0), anomaly("db", 1)])
    # The log input runs 30 minutes ahead: its anomalies must not close the open incident.
    assert grouper.add_many([anomaly("db", 31, signal="log_rate")]) == []
    assert grouper.add_many([anomaly("api", 2, signal="log_error_ratio")]) == []
    (closed,) = grouper.add_many([anomaly("mail", 40)])
    assert set(closed.services) == {"db"} and set(closed.auxiliary) == {"api"}


def test_ranking_prefers_the_persistent_root_over_a_dependency_that_blipped() -> None:
    # api leaks memory for twenty windows; its dependency db blips once, first and strongly.
    grouper = IncidentGrouper(GRAPH, confirm_after=3)
    grouper.add_one(anomaly("db", 0, signal="latency_p50"))
    for i in range(20):
        grouper.add_one(anomaly("api", 0.5 + i / 6, signal="memory"))
    (incident,) = grouper.close_all()
    blind = rank_open_incident(incident, GRAPH)  # every service is a candidate
    ranked = rank_open_incident(incident, GRAPH, min_windows=3)
    assert [c.service for c in ranked] == ["api"]  # one window of db makes no candidate
    assert "anomalous for 20 windows (longest: 20)" in ranked[0].evidence
    assert {c.service for c in blind} == {"api", "db"}
    api = next(c for c in blind if c.service == "api")
    assert api.features["topology"] > 0.9  # db's blip explains little of api's 20 windows


def test_log_evidence_is_named_in_the_ranking_when_it_lasted() -> None:
    grouper = IncidentGrouper(GRAPH, confirm_after=3)
    for minute in (0, 0.2, 0.4, 0.6):
        grouper.add_one(anomaly("db", minute, signal="error_rate"))
        grouper.add_one(anomaly("db", minute, signal="log_error_ratio"))
    grouper.add_one(anomaly("api", 0.2, signal="error_rate"))
    grouper.add_one(anomaly("api", 0.4, signal="log_new_templates"))  # once: not evidence
    (incident,) = grouper.close_all()
    ranked = {c.service: c for c in rank_open_incident(incident, GRAPH)}
    assert "log_error_ratio anomalous too, in 4 windows" in ranked["db"].evidence
    assert not any("log_" in e for e in ranked["api"].evidence)
    event = to_incident(incident, list(ranked.values()))
    assert "db/log_error_ratio" in event.signals and "api/log_new_templates" not in event.signals


def template(service: str, minute: float, text: str, tid: str | None = None) -> LogTemplate:
    seen = T0 + timedelta(minutes=minute)
    return LogTemplate(service=service, template_id=tid or text, template=text,
                       first_seen=seen, last_seen=seen, count=1)  # fmt: skip


def test_new_templates_of_involved_services_join_the_open_incident() -> None:
    grouper = IncidentGrouper(GRAPH, gap_seconds=300, confirm_after=1, template_lead_seconds=60)
    grouper.add_one(anomaly("db", 10))
    grouper.add_one(anomaly("api", 12))
    joined = [
        grouper.add_template(template("db", 9.5, "disk <*> full")),  # just before: its cause
        grouper.add_template(template("api", 13, "timeout calling db")),
        grouper.add_template(template("mail", 12, "smtp <*> refused")),  # not involved
        grouper.add_template(template("db", 5, "checkpoint <*> done")),  # older: not new
        grouper.add_template(template("db", 30, "vacuum <*>")),  # after the incident's time
    ]
    assert [len(j) for j in joined] == [1, 1, 0, 0, 0]
    (incident,) = grouper.close_all()
    event = to_incident(incident, [])
    assert event.log_templates == ["disk <*> full", "timeout calling db"]


def test_a_template_that_joined_through_a_log_blip_leaves_the_event_with_the_blip() -> None:
    grouper = IncidentGrouper(GRAPH, gap_seconds=300, confirm_after=1)
    grouper.add_one(anomaly("db", 0))
    grouper.add_one(anomaly("api", 1, signal="log_error_ratio"))  # one window: a blip
    grouper.add_one(anomaly("cache", 1, signal="log_error_ratio"))  # three windows: evidence
    grouper.add_one(anomaly("cache", 1.2, signal="log_error_ratio"))
    grouper.add_one(anomaly("cache", 1.4, signal="log_error_ratio"))
    for service in ("db", "api", "cache"):
        assert grouper.add_template(template(service, 2, f"{service} failed <*>"))
    (incident,) = grouper.close_all()
    event = to_incident(incident, [])
    assert "api/log_error_ratio" not in event.signals
    assert event.log_templates == ["cache failed <*>", "db failed <*>"]


def test_templates_survive_a_merge_and_are_capped_in_the_event() -> None:
    grouper = IncidentGrouper(GRAPH, max_hops=1, confirm_after=1)
    grouper.add_one(anomaly("db", 0))
    grouper.add_one(anomaly("web", 1))  # two hops from db: a separate incident for now
    for i in range(30):
        grouper.add_template(template("web", 1, f"error {i:02d}"))
    merged = grouper.add_one(anomaly("api", 2))  # bridges both
    assert len(merged.log_templates) == 30
    assert to_incident(merged, []).log_templates == [f"error {i:02d}" for i in range(20)]


def test_trace_anomalies_of_a_service_without_metrics_open_and_confirm_incidents() -> None:
    """A new user's first hour: spans and logs of two services, no metrics at all."""
    graph = {"frontend": {"payments"}, "payments": set()}
    grouper = IncidentGrouper(graph, confirm_after=3, metric_services=())
    for minute in range(3):
        grouper.add_one(anomaly("payments", minute, signal="trace_error_ratio"))
        grouper.add_one(anomaly("frontend", minute + 0.5, signal="trace_error_ratio"))
    (incident,) = grouper.close_all()
    assert set(incident.services) == {"payments", "frontend"}
    assert incident.promoted == {"payments/trace_error_ratio", "frontend/trace_error_ratio"}


def test_trace_anomalies_stay_auxiliary_on_services_with_metrics() -> None:
    grouper = IncidentGrouper(GRAPH, confirm_after=3, metric_services=())
    grouper.add_metric_service("db")
    for minute in range(3):
        assert grouper.add_one(anomaly("db", minute, signal="trace_error_ratio")) is None
    assert grouper.close_all() == []


def test_without_knowing_the_metric_services_trace_anomalies_are_auxiliary() -> None:
    grouper = IncidentGrouper(GRAPH, confirm_after=1)
    assert grouper.add_one(anomaly("db", 0, signal="trace_error_ratio")) is None


def latency(service: str, minute: float, observed: float, expected: float, **kw) -> Anomaly:
    """A latency anomaly of ``observed`` ms against ``expected`` ms (band: ±1 ms)."""
    return anomaly(service, minute, signal=kw.pop("signal", "latency_p99"), **kw).model_copy(
        update={"observed": observed, "expected": expected,
                "lower": expected - 1, "upper": expected + 1}
    )  # fmt: skip


def test_evidence_keeps_the_largest_latency_rise_across_anomalies_and_merges() -> None:
    grouper = IncidentGrouper({"web": {"db"}, "db": set(), "api": {"db"}}, confirm_after=1)
    grouper.add_one(latency("web", 0, 130, 100, score=0.99))  # +30 ms, the score's peak
    grouper.add_one(latency("web", 1, 190, 100, score=0.95))  # +90 ms, lower score
    grouper.add_one(anomaly("db", 1, signal="error_rate"))  # not additive: no excess
    grouper.add_one(latency("db", 2, 90, 100))  # a drop is no rise
    open_ = grouper.open_incidents()[0]
    assert open_.services["web"].excess == 90 and open_.services["web"].peak.observed == 130
    assert open_.services["db"].excess is None
    other = IncidentGrouper(confirm_after=1)
    other.add_one(latency("db", 0, 150, 100, signal="latency_p50"))
    open_.absorb(other.open_incidents()[0])
    assert open_.services["db"].excess == 50


def test_ranking_compares_latency_rises_not_z_scores() -> None:
    """api got 200 ms slower (z 100); its database 1.2 ms (z 80: a steady baseline). The
    database's millisecond explains nothing of api's 200: api is the cause."""
    grouper = IncidentGrouper(GRAPH, confirm_after=3)
    for i in range(4):
        grouper.add_one(latency("db", i / 6, 2.2, 1.0, score=0.99))
        grouper.add_one(latency("api", i / 6, 300, 100, score=0.99))
    (incident,) = grouper.close_all()
    for service, width in (("db", 0.015), ("api", 2.0)):
        peak = incident.services[service].peak
        incident.services[service].peak = peak.model_copy(
            update={"lower": peak.expected - width, "upper": peak.expected + width}
        )
    ranked = rank_open_incident(incident, GRAPH)
    assert [c.service for c in ranked] == ["api", "db"]
    assert ranked[0].features["topology"] > 0.99
    assert any("not explained by its anomalous dependencies" in e for e in ranked[0].evidence)
    # Without the rises (a pre-excess snapshot), db's larger z would explain api away.
    for evidence in incident.services.values():
        evidence.excess = None
    assert rank_open_incident(incident, GRAPH)[0].service == "db"


def test_a_load_led_incident_blames_the_caller_whose_rise_contains_its_callees() -> None:
    """A surge at web: every service is busier, api and db slower. In z, api's rise looks
    largest (a tight baseline); in milliseconds web's contains api's, which contains db's."""
    grouper = IncidentGrouper(GRAPH, confirm_after=3)
    for i in range(4):
        for service, observed in (("web", 260.0), ("api", 160.0), ("db", 60.0)):
            grouper.add_one(anomaly(service, i / 6, signal="request_rate"))
            grouper.add_one(latency(service, i / 6 + 0.01, observed, 50.0, score=0.99))
    (incident,) = grouper.close_all()
    for service, width in (("web", 40.0), ("api", 5.0), ("db", 2.0)):
        peak = incident.services[service].peak
        incident.services[service].peak = peak.model_copy(
            update={"lower": peak.expected - width, "upper": peak.expected + width}
        )
    ranked = rank_open_incident(incident, GRAPH)
    assert ranked[0].service == "web"
    assert {c.service: c.features["topology"] for c in ranked[1:]} == {"api": 0.0, "db": 0.0}
    for evidence in incident.services.values():
        evidence.excess = None
    assert rank_open_incident(incident, GRAPH)[0].service != "web"
