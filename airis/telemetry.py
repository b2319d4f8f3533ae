"""Prometheus metrics of AIRIS-MON itself (served by Bytewax's API server or `serve`)."""

from __future__ import annotations

import logging

from prometheus_client import Counter

logger = logging.getLogger(__name__)

__all__ = ["ALERTS", "ANOMALIES", "DEAD_LETTERS", "EVENTS_IN", "LATE_EVENTS"]

EVENTS_IN = Counter("airis_events_in", "Events read from a source", ["source"])
DEAD_LETTERS = Counter(
    "airis_dead_letters", "Events routed to the dead-letter path", ["source", "reason"]
)
LATE_EVENTS = Counter("airis_late_events", "Events that arrived after their window closed")
ANOMALIES = Counter("airis_anomalies", "Anomalous signal windows found")
ALERTS = Counter("airis_alerts", "Alert events emitted", ["status", "severity"])
