"""Incident signatures, hashing embeddings, keyword vectors and the Ollama fallback."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from airis.events import Anomaly, Incident
from airis.operators.incidents.incident_embedding import (
    Embedder,
    HashingEmbedder,
    incident_signature,
    sparse_terms,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def incident(id: str, services: list[str], signals: list[str], root_cause: str | None) -> Incident:
    return Incident(
        id=id,
        status="resolved",
        started_at=T0,
        updated_at=T0,
        services=services,
        signals=signals,
        anomaly_count=len(signals),
        root_cause=root_cause,
    )


def anomaly(service: str, signal: str, kind: str = "spike") -> Anomaly:
    return Anomaly(
        id=f"{service}/{signal}",
        service=service,
        signal=signal,
        kind=kind,
        window_start=T0,
        window_end=T0,
        score=0.99,
        observed=10.0,
        expected=1.0,
        lower=0.0,
        upper=2.0,
        state="recent",
        detector="test",
    )


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


DB_OUTAGE = incident(
    "a", ["checkout", "payments", "db"], ["db/latency_p99", "payments/error_rate"], "db"
)
DB_OUTAGE_AGAIN = incident(
    "b", ["checkout", "db", "payments", "cart"], ["db/latency_p99", "cart/error_rate"], "db"
)
SEARCH_DIP = incident("c", ["search", "frontend"], ["search/throughput"], "search")
LOGS = ["connection pool exhausted for <*>", "timeout after <*> ms"]
EDGES = [("checkout", "payments"), ("payments", "db"), ("frontend", "search"), ("cart", "db")]


def test_signature_is_canonical_and_complete():
    sig = incident_signature(
        DB_OUTAGE,
        anomalies=[anomaly("db", "latency_p99"), anomaly("payments", "error_rate")],
        log_templates=LOGS,
        edges=EDGES,
    )
    assert sig.splitlines() == [
        "service: checkout",
        "service: db",
        "service: payments",
        "signal: db/latency_p99",
        "signal: payments/error_rate",
        "anomaly: db/latency_p99 spike",
        "anomaly: payments/error_rate spike",
        "root_cause: db",
        "log: connection pool exhausted for <*>",
        "log: timeout after <*> ms",
        # Only edges among involved services: frontend->search and cart->db are not.
        "edge: checkout -> payments",
        "edge: payments -> db",
    ]
    shuffled = incident(
        "other-id", list(reversed(DB_OUTAGE.services)), list(reversed(DB_OUTAGE.signals)), "db"
    )
    again = incident_signature(
        shuffled,
        anomalies=[anomaly("payments", "error_rate"), anomaly("db", "latency_p99")] * 2,
        log_templates=[*reversed(LOGS), "  timeout   after <*> ms "],
        edges=list(reversed(EDGES)),
    )
    assert again == sig  # order, duplicates, whitespace and the id do not matter


def test_signature_of_a_bare_incident():
    bare = incident("x", ["svc"], [], None)
    assert incident_signature(bare) == "service: svc"


def test_hashing_embedding_is_normalised_and_deterministic():
    emb = HashingEmbedder(dim=256)
    texts = [incident_signature(i) for i in (DB_OUTAGE, DB_OUTAGE_AGAIN, SEARCH_DIP)]
    first = emb.embed(texts)
    assert emb.embed(texts) == first
    assert HashingEmbedder(dim=256).embed(texts) == first
    for vec in first:
        assert len(vec) == 256
        assert math.isclose(dot(vec, vec), 1.0, rel_tol=1e-9)
    assert emb.embed([""]) == [[0.0] * 256]
    assert emb.embed([]) == []


def test_hashing_embedding_is_the_same_in_another_process():
    # str hashes are salted per process; the embedding must not be (vectors are stored).
    code = (
        "from airis.operators.incidents.incident_embedding import HashingEmbedder as H;"
        "print(repr(H(dim=32).embed(['service: db\\nroot_cause: db'])[0]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    ).stdout
    here = HashingEmbedder(dim=32).embed(["service: db\nroot_cause: db"])[0]
    assert eval(out) == here  # repr of a list of floats round-trips exactly


def test_similar_signatures_are_closer_than_dissimilar_ones():
    emb = HashingEmbedder()
    a, b, c = emb.embed(
        [
            incident_signature(DB_OUTAGE, log_templates=LOGS, edges=EDGES),
            incident_signature(DB_OUTAGE_AGAIN, log_templates=LOGS[:1], edges=EDGES),
            incident_signature(SEARCH_DIP, log_templates=["index shard <*> missing"], edges=EDGES),
        ]
    )
    assert dot(a, b) > 0.5
    assert abs(dot(a, c)) < 0.2
    assert abs(dot(b, c)) < 0.2


def test_labels_keep_facts_apart():
    # The same word as a root cause and as a mere service are different facts.
    emb = HashingEmbedder()
    rc, svc, rc_again = emb.embed(["root_cause: db", "service: db", "root_cause: db"])
    assert dot(rc, rc_again) == pytest.approx(1.0)
    assert abs(dot(rc, svc)) < 0.5


def test_sparse_terms_are_sorted_unique_uint32_term_frequencies():
    text = incident_signature(DB_OUTAGE, log_templates=LOGS)
    indices, values = sparse_terms(text)
    assert indices == sorted(set(indices))
    assert len(values) == len(indices)
    assert all(0 <= i < 2**32 for i in indices)
    assert all(v >= 1.0 for v in values)
    assert sparse_terms(text) == (indices, values)
    _, val = sparse_terms("log: retry retry retry")
    assert sorted(val) == [2.0, 3.0]  # "retry" thrice, the bigram "retry retry" twice


def test_embedders_satisfy_the_protocol():
    assert isinstance(HashingEmbedder(), Embedder)
    with pytest.raises(ValueError, match="at least 8"):
        HashingEmbedder(dim=4)


def test_the_signature_carries_the_lasting_log_signals_of_an_incident() -> None:
    from datetime import timedelta

    from airis.operators.incidents.grouping import IncidentGrouper
    from airis.operators.incidents.ranking import rank_open_incident, to_incident

    def anomaly(service: str, signal: str, second: int) -> Anomaly:
        start = T0 + timedelta(seconds=second)
        return Anomaly(
            id=f"{service}{signal}{second}", service=service, signal=signal, kind="spike",
            window_start=start, window_end=start + timedelta(seconds=10), score=0.99,
            observed=9, expected=1, lower=0, upper=2, state="seasonal", detector="robust/level",
        )  # fmt: skip

    graph = {"checkout": {"payments"}, "payments": set()}
    grouper = IncidentGrouper(graph, confirm_after=3)
    for second in range(0, 60, 10):
        grouper.add_one(anomaly("payments", "error_rate", second))
        grouper.add_one(anomaly("payments", "log_error_ratio", second))
    grouper.add_one(anomaly("checkout", "log_error_ratio", 30))  # a one-window blip
    (open_incident,) = grouper.close_all()
    event = to_incident(open_incident, rank_open_incident(open_incident, graph))
    signature = incident_signature(event)
    assert "signal: payments/log_error_ratio" in signature.splitlines()
    assert "checkout" not in signature  # the blip is not part of what characterises it
    assert "1 from logs or traces" in event.summary
    assert "log_error_ratio anomalous too, in 6 windows" in event.candidates[0].evidence
