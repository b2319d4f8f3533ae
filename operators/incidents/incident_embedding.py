"""Turn an incident into text and vectors, so that similar past incidents can be found.

Three layers, top to bottom:

- `incident_signature` writes the canonical text of what characterises an incident: one fact
  per line (``label: value``), sorted, so that the same incident always gives the same text
  and two incidents with the same facts give the same text whatever order they arrived in;
- embedders turn texts into dense vectors (the `Embedder` protocol): `HashingEmbedder`
  (deterministic feature hashing, no model, the default); the Ollama-served one, which does
  I/O, is `airis.models.embedders.OllamaEmbedder`;
- `sparse_terms`, the keyword vector that hybrid search fuses with the dense one.

Nothing here knows about the vector store (`airis.sinks.incident_memory` does).

>>> emb = HashingEmbedder(dim=64)
>>> a, b = emb.embed(["root_cause: payments", "root_cause: payments"])
>>> a == b, round(sum(x * x for x in a), 6)
(True, 1.0)
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import Protocol, runtime_checkable

from airis.events import Anomaly, Incident

__all__ = [
    "SIGNATURE_VERSION",
    "Embedder",
    "HashingEmbedder",
    "incident_signature",
    "line_features",
    "sparse_terms",
    "text_features",
]

#: Bumped whenever `incident_signature` or the hashing features change: vectors written under
#: another version are not comparable with new ones.
SIGNATURE_VERSION = 1

_LABELLED = re.compile(r"^\s*([a-z_]+):\s*(.*)$")
_TOKEN = re.compile(r"[a-z0-9_]+")


def incident_signature(
    incident: Incident,
    anomalies: Sequence[Anomaly] = (),
    log_templates: Sequence[str] = (),
    edges: Sequence[tuple[str, str]] = (),
) -> str:
    """The canonical text of what characterises ``incident``: one ``label: value`` per line.

    Facts: the services, the anomalous series (``service/signal``; the incident's include the
    log and trace signals that lasted, e.g. ``payments/log_error_ratio``, see
    `airis.operators.incidents.ranking.to_incident`), the kind of each anomaly (spike or dip), the
    root cause, the log templates (the incident's new ones and any given), and the topology
    edges whose both ends are involved in the incident (an edge to an uninvolved service says
    nothing about this incident, and the full topology would make every incident look
    alike). Lines are de-duplicated and sorted, so the text does not depend on arrival order.
    Timestamps, ids, scores and the free-text summary are left out: they differ between two
    occurrences of the same problem.

    >>> from datetime import UTC, datetime
    >>> t = datetime(2025, 1, 1, tzinfo=UTC)
    >>> inc = Incident(id="i1", status="open", started_at=t, updated_at=t,
    ...                services=["payments", "checkout"], signals=["checkout/latency_p99"],
    ...                anomaly_count=1, root_cause="payments")
    >>> print(incident_signature(inc, log_templates=["timeout calling <*>"],
    ...                          edges=[("checkout", "payments"), ("checkout", "cart")]))
    service: checkout
    service: payments
    signal: checkout/latency_p99
    root_cause: payments
    log: timeout calling <*>
    edge: checkout -> payments
    """
    involved = set(incident.services)
    involved.update(a.service for a in anomalies)
    if incident.root_cause:
        involved.add(incident.root_cause)
    signals = set(incident.signals)
    signals.update(f"{a.service}/{a.signal}" for a in anomalies)
    kinds = {f"{a.service}/{a.signal} {a.kind}" for a in anomalies}
    # Templates are free text: one line each, whitespace collapsed so a line stays one fact.
    templates = [*incident.log_templates, *log_templates]
    logs = {" ".join(t.split()) for t in templates if t.strip()}
    links = {f"{src} -> {dst}" for src, dst in edges if src in involved and dst in involved}

    lines = [f"service: {s}" for s in sorted(involved)]
    lines += [f"signal: {s}" for s in sorted(signals)]
    lines += [f"anomaly: {k}" for k in sorted(kinds)]
    if incident.root_cause:
        lines.append(f"root_cause: {incident.root_cause}")
    lines += [f"log: {t}" for t in sorted(logs)]
    lines += [f"edge: {e}" for e in sorted(links)]
    return "\n".join(lines)


def line_features(text: str) -> Iterator[list[str]]:
    """The features of a text, line by line: tokens and token bigrams of each line.

    A line ``label: rest`` puts its label in front of each of its features, so that
    ``root_cause: payments`` and ``service: payments`` are different facts and the labels
    themselves, shared by every signature, add nothing. Bigrams never cross lines: the last
    token of one fact next to the first of the next is noise.

    >>> list(line_features("signal: checkout/latency_p99\\nTimeout!\\n\\n"))
    [['signal=checkout', 'signal=latency_p99', 'signal=checkout latency_p99'], ['=timeout']]
    """
    for line in text.lower().splitlines():
        match = _LABELLED.match(line)
        label, rest = match.groups() if match else ("", line)
        tokens = _TOKEN.findall(rest)
        if tokens:
            yield [f"{label}={t}" for t in tokens] + [
                f"{label}={a} {b}" for a, b in pairwise(tokens)
            ]


def text_features(text: str) -> Iterator[str]:
    """All features of `line_features`, in order.

    >>> list(text_features("root_cause: db\\nservice: db"))
    ['root_cause=db', 'service=db']
    """
    for features in line_features(text):
        yield from features


def _hash64(feature: str) -> int:
    # blake2b, not hash(): Python salts str hashes per process, and vectors are stored.
    return int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")


def sparse_terms(text: str) -> tuple[list[int], list[float]]:
    """The keyword vector of ``text``: (sorted indices, term frequencies).

    Features are those of `text_features`, hashed into the 32-bit index space of Qdrant's
    sparse vectors (collisions are negligible at that size); the store weighs them by IDF.

    >>> idx, val = sparse_terms("service: a\\nservice: a")
    >>> len(idx), val
    (1, [2.0])
    >>> sparse_terms("")
    ([], [])
    """
    counts = Counter(_hash64(f) & 0xFFFF_FFFF for f in text_features(text))
    indices = sorted(counts)
    return indices, [float(counts[i]) for i in indices]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into dense vectors of ``dim`` floats (one per text, in order)."""

    @property
    def dim(self) -> int: ...

    @property
    def name(self) -> str:
        """What produced the vectors; vectors of two names are not comparable."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class HashingEmbedder:
    """Signed feature hashing of tokens and bigrams, L2-normalised; no model, deterministic.

    Each feature of a line (see `line_features`) adds ``±1/sqrt(features in the line)`` to one
    of ``dim`` buckets, sign and bucket chosen by a blake2b hash of the feature, so the vector
    is the same in every process and on every machine, and every line (one fact of a
    signature) weighs the same. The cosine of two vectors approximates the share of facts they
    have in common: signatures with the same root cause and overlapping series score high,
    unrelated ones near zero.

    >>> emb = HashingEmbedder(dim=128)
    >>> a, b, c = emb.embed(["service: checkout\\nroot_cause: payments",
    ...                      "service: checkout\\nroot_cause: payments\\nservice: cart",
    ...                      "service: search\\nroot_cause: index"])
    >>> dot = lambda u, v: sum(x * y for x, y in zip(u, v))
    >>> dot(a, b) > 0.5 > abs(dot(a, c))
    True
    """

    def __init__(self, dim: int = 256) -> None:
        if dim < 8:
            raise ValueError(f"dim must be at least 8, got {dim}")
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def name(self) -> str:
        return f"hashing-v{SIGNATURE_VERSION}-{self._dim}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._embed_one(t) for t in texts]

    def _embed_one(self, text: str) -> list[float]:
        vec = [0.0] * self._dim
        for features in line_features(text):
            # Each line (one fact) weighs the same, however many words it has: otherwise a
            # long log template would outweigh the root cause.
            weight = 1.0 / math.sqrt(len(features))
            for feature in features:
                h = _hash64(feature)
                sign = 1.0 if h >> 63 else -1.0  # top bit for the sign, the rest for the bucket
                vec[h % self._dim] += sign * weight
        norm = math.sqrt(sum(x * x for x in vec))
        # An empty text has no features: the zero vector, which matches nothing.
        return [x / norm for x in vec] if norm else vec
