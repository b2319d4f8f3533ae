"""Root-cause ranking: topology, onset, correlation, change events, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from airis.events import RcaCandidate
from airis.operators.incidents.rca import (
    FEATURES,
    ChangeEvent,
    RcaConfig,
    RcaWeights,
    ServiceAnomaly,
    lagged_correlation,
    rank_incident,
    rank_root_causes,
)

GRAPH = {"frontend": {"api"}, "api": {"db", "cache"}, "db": set(), "cache": set()}


def _db_incident() -> dict[str, ServiceAnomaly]:
    """db fails first; api and frontend follow; the cache stays healthy."""
    base = np.zeros(10)
    db = base.copy()
    db[3:] = [8, 9, 9, 8, 9, 9, 8]
    api = np.roll(db, 1) * 0.8
    front = np.roll(db, 2) * 0.6
    return {
        "frontend": ServiceAnomaly(onset=120.0, magnitude=5.0, series=front),
        "api": ServiceAnomaly(onset=60.0, magnitude=6.5, series=api),
        "db": ServiceAnomaly(onset=20.0, magnitude=9.0, series=db, detail="latency 5.2× expected"),
        "cache": ServiceAnomaly(onset=None, magnitude=0.4, series=np.zeros(10)),
    }


def test_db_ranks_first_with_evidence() -> None:
    ranked = rank_root_causes(GRAPH, _db_incident(), symptom="frontend")
    assert [c.service for c in ranked] == ["db", "api", "frontend"]
    top = ranked[0]
    text = " | ".join(top.evidence)
    assert "deepest anomalous dependency" in text and "healthy" in text
    assert "first anomalous service: 100 s before frontend" in text
    assert "latency 5.2× expected" in text
    assert 0.0 <= top.score <= 1.0
    assert set(top.features) == {
        "topology", "onset", "magnitude", "correlation", "change", "persistence",
    }  # fmt: skip
    assert top.features["topology"] == 1.0 and top.features["onset"] == 1.0


def test_deepest_with_healthy_dependencies_named() -> None:
    # api itself is the cause: its dependencies db and cache are healthy.
    anomalies = {
        "frontend": ServiceAnomaly(onset=30.0, magnitude=4.0),
        "api": ServiceAnomaly(onset=0.0, magnitude=7.0),
        "db": ServiceAnomaly(onset=None, magnitude=0.5),
    }
    ranked = rank_root_causes(GRAPH, anomalies, symptom="frontend")
    assert ranked[0].service == "api"
    assert ranked[0].evidence[0] == (
        "deepest anomalous dependency: its own dependencies (cache, db) are healthy"
    )


def test_unrelated_anomalous_service_is_not_a_candidate() -> None:
    graph = {**GRAPH, "batch": {"queue"}, "queue": set()}
    anomalies = {**_db_incident(), "queue": ServiceAnomaly(onset=0.0, magnitude=50.0)}
    ranked = rank_root_causes(graph, anomalies, symptom="frontend")
    assert "queue" not in [c.service for c in ranked]
    assert ranked[0].service == "db"


def test_deploy_breaks_a_tie() -> None:
    # Two sibling dependencies look exactly alike; only cache had a deploy before its onset.
    anomalies = {
        "api": ServiceAnomaly(onset=100.0, magnitude=5.0),
        "db": ServiceAnomaly(onset=60.0, magnitude=8.0),
        "cache": ServiceAnomaly(onset=60.0, magnitude=8.0),
    }
    without = rank_root_causes(GRAPH, anomalies, symptom="api")
    assert [c.score for c in without[:2]] == [without[0].score] * 2
    assert without[0].service == "cache"  # tie broken by name: c < d
    deploy = [ChangeEvent("db", ts=60.0 - 180.0)]
    ranked = rank_root_causes(GRAPH, anomalies, symptom="api", changes=deploy)
    assert ranked[0].service == "db"
    assert ranked[0].features["change"] == pytest.approx(1 - 180 / 1800)
    assert "deployed 3 min before onset" in ranked[0].evidence
    # A deploy after the onset, or long before it, is no evidence.
    late = [ChangeEvent("db", ts=61.0), ChangeEvent("db", ts=60.0 - 7200)]
    assert rank_root_causes(GRAPH, anomalies, symptom="api", changes=late)[0].service == "cache"


def test_lagged_correlation_finds_the_lag() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=200)
    y = np.roll(x, 2) + 0.1 * rng.normal(size=200)
    r, lag = lagged_correlation(x, y, max_lag=3)
    assert lag == 2 and r > 0.95
    r0, _ = lagged_correlation(x, rng.normal(size=200), max_lag=3)
    assert r0 < 0.3
    assert lagged_correlation(np.ones(10), y[:10]) == (0.0, 0)
    assert lagged_correlation(x[:2], y[:2]) == (0.0, 0)


def test_correlation_feature_prefers_the_series_that_leads_the_symptom() -> None:
    rng = np.random.default_rng(3)
    driver = rng.normal(size=60)
    symptom = np.roll(driver, 1)
    graph = {"web": {"a", "b"}, "a": set(), "b": set()}
    anomalies = {
        "web": ServiceAnomaly(onset=10.0, magnitude=5.0, series=symptom),
        "a": ServiceAnomaly(onset=5.0, magnitude=6.0, series=rng.normal(size=60)),
        "b": ServiceAnomaly(onset=5.0, magnitude=6.0, series=driver),
    }
    ranked = rank_root_causes(graph, anomalies, symptom="web")
    assert ranked[0].service == "b"
    assert ranked[0].features["correlation"] > 0.99
    assert any("at lag 1" in e for e in ranked[0].evidence)


def test_deterministic_and_incident_records() -> None:
    first = rank_incident("inc-9", GRAPH, _db_incident(), symptom="frontend")
    again = rank_incident(
        "inc-9", dict(reversed(GRAPH.items())), _db_incident(), symptom="frontend"
    )
    assert first == again
    assert all(isinstance(c, RcaCandidate) for c in first)
    assert [c.rank for c in first] == [1, 2, 3]
    assert first[0].service == "db" and first[0].incident_id == "inc-9"
    assert len(rank_incident("inc-9", GRAPH, _db_incident(), symptom="frontend", top_k=1)) == 1


def test_no_anomaly_no_candidate_and_bad_config() -> None:
    assert rank_root_causes(GRAPH, {"db": ServiceAnomaly()}, symptom="frontend") == []
    with pytest.raises(ValueError, match="not all 0"):
        RcaWeights(topology=-0.1)
    with pytest.raises(ValueError, match="not all 0"):
        RcaWeights(**dict.fromkeys(FEATURES, 0.0))
    with pytest.raises(ValueError, match="max_lag"):
        RcaConfig(max_lag=-1)


def test_a_persistent_service_outranks_a_bystander_that_blipped() -> None:
    # Two leaves of the incident, alike but for how long they stayed anomalous.
    graph = {"web": {"a", "b"}, "a": set(), "b": set()}
    anomalies = {
        "web": ServiceAnomaly(onset=10.0, magnitude=5.0, persistence=40),
        "a": ServiceAnomaly(onset=5.0, magnitude=6.0, persistence=2, detail="cpu blip"),
        "b": ServiceAnomaly(onset=5.0, magnitude=6.0, persistence=40, detail="memory trend"),
    }
    ranked = rank_root_causes(graph, anomalies)
    assert [c.service for c in ranked][:2] == ["b", "a"]
    assert ranked[0].features["persistence"] == 1.0 and ranked[1].features["persistence"] == 0.05
    assert "anomalous for 40 windows (longest: 40)" in ranked[0].evidence
    without = {s: ServiceAnomaly(a.onset, a.magnitude) for s, a in anomalies.items()}
    assert rank_root_causes(graph, without)[0].service == "a"  # a tie, broken by name


def test_a_brief_or_later_dependency_anomaly_does_not_explain_its_caller() -> None:
    graph = {"api": {"db"}, "db": set()}

    def topology(db: ServiceAnomaly) -> float:
        api = ServiceAnomaly(onset=100.0, magnitude=5.0, persistence=60)
        ranked = rank_root_causes(graph, {"api": api, "db": db})
        return next(c for c in ranked if c.service == "api").features["topology"]

    # A db as anomalous, as long and before api explains api entirely.
    assert topology(ServiceAnomaly(onset=90.0, magnitude=5.0, persistence=60)) == 0.0
    # One window of db cannot explain an hour of api.
    assert topology(ServiceAnomaly(onset=90.0, magnitude=5.0, persistence=1)) > 0.98
    # Nor can a db that turned anomalous ten minutes after api.
    later = rank_root_causes(
        graph,
        {"api": ServiceAnomaly(onset=100.0, magnitude=5.0),
         "db": ServiceAnomaly(onset=700.0, magnitude=9.0)},
    )  # fmt: skip
    api = next(c for c in later if c.service == "api")
    assert api.features["topology"] == 1.0
    assert "its anomalous dependencies (db) turned anomalous only after it" in api.evidence


def test_features_without_data_drop_out_of_the_score() -> None:
    # No series and no persistence: the score is the weighted mean of the other features.
    anomalies = {"db": ServiceAnomaly(onset=0.0, magnitude=4.0)}
    (only,) = rank_root_causes(GRAPH, anomalies)
    assert only.features["correlation"] == 0.0 and only.features["persistence"] == 0.0
    w = RcaWeights()
    assert only.score == pytest.approx(
        (w.topology + w.onset + w.magnitude) / (w.topology + w.onset + w.magnitude + w.change)
    )


def _latency_chain(excess: bool) -> dict[str, ServiceAnomaly]:
    """web → api → db → disk: the disk is 0.3 s slower and every caller inherits it.

    The callers serve steadier averages (more requests), so their z-scores are higher than
    the disk's although their rise is the disk's.
    """
    rises = {"web": 0.31, "api": 0.30, "db": 0.30, "disk": 0.30}
    zs = {"web": 40.0, "api": 55.0, "db": 14.0, "disk": 12.0}
    return {
        name: ServiceAnomaly(onset=0.0, magnitude=zs[name], excess=rises[name] if excess else None)
        for name in rises
    }


def test_a_deep_latency_root_whose_rise_every_caller_inherits_ranks_first() -> None:
    graph = {"web": {"api"}, "api": {"db", "cache"}, "db": {"disk"}, "disk": set()}
    ranked = rank_root_causes(graph, _latency_chain(excess=True), symptom="web")
    assert ranked[0].service == "disk"
    # Each caller's rise is its callee's: explained, no topology credit.
    features = {c.service: c.features["topology"] for c in ranked}
    assert features["api"] == 0.0 and features["db"] == 0.0 and features["disk"] == 1.0
    # On z-scores alone, api's anomaly looks stronger than anything below it: it would win.
    on_z = rank_root_causes(graph, _latency_chain(excess=False), symptom="web")
    assert on_z[0].service == "api"


def test_a_callee_whose_rise_is_a_fraction_of_its_callers_does_not_explain_it() -> None:
    # pay is 200 ms slower; its database, on a steadier baseline, has a higher z for 1 ms.
    graph = {"web": {"pay"}, "pay": {"sql"}, "sql": set()}
    anomalies = {
        "web": ServiceAnomaly(onset=0.0, magnitude=8.0, excess=0.04),
        "pay": ServiceAnomaly(onset=0.0, magnitude=10.0, excess=0.2),
        "sql": ServiceAnomaly(onset=0.0, magnitude=12.0, excess=0.001),
    }
    ranked = rank_root_causes(graph, anomalies, symptom="web")
    pay = next(c for c in ranked if c.service == "pay")
    assert pay.features["topology"] == pytest.approx(1 - 0.001 / 0.2)
    assert "its own rise is not explained by its anomalous dependencies (sql): 0.2 vs 0.001" in (
        pay.evidence
    )
    # On z-scores, sql "explains" pay entirely and pay gets no topology credit.
    on_z = {s: ServiceAnomaly(a.onset, a.magnitude) for s, a in anomalies.items()}
    pay_z = next(c for c in rank_root_causes(graph, on_z, symptom="web") if c.service == "pay")
    assert pay_z.features["topology"] == 0.0
