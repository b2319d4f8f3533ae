"""The incident memory on a real Qdrant in local mode (a directory under tmp_path)."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from airis.events import Anomaly, Incident
from airis.operators.incidents.incident_embedding import HashingEmbedder, incident_signature
from airis.settings import MemoryConfig, Settings
from airis.sinks.incident_memory import (
    CollectionMismatchError,
    IncidentMemory,
    SimilarIncident,
    format_similar,
    point_id,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EDGES = [("checkout", "payments"), ("payments", "db"), ("frontend", "search"), ("cart", "db")]


def make_incident(
    id: str,
    services: list[str],
    signals: list[str],
    root_cause: str | None,
    started_at: datetime = T0,
    summary: str = "",
) -> Incident:
    return Incident(
        id=id,
        status="resolved",
        started_at=started_at,
        updated_at=started_at,
        services=services,
        signals=signals,
        anomaly_count=len(signals),
        root_cause=root_cause,
        summary=summary,
    )


def anomaly(series: str, kind: str = "spike") -> Anomaly:
    service, signal = series.split("/")
    return Anomaly(
        id=series,
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


# Two occurrences of the same problem (db slow, payments failing) and one unrelated incident.
DB_SLOW = make_incident(
    "inc-db-1",
    ["checkout", "payments", "db"],
    ["db/latency_p99", "payments/error_rate"],
    "db",
    summary="db latency, payments errors",
)
DB_SLOW_AGAIN = make_incident(
    "inc-db-2",
    ["checkout", "payments", "db", "cart"],
    ["db/latency_p99", "payments/error_rate", "cart/error_rate"],
    "db",
    started_at=T0 + timedelta(days=3),
    summary="db latency again",
)
SEARCH_DIP = make_incident(
    "inc-search",
    ["frontend", "search"],
    ["search/throughput"],
    "search",
    started_at=T0 + timedelta(days=5),
    summary="search throughput dip",
)


def settings(path: Path) -> MemoryConfig:
    # Explicit None: an AIRIS_QDRANT_URL or AIRIS_OLLAMA_URL in the environment must not leak in.
    return Settings(data_dir=path, qdrant_url=None, qdrant_path=None, ollama_url=None).memory


def store_all(mem: IncidentMemory) -> None:
    mem.upsert(
        DB_SLOW,
        anomalies=[anomaly("db/latency_p99"), anomaly("payments/error_rate")],
        log_templates=["connection pool exhausted for <*>"],
        edges=EDGES,
    )
    mem.upsert(
        DB_SLOW_AGAIN,
        anomalies=[anomaly("db/latency_p99"), anomaly("cart/error_rate")],
        log_templates=["connection pool exhausted for <*>", "timeout after <*> ms"],
        edges=EDGES,
    )
    mem.upsert(
        SEARCH_DIP,
        anomalies=[anomaly("search/throughput", "dip")],
        log_templates=["index shard <*> missing"],
        edges=EDGES,
    )


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[IncidentMemory]:
    with IncidentMemory(settings(tmp_path)) as mem:
        store_all(mem)
        yield mem


def test_local_mode_lives_under_data_dir(memory: IncidentMemory, tmp_path: Path):
    assert (tmp_path / "qdrant").is_dir()
    assert memory.count() == 3


def test_similar_ranks_the_same_problem_first_and_excludes_itself(memory: IncidentMemory):
    results = memory.similar("inc-db-1")
    assert [r.incident_id for r in results] == ["inc-db-2", "inc-search"]
    best = results[0]
    assert best == SimilarIncident(
        incident_id="inc-db-2",
        score=best.score,
        services=["checkout", "payments", "db", "cart"],
        root_cause="db",
        started_at=DB_SLOW_AGAIN.started_at,
        summary="db latency again",
        similarity=best.similarity,
    )
    assert best.score > results[1].score
    assert best.similarity > 0.5 > results[1].similarity


def test_k_limits_the_results(memory: IncidentMemory):
    assert [r.incident_id for r in memory.similar("inc-db-1", k=1)] == ["inc-db-2"]
    with pytest.raises(ValueError, match="k must be"):
        memory.similar("inc-db-1", k=0)


def test_service_filter(memory: IncidentMemory):
    assert [r.incident_id for r in memory.similar("inc-db-1", service="search")] == ["inc-search"]
    assert [r.incident_id for r in memory.similar("inc-search", service="cart")] == ["inc-db-2"]
    assert memory.similar("inc-db-1", service="nowhere") == []


def test_since_filter(memory: IncidentMemory):
    since = T0 + timedelta(days=4)
    assert [r.incident_id for r in memory.similar("inc-db-1", since=since)] == ["inc-search"]
    # Inclusive bound: an incident started exactly at `since` is kept.
    at = DB_SLOW_AGAIN.started_at
    assert [r.incident_id for r in memory.similar("inc-db-1", since=at, k=1)] == ["inc-db-2"]
    with pytest.raises(ValueError, match="timezone-aware"):
        memory.similar("inc-db-1", since=datetime(2025, 1, 1))


def test_score_threshold_applies_to_dense_similarity(memory: IncidentMemory):
    assert memory.similar("inc-db-1", score_threshold=0.999) == []
    kept = memory.similar("inc-db-1", score_threshold=0.5)
    assert [r.incident_id for r in kept] == ["inc-db-2"]
    assert kept[0].similarity >= 0.5


def test_score_threshold_also_gates_the_keyword_list(memory: IncidentMemory):
    # Shares only one log template with inc-db-1: found by keywords, far in the dense space.
    memory.upsert(
        make_incident("inc-queue", ["mailer", "queue"], ["queue/depth"], "queue"),
        log_templates=["connection pool exhausted for <*>"],
    )
    found = {r.incident_id: r.similarity for r in memory.similar("inc-db-1", k=10)}
    assert set(found) == {"inc-db-2", "inc-search", "inc-queue"}
    assert found["inc-queue"] < 0.5
    kept = memory.similar("inc-db-1", k=10, score_threshold=0.5)
    assert [r.incident_id for r in kept] == ["inc-db-2"]


def test_get_and_unknown_ids(memory: IncidentMemory):
    payload = memory.get("inc-search")
    assert payload["id"] == "inc-search"
    assert payload["services"] == ["frontend", "search"]
    assert payload["signals"] == ["search/throughput"]
    assert payload["root_cause"] == "search"
    assert payload["status"] == "resolved"
    assert payload["summary"] == "search throughput dip"
    assert payload["started_at"] == SEARCH_DIP.started_at.isoformat()
    assert payload["started_at_ts"] == SEARCH_DIP.started_at.timestamp()
    assert payload["signature"] == incident_signature(
        SEARCH_DIP,
        anomalies=[anomaly("search/throughput", "dip")],
        log_templates=["index shard <*> missing"],
        edges=EDGES,
    )
    with pytest.raises(KeyError, match="'inc-nope' is not in the incident memory"):
        memory.get("inc-nope")
    with pytest.raises(KeyError, match="inc-nope"):
        memory.similar("inc-nope")


def test_reupsert_is_idempotent(memory: IncidentMemory):
    updated = DB_SLOW.model_copy(update={"status": "open", "summary": "reopened"})
    memory.upsert(updated, anomalies=[anomaly("db/latency_p99")], edges=EDGES)
    memory.upsert(updated, anomalies=[anomaly("db/latency_p99")], edges=EDGES)
    assert memory.count() == 3
    assert memory.get("inc-db-1")["summary"] == "reopened"
    assert point_id("inc-db-1") == point_id("inc-db-1") != point_id("inc-db-2")


def test_upsert_many_matches_upsert(tmp_path: Path, memory: IncidentMemory):
    with IncidentMemory(settings(tmp_path / "other")) as other:
        other.upsert_many([(i, (), (), ()) for i in (DB_SLOW, DB_SLOW_AGAIN, SEARCH_DIP)])
        other.upsert_many([])
        assert other.count() == 3
        assert other.similar("inc-db-1")[0].incident_id == "inc-db-2"


def test_reopening_the_path_keeps_the_data(tmp_path: Path):
    with IncidentMemory(settings(tmp_path)) as mem:
        store_all(mem)
        before = mem.similar("inc-db-1")
    with IncidentMemory(settings(tmp_path)) as mem:
        assert mem.count() == 3
        after = mem.similar("inc-db-1")
    # Same ranking; the cosine only to float32 precision (vectors are stored as float32).
    assert [(r.incident_id, r.score) for r in after] == [(r.incident_id, r.score) for r in before]
    assert [r.similarity for r in after] == pytest.approx([r.similarity for r in before])


def test_explicit_qdrant_path(tmp_path: Path):
    where = tmp_path / "elsewhere"
    s = Settings(data_dir=tmp_path / "data", qdrant_path=where, qdrant_url=None, ollama_url=None)
    with IncidentMemory(s.memory) as mem:
        mem.upsert(DB_SLOW)
        assert mem.count() == 1
    assert where.is_dir()
    assert not (tmp_path / "data" / "qdrant").exists()


def test_a_second_open_of_the_same_path_is_refused_clearly(memory: IncidentMemory, tmp_path):
    with pytest.raises(RuntimeError, match="one process per directory"):
        IncidentMemory(settings(tmp_path))


def test_dimension_mismatch_is_a_clear_error(tmp_path: Path):
    with IncidentMemory(settings(tmp_path), embedder=HashingEmbedder(dim=256)) as mem:
        mem.upsert(DB_SLOW)
    with pytest.raises(CollectionMismatchError, match=r"256-dimensional.*64-dimensional"):
        IncidentMemory(settings(tmp_path), embedder=HashingEmbedder(dim=64))
    # The failed open released the directory: the right embedder opens it again.
    with IncidentMemory(settings(tmp_path), embedder=HashingEmbedder(dim=256)) as mem:
        assert mem.count() == 1


def test_format_similar_prints_a_table(memory: IncidentMemory):
    console = Console(record=True, width=160, color_system=None)
    format_similar(memory.similar("inc-db-1"), console)
    text = console.export_text()
    assert "inc-db-2" in text and "inc-search" in text
    assert text.index("inc-db-2") < text.index("inc-search")
    assert "db latency again" in text


def test_another_process_is_refused_while_the_path_is_open(memory: IncidentMemory, tmp_path):
    code = (
        "import sys; from airis.settings import Settings;"
        "from airis.sinks.incident_memory import IncidentMemory\n"
        "try:\n"
        "    IncidentMemory(Settings(data_dir=sys.argv[1], qdrant_url=None).memory)\n"
        "except RuntimeError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert "already open elsewhere" in out


def test_an_unreachable_server_is_reported_without_its_api_key(tmp_path: Path, caplog):
    # A real connection attempt to a closed port; the API key must appear nowhere.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://:s3cret@127.0.0.1:{port}"
    cfg = Settings(data_dir=tmp_path, qdrant_url=url, ollama_url=None)
    with (
        caplog.at_level(logging.DEBUG),
        pytest.warns(UserWarning, match="insecure"),  # qdrant-client: an API key over http
        pytest.raises(ConnectionError, match=rf"Qdrant at http://:\*\*\*@127.0.0.1:{port}") as err,
    ):
        IncidentMemory(cfg.memory)
    assert "s3cret" not in str(err.value)
    assert "s3cret" not in caplog.text
