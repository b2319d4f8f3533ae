"""Prometheus metrics of AIRIS-MON itself, in prometheus-client's default registry.

`airis run --kafka` serves that registry through Bytewax's API server on
``AIRIS_METRICS_PORT + i`` (process i), next to Bytewax's own metrics
(``bytewax_kafka_consumer_lag`` per topic partition among them).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ALERTS",
    "ANOMALIES",
    "DEAD_LETTERS",
    "DEAD_LETTERS_CUT",
    "DETECT_SECONDS",
    "DRIFT_EVENTS",
    "DRIFT_P_VALUE",
    "EVENTS_IN",
    "KEYED_BATCHES",
    "LATE_EVENTS",
    "MODEL_RELOADS",
    "MODEL_VERSION",
    "ONNX_BATCH_ROWS",
    "ONNX_INFERENCE_SECONDS",
    "ONNX_PROVIDER",
    "ONNX_SCORE_QUANTILE",
    "SINK_BATCH",
    "SINK_BUFFERED_ROWS",
    "SINK_FAILURES",
    "SINK_SECONDS",
    "SINK_SPILLED_BYTES",
]

EVENTS_IN = Counter("airis_events_in", "Events read, by source (a topic or a file)", ["source"])
DEAD_LETTERS = Counter(
    "airis_dead_letters", "Input routed to the dead-letter path, by reason", ["source", "reason"]
)
KEYED_BATCHES = Counter(
    "airis_keyed_batches",
    "Batches of one service's points handed to the keyed detection step: the items that move "
    "between the flow's processes (per point: divide by airis_events_in)",
)
LATE_EVENTS = Counter("airis_late_events", "Events that arrived after their window closed")
ANOMALIES = Counter("airis_anomalies", "Anomalous signal windows found")
ALERTS = Counter("airis_alerts", "Alert events emitted", ["status", "severity"])
DETECT_SECONDS = Histogram(
    "airis_detect_seconds",
    "Detector time per point (one point in DETECT_SAMPLE_EVERY is timed)",
    buckets=(1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 1e-3, 1e-2),
)
SINK_SECONDS = Histogram(
    "airis_sink_seconds",
    "Time to write one batch, by sink",
    ["sink"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SINK_BATCH = Histogram(
    "airis_sink_batch_items",
    "Items per written batch, by sink",
    ["sink"],
    buckets=(1, 10, 100, 1_000, 5_000, 20_000, 100_000),
)
SINK_FAILURES = Counter(
    "airis_sink_failures", "Batch writes that failed and will be retried, by sink", ["sink"]
)
SINK_BUFFERED_ROWS = Gauge(
    "airis_sink_buffered_rows",
    "Rows waiting in memory for ClickHouse, by table (at the last snapshot)",
    ["table"],
)
SINK_SPILLED_BYTES = Gauge(
    "airis_sink_spilled_bytes",
    "Bytes of rows waiting on disk for ClickHouse to come back (at the last snapshot)",
)
DEAD_LETTERS_CUT = Counter(
    "airis_dead_letters_cut",
    "Dead-letter copies a topic refused as too large and that were cut to fit (or, when even "
    "an empty value did not fit, not published: the dead letter is still stored)",
    ["outcome"],
)
DRIFT_P_VALUE = Gauge(
    "airis_model_drift_p_value",
    "KS p-value (uncorrected) of the last live window against the training reference",
    ["model", "feature"],
)
DRIFT_EVENTS = Counter(
    "airis_model_drift_events",
    "Live windows in which the KS test found drift in at least one feature (Holm-corrected)",
    ["model"],
)
ONNX_PROVIDER = Gauge(
    "airis_onnx_provider",
    "1 for each onnxruntime execution provider in use, 0 for one offered but unused, by model",
    ["model", "provider"],
)
ONNX_INFERENCE_SECONDS = Histogram(
    "airis_onnx_inference_seconds",
    "Time to score one batch with an ONNX model (session run and calibration), by model",
    ["model"],
    buckets=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 1),
)
ONNX_BATCH_ROWS = Histogram(
    "airis_onnx_batch_rows",
    "Rows per batch scored by an ONNX model, by model",
    ["model"],
    buckets=(1, 8, 64, 512, 4_096, 32_768, 262_144),
)
ONNX_SCORE_QUANTILE = Gauge(
    "airis_onnx_score_quantile",
    "Quantiles of the calibrated scores of the last batch scored, by model",
    ["model", "quantile"],
)
#: Time one detector call in this many (timing every call would cost more than detecting).
DETECT_SAMPLE_EVERY = 128
MODEL_VERSION = Gauge(
    "airis_model_version", "Registered model version serving the flow (0: none)", ["model"]
)
MODEL_RELOADS = Counter(
    "airis_model_reloads",
    "Hot reloads of a model, by outcome (loaded or failed)",
    ["model", "outcome"],
)
