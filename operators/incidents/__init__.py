"""Incidents: alerts and anomalies grouped into incidents, their root causes ranked, and the
text and vectors that find similar past incidents.

The contract: `IncidentGrouper.add_one` takes an anomaly and returns the open incident it
joined or opened; each incident carries its root-cause candidates (`rank_incident`), ranked
by evidence a reader can check (topology, onset, magnitude, correlation, change,
persistence). `incident_signature` is deterministic: the same facts give the same text.
"""

from airis.operators.incidents.call_graph import CallGraph
from airis.operators.incidents.grouping import (
    IncidentGrouper,
    MetricService,
    OpenIncident,
    ServiceEvidence,
)
from airis.operators.incidents.incident_embedding import (
    Embedder,
    HashingEmbedder,
    incident_signature,
    sparse_terms,
)
from airis.operators.incidents.ranking import rank_open_incident, to_incident
from airis.operators.incidents.rca import RcaConfig, rank_incident

__all__ = [
    "CallGraph",
    "Embedder",
    "HashingEmbedder",
    "IncidentGrouper",
    "MetricService",
    "OpenIncident",
    "RcaConfig",
    "ServiceEvidence",
    "incident_signature",
    "rank_incident",
    "rank_open_incident",
    "sparse_terms",
    "to_incident",
]
