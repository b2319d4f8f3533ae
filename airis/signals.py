"""Signal names: the vocabulary of metric signals that every layer shares.

A signal is the name of a series of one service (``cpu``, ``log_rate``); the names here are
the ones the engine itself emits or derives, so that the simulator, the window steps, the
production model and the evaluations agree on them without importing each other.
"""

from __future__ import annotations

__all__ = ["LOG_SIGNALS", "SERVICE_SIGNALS", "TRACE_SIGNALS"]

#: A service's golden signals and resources, in the order the simulator emits them every tick
#: and the production model (`airis.models.service_features`) reads them as features.
SERVICE_SIGNALS: tuple[str, ...] = (
    "request_rate",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "error_rate",
    "cpu",
    "memory",
    "disk",
)

#: Per window of a service's log lines (`airis.operators.signals.log_signals`).
LOG_SIGNALS: tuple[str, ...] = (
    "log_rate",
    "log_error_ratio",
    "log_new_templates",
    "log_rare_lines",
)

#: Per window of a service's spans (`airis.operators.signals.trace_signals`).
TRACE_SIGNALS: tuple[str, ...] = ("trace_rate", "trace_error_ratio", "trace_p95_ms")
