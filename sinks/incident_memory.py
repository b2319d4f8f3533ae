"""Incident memory: every incident's signature as vectors in Qdrant, to find similar past ones.

One point per incident in the collection ``airis_incidents``: a named dense vector (the
embedder's, cosine) and a named sparse vector (keywords, IDF-weighted by Qdrant), with the
incident's facts as payload. `IncidentMemory.similar` runs a hybrid query: the dense and the
sparse neighbours of the incident, each under the same payload filter, fused by reciprocal
rank (RRF), so an incident that shares rare keywords (a log template, a root cause) and is
close in meaning ranks first.

Storage: Qdrant's local mode under ``data_dir/qdrant`` by default (a pure-Python brute-force
index in one directory, usable by ONE process at a time: fine for thousands of incidents),
or a Qdrant server when ``AIRIS_QDRANT_URL`` is set; the code is the same.

Idempotence: the point id is a UUID derived from the incident id, so writing an incident
again (an update, a replay after a restart) replaces its point.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException
from rich.console import Console
from rich.table import Table

from airis.events import Anomaly, Incident
from airis.models.embedders import make_embedder
from airis.operators.incidents.incident_embedding import (
    SIGNATURE_VERSION,
    Embedder,
    incident_signature,
    sparse_terms,
)
from airis.settings import MemoryConfig, redact

logger = logging.getLogger(__name__)

__all__ = [
    "COLLECTION",
    "CollectionMismatchError",
    "IncidentMemory",
    "SimilarIncident",
    "format_similar",
    "point_id",
]

COLLECTION = "airis_incidents"
DENSE = "dense"
SPARSE = "sparse"
#: Candidates each prefetch hands to the fusion, per result asked for (RRF needs more than k
#: from each list so that an incident ranked a little lower in one list can still win).
PREFETCH_FACTOR = 4
MIN_PREFETCH = 20
# A fixed namespace: the same incident id gives the same point id in every process.
_NAMESPACE = uuid.UUID("5f0c7a34-6b1e-4c1f-9a43-0b7d2f3c8e11")


def point_id(incident_id: str) -> str:
    """The Qdrant point id of an incident: a UUID derived from its id (stable everywhere).

    >>> point_id("inc-1") == point_id("inc-1") != point_id("inc-2")
    True
    """
    return str(uuid.uuid5(_NAMESPACE, incident_id))


class CollectionMismatchError(RuntimeError):
    """The existing collection was built with vectors that the current embedder cannot query."""


@dataclass(frozen=True, slots=True)
class SimilarIncident:
    """One past incident similar to the one asked about.

    ``score`` is the fused (RRF) score, which only orders results; ``similarity`` is the
    cosine of the two dense vectors in [-1, 1], the number to show a person.
    """

    incident_id: str
    score: float
    services: list[str]
    root_cause: str | None
    started_at: datetime
    summary: str
    similarity: float = 0.0


class IncidentMemory:
    """Past incidents in Qdrant: `upsert` them, ask for the `similar` ones.

    >>> import tempfile
    >>> from datetime import UTC, datetime
    >>> t = datetime(2025, 1, 1, tzinfo=UTC)
    >>> def inc(i, services, rc):
    ...     return Incident(id=i, status="resolved", started_at=t, updated_at=t,
    ...                     services=services, signals=[f"{rc}/errors"], anomaly_count=1,
    ...                     root_cause=rc)
    >>> from pathlib import Path
    >>> d = tempfile.mkdtemp()
    >>> with IncidentMemory(MemoryConfig(qdrant_path=Path(d))) as mem:
    ...     mem.upsert(inc("a", ["cart", "db"], "db"))
    ...     mem.upsert(inc("b", ["search"], "search"))
    ...     mem.upsert(inc("c", ["cart", "db", "web"], "db"))
    ...     [s.incident_id for s in mem.similar("a", k=1)]
    ['c']
    >>> import shutil; shutil.rmtree(d)
    """

    def __init__(self, config: MemoryConfig, embedder: Embedder | None = None) -> None:
        self._embedder = embedder if embedder is not None else make_embedder(config)
        if config.qdrant_url is not None:
            url = config.qdrant_url.get_secret_value()
            self._where = redact(url)
            base, api_key = _split_api_key(url)
            # No version check: it runs in a background thread and only warns (at a random
            # later moment when the server is down); the first request below reports that.
            self._client = QdrantClient(url=base, api_key=api_key, check_compatibility=False)
            self._local = False
        else:
            path = config.qdrant_path
            path.mkdir(parents=True, exist_ok=True)
            self._where = str(path)
            try:
                self._client = QdrantClient(path=str(path))
            except RuntimeError as exc:
                if "already accessed" not in str(exc):
                    raise
                # The directory lock: another process (or client) has it open.
                raise RuntimeError(
                    f"incident memory {path} is already open elsewhere (Qdrant local mode "
                    "serves one process per directory); close it, or set AIRIS_QDRANT_URL to "
                    "share a Qdrant server"
                ) from exc
            self._local = True
        try:
            self._ensure_collection()
        except ResponseHandlingException as exc:  # the server did not answer
            self._client.close()
            raise ConnectionError(f"Qdrant at {self._where} is not reachable: {exc}") from exc
        except BaseException:
            self._client.close()
            raise
        logger.info("incident memory at %s (embedder %s)", self._where, self._embedder.name)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Release the store (in local mode: the directory lock, so another process may open it)."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    def _ensure_collection(self) -> None:
        embedder = self._embedder
        meta = {"embedder": embedder.name, "signature_version": SIGNATURE_VERSION}
        if not self._client.collection_exists(COLLECTION):
            self._client.create_collection(
                COLLECTION,
                vectors_config={
                    DENSE: models.VectorParams(size=embedder.dim, distance=models.Distance.COSINE)
                },
                sparse_vectors_config={
                    # IDF: a keyword every incident has (a busy service) counts for little.
                    SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
                metadata=meta,
            )
            if not self._local:  # local mode scans everything; indexes only matter on a server
                for field, schema in (
                    ("id", models.PayloadSchemaType.KEYWORD),
                    ("services", models.PayloadSchemaType.KEYWORD),
                    ("started_at_ts", models.PayloadSchemaType.FLOAT),
                ):
                    self._client.create_payload_index(COLLECTION, field, field_schema=schema)
            return
        self._check_collection(meta)

    def _check_collection(self, meta: dict[str, Any]) -> None:
        params = self._client.get_collection(COLLECTION).config
        vectors = params.params.vectors
        dense = vectors.get(DENSE) if isinstance(vectors, dict) else None
        sparse = params.params.sparse_vectors or {}
        where = f"collection {COLLECTION!r} at {self._where}"
        if dense is None or SPARSE not in sparse:
            raise CollectionMismatchError(
                f"{where} lacks the {DENSE!r} dense or {SPARSE!r} sparse vector; it was not "
                "made by AIRIS-MON: use another qdrant_path or delete the collection"
            )
        stored = params.metadata or {}
        if dense.size != self._embedder.dim:
            raise CollectionMismatchError(
                f"{where} holds {dense.size}-dimensional vectors "
                f"(embedder {stored.get('embedder', 'unknown')}), but the current embedder "
                f"{self._embedder.name} makes {self._embedder.dim}-dimensional ones; use the "
                "same embedder (is Ollama down, so hashing took over?), another qdrant_path, "
                "or delete the collection to rebuild it"
            )
        if stored and stored != meta:
            # Same size, different model: the vectors would compare as noise. Say so, once.
            logger.warning(
                "%s was built with %s; the current embedder is %s (signature v%s): similarity "
                "between old and new incidents is meaningless until they are re-upserted",
                where,
                stored,
                self._embedder.name,
                SIGNATURE_VERSION,
            )

    # -- writing -------------------------------------------------------------------------

    def upsert(
        self,
        incident: Incident,
        anomalies: Sequence[Anomaly] = (),
        log_templates: Sequence[str] = (),
        edges: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Store (or replace) ``incident``, with the evidence its signature is made of."""
        self.upsert_many([(incident, anomalies, log_templates, edges)])

    def upsert_many(
        self,
        items: Sequence[
            tuple[Incident, Sequence[Anomaly], Sequence[str], Sequence[tuple[str, str]]]
        ],
    ) -> None:
        """Store many incidents in one batch: one embedding call and one write.

        Each item is ``(incident, anomalies, log_templates, edges)`` as for `upsert`.
        """
        if not items:
            return
        signatures = [incident_signature(*item) for item in items]
        dense = self._embedder.embed(signatures)
        points = []
        for (incident, *_), signature, vector in zip(items, signatures, dense, strict=True):
            indices, values = sparse_terms(signature)
            points.append(
                models.PointStruct(
                    id=point_id(incident.id),
                    vector={
                        DENSE: vector,
                        SPARSE: models.SparseVector(indices=indices, values=values),
                    },
                    payload=_payload(incident, signature),
                )
            )
        self._client.upsert(COLLECTION, points=points, wait=True)

    # -- reading -------------------------------------------------------------------------

    def count(self) -> int:
        """How many incidents are stored."""
        return self._client.count(COLLECTION, exact=True).count

    def get(self, incident_id: str) -> dict[str, Any]:
        """The stored payload of one incident; ``KeyError`` if it was never stored."""
        return dict(self._retrieve(incident_id, with_vectors=False).payload or {})

    def similar(
        self,
        incident_id: str,
        k: int = 5,
        service: str | None = None,
        since: datetime | None = None,
        score_threshold: float | None = None,
    ) -> list[SimilarIncident]:
        """Up to ``k`` stored incidents most similar to ``incident_id`` (never itself), best first.

        ``service``: only incidents that involved it; ``since``: only those started at or after
        it (an aware datetime); ``score_threshold``: only those whose dense cosine similarity is
        at least this (the fused score is rank-based, so the threshold applies to the dense
        list, and the keyword list only re-ranks what passed it).
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be timezone-aware (e.g. datetime(..., tzinfo=UTC))")
        record = self._retrieve(incident_id, with_vectors=True)
        vectors = record.vector if isinstance(record.vector, dict) else {}
        dense = vectors.get(DENSE)
        sparse = vectors.get(SPARSE)
        if not isinstance(dense, list) or not isinstance(sparse, models.SparseVector):
            raise RuntimeError(f"incident {incident_id!r} is stored without its vectors")

        must: list[models.Condition] = []
        if service is not None:
            must.append(
                models.FieldCondition(key="services", match=models.MatchValue(value=service))
            )
        if since is not None:
            must.append(
                models.FieldCondition(
                    key="started_at_ts", range=models.Range(gte=since.timestamp())
                )
            )
        flt = models.Filter(
            must=must or None,
            must_not=[models.HasIdCondition(has_id=[point_id(incident_id)])],
        )
        depth = max(k * PREFETCH_FACTOR, MIN_PREFETCH)
        dense_pf = models.Prefetch(
            query=dense, using=DENSE, filter=flt, limit=depth, score_threshold=score_threshold
        )
        if score_threshold is None:
            sparse_pf = models.Prefetch(query=sparse, using=SPARSE, filter=flt, limit=depth)
        else:
            # Keywords re-rank only what passed the dense threshold, or an incident sharing
            # one rare word would slip past it through the keyword list.
            sparse_pf = models.Prefetch(
                prefetch=[dense_pf], query=sparse, using=SPARSE, filter=flt, limit=depth
            )
        hits = self._client.query_points(
            COLLECTION,
            prefetch=[dense_pf, sparse_pf],
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            query_filter=flt,
            limit=k,
            with_payload=True,
            with_vectors=[DENSE],
        ).points
        return [_similar(hit, dense) for hit in hits]

    def _retrieve(self, incident_id: str, with_vectors: bool) -> models.Record:
        found = self._client.retrieve(
            COLLECTION, ids=[point_id(incident_id)], with_payload=True, with_vectors=with_vectors
        )
        if not found:
            raise KeyError(
                f"incident {incident_id!r} is not in the incident memory ({self._where})"
            )
        return found[0]


def _payload(incident: Incident, signature: str) -> dict[str, Any]:
    return {
        "id": incident.id,
        "services": list(incident.services),
        "signals": list(incident.signals),
        "root_cause": incident.root_cause,
        "started_at": incident.started_at.isoformat(),
        # Epoch seconds: Qdrant's range filters compare numbers (datetime ranges need an index).
        "started_at_ts": incident.started_at.timestamp(),
        "status": incident.status,
        "summary": incident.summary,
        "signature": signature,
    }


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _similar(hit: models.ScoredPoint, query: list[float]) -> SimilarIncident:
    payload = hit.payload or {}
    vec = hit.vector.get(DENSE) if isinstance(hit.vector, dict) else None
    return SimilarIncident(
        incident_id=payload["id"],
        score=hit.score,
        services=list(payload.get("services", [])),
        root_cause=payload.get("root_cause"),
        started_at=datetime.fromisoformat(payload["started_at"]),
        summary=payload.get("summary", ""),
        similarity=_cosine(query, vec) if isinstance(vec, list) else 0.0,
    )


def _split_api_key(url: str) -> tuple[str, str | None]:
    """The URL without credentials, and the API key from its password part, if any.

    >>> _split_api_key("https://:s3cret@qdrant.example:6333")
    ('https://qdrant.example:6333', 's3cret')
    >>> _split_api_key("http://localhost:6333")
    ('http://localhost:6333', None)
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])), parts.password


