"""Signals: telemetry that is not a metric point turned into metric points, per service.

The contract: each class takes one service's events in arrival order and returns, per closed
event-time window, signal values that become `MetricPoint`\\ s stamped at the window's start
(so they go through the same detectors, alerts and incidents as any metric), plus what the
window learned (templates, dependency edges); events for closed windows come back as late,
never dropped.

- `ServiceLogSignals`: log lines → ``log_rate``, ``log_error_ratio``, ``log_new_templates``,
  ``log_rare_lines``, with templates mined online by `LogTemplateMiner`;
- `ServiceTraceSignals`: spans → ``trace_rate``, ``trace_error_ratio``, ``trace_p95_ms`` and
  dependency edges;
- `OtlpMetricPoints`: OTLP Sums, Histograms and Summaries → per-interval rates, means and
  percentiles.
"""

from airis.operators.signals.log_signals import LOG_SIGNALS, ServiceLogSignals
from airis.operators.signals.log_templates import LogTemplateMiner
from airis.operators.signals.otlp_metrics import OtlpMetricPoints
from airis.operators.signals.trace_signals import TRACE_SIGNALS, ServiceTraceSignals

__all__ = [
    "LOG_SIGNALS",
    "TRACE_SIGNALS",
    "LogTemplateMiner",
    "OtlpMetricPoints",
    "ServiceLogSignals",
    "ServiceTraceSignals",
]