def format_similar(results: Sequence[SimilarIncident], console: Console) -> None:
    """Print similar incidents as a table (for ``airis incidents similar``).

    >>> from datetime import UTC, datetime
    >>> console = Console(width=100, force_terminal=False, color_system=None)
    >>> format_similar([SimilarIncident("inc-7", 0.5, ["cart", "db"], "db",
    ...                 datetime(2025, 1, 2, 3, 4, tzinfo=UTC), "db errors", 0.91)], console)
    ┏━━━┳━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━┓
    ┃ # ┃ incident ┃ similarity ┃ started (UTC)    ┃ root cause ┃ services ┃ summary   ┃
    ┡━━━╇━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━┩
    │ 1 │ inc-7    │       0.91 │ 2025-01-02 03:04 │ db         │ cart, db │ db errors │
    └───┴──────────┴────────────┴──────────────────┴────────────┴──────────┴───────────┘
    >>> format_similar([], console)
    no similar incidents found
    """
    if not results:
        console.print("no similar incidents found")
        return
    table = Table()
    table.add_column("#", justify="right")
    table.add_column("incident", overflow="fold")
    table.add_column("similarity", justify="right")
    table.add_column("started (UTC)", no_wrap=True)
    table.add_column("root cause")
    table.add_column("services")
    table.add_column("summary", overflow="ellipsis", max_width=60)
    for rank, r in enumerate(results, 1):
        started = r.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        table.add_row(
            str(rank),
            r.incident_id,
            f"{r.similarity:.2f}",
            started,
            r.root_cause or "-",
            ", ".join(r.services),
            r.summary,
        )
    console.print(table)
