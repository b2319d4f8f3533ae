"""Settings from ``AIRIS_*`` environment variables (documented in the README), and the
configuration each component takes from them.

`Settings` is the boundary: one flat model whose fields are the documented variables
(precedence: explicit constructor argument, then the environment, then the default here).
Components never take it whole: each takes its group, a frozen config object built here
and nowhere else (``settings.kafka``, ``settings.store``, …; `GROUPS` says which variable
belongs to which). Secrets (a password inside ``AIRIS_CLICKHOUSE_URL``) are never logged:
use `redact`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "GROUPS",
    "AlertingConfig",
    "DetectionConfig",
    "EventTimeConfig",
    "InputFormat",
    "KafkaConfig",
    "MemoryConfig",
    "ModelConfig",
    "PlanningConfig",
    "Settings",
    "StoreConfig",
    "redact",
]

InputFormat = Literal["auto", "json", "otlp_proto", "otlp_json"]


@dataclass(frozen=True, slots=True)
class EventTimeConfig:
    """How the flows read event time: windows, lateness, idleness, clocks that run ahead."""

    window_seconds: float = 10.0
    trace_window_seconds: float = 60.0
    allowed_lateness_seconds: float = 2.0
    idle_grace_seconds: float = 60.0
    partition_disorder_seconds: float = 5.0
    max_ahead_seconds: float = 600.0


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """The per-series detectors and the state they keep."""

    anomaly_threshold: float = 0.9
    cold_start_priors: bool = True
    state_idle_seconds: float = 2 * 86400.0
    max_signals_per_service: int = 2000


@dataclass(frozen=True, slots=True)
class AlertingConfig:
    """The alert manager's hysteresis and what alerts link to."""

    open_after: int = 3
    resolve_after: int = 6
    generator_url: str = "http://localhost:3000/d/airis"


@dataclass(frozen=True, slots=True)
class PlanningConfig:
    """Forecasts, exhaustion warnings and replica advice per service."""

    signals: tuple[str, ...] = ("request_rate", "cpu", "memory", "disk")
    step_seconds: float = 300.0
    horizon_seconds: float = 900.0
    report_every: int = 1
    capacity_threshold_percent: float = 90.0
    capacity_warn_within_seconds: float = 3600.0
    scaling_target_percent: float = 70.0
    scaling_replicas: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """The registered ONNX model the flow serves, and its drift test."""

    name: str | None = "service_autoencoder"
    providers: Literal["auto", "cpu", "cuda"] = "auto"
    require_gpu: bool = False
    model_dir: Path = Path("var/models")
    drift_p_threshold: float = 0.01
    drift_window_rows: int = 2000
    drift_sample_every: int = 64


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where rows go (ClickHouse server or embedded chdb) and how they are batched."""

    clickhouse_url: SecretStr | None = None
    chdb_path: Path = Path("var/chdb")
    batch_rows: int = 100_000
    batch_seconds: float = 2.0
    spill_dir: Path = Path("var/spill")
    spill_max_bytes: int = 2 * 1024**3


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    """The broker, the topics in and out, and how input is consumed."""

    bootstrap: str = "127.0.0.1:9092"
    metrics_topic: str = "airis.metrics"
    logs_topic: str = "airis.logs"
    traces_topic: str = "airis.traces"
    input_format: InputFormat = "auto"
    alerts_topic: str = "airis.alerts"
    anomalies_topic: str = "airis.anomalies"
    incidents_topic: str = "airis.incidents"
    dead_letter_topic: str = "airis.dead-letters"
    batch_size: int = 5_000
    poll_max_bytes: int = 8 * 1024 * 1024
    tail: bool = True

    @property
    def brokers(self) -> list[str]:
        return self.bootstrap.split(",")

    @property
    def input_topics(self) -> dict[str, str]:
        """Input kind (metrics, logs, traces) → topic."""
        return {"metrics": self.metrics_topic, "logs": self.logs_topic, "traces": self.traces_topic}


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    """The incident memory: Qdrant (server or local) and the embedder (Ollama or hashing)."""

    qdrant_url: SecretStr | None = None
    qdrant_path: Path = Path("var/qdrant")
    ollama_url: str | None = None
    ollama_model: str = "nomic-embed-text"


#: Which variables make up which group (``AIRIS_`` + the upper-cased field name); the
#: fields not listed (``data_dir``, ``metrics_port``) belong to the whole process.
GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "event_time": (
            "window_seconds",
            "trace_window_seconds",
            "allowed_lateness_seconds",
            "idle_grace_seconds",
            "partition_disorder_seconds",
            "max_ahead_seconds",
        ),
        "detection": (
            "anomaly_threshold",
            "cold_start_priors",
            "state_idle_seconds",
            "max_signals_per_service",
        ),
        "alerting": ("alert_open_after", "alert_resolve_after", "generator_url"),
        "planning": (
            "forecast_signals",
            "forecast_step_seconds",
            "forecast_horizon_seconds",
            "forecast_report_every",
            "capacity_threshold_percent",
            "capacity_warn_within_seconds",
            "scaling_target_percent",
            "scaling_replicas",
        ),
        "model": (
            "onnx_model",
            "onnx_providers",
            "onnx_require_gpu",
            "model_dir",
            "drift_p_threshold",
            "drift_window_rows",
            "drift_sample_every",
        ),
        "store": (
            "clickhouse_url",
            "chdb_path",
            "sink_batch_rows",
            "sink_batch_seconds",
            "sink_spill_dir",
            "sink_spill_max_bytes",
        ),
        "kafka": (
            "kafka_bootstrap",
            "kafka_metrics_topic",
            "kafka_logs_topic",
            "kafka_traces_topic",
            "kafka_input_format",
            "kafka_alerts_topic",
            "kafka_anomalies_topic",
            "kafka_incidents_topic",
            "kafka_dead_letter_topic",
            "kafka_batch_size",
            "kafka_poll_max_bytes",
            "kafka_tail",
        ),
        "memory": ("qdrant_url", "qdrant_path", "ollama_url", "ollama_model"),
    }
)


class Settings(BaseSettings):
    """Everything a run of AIRIS-MON can be told from outside."""

    model_config = SettingsConfigDict(env_prefix="AIRIS_", extra="ignore", frozen=True)

    data_dir: Path = Field(Path("var"), description="Where embedded stores keep their files.")
    clickhouse_url: SecretStr | None = Field(
        None,
        description="clickhouse://user:password@host:9000/db for a server; unset = embedded chdb.",
    )
    chdb_path: Path | None = Field(None, description="Embedded ClickHouse directory.")
    window_seconds: float = Field(10.0, gt=0, description="Tumbling window length per service.")
    state_idle_seconds: float = Field(
        2 * 86400.0,
        gt=0,
        description="A signal silent this long (event time) loses its detector state.",
    )
    max_signals_per_service: int = Field(
        2000, ge=1, description="Signals one service may have; points of more are dead-lettered."
    )
    idle_grace_seconds: float = Field(
        60.0,
        ge=0,
        description="System time a quiet service waits before system time closes its windows.",
    )
    partition_disorder_seconds: float = Field(
        5.0,
        ge=0,
        description="How much later (by Kafka message time) an unkeyed partition may still "
        "bring older events than a message before it: concurrent senders, such as the "
        "Collector's exporter queue, write slightly out of order. 0 trusts each partition's order.",
    )
    max_ahead_seconds: float = Field(
        600.0,
        gt=0,
        description="Events stamped further than this past their arrival are dead-lettered.",
    )
    allowed_lateness_seconds: float = Field(
        2.0, ge=0, description="How long a window waits for out-of-order events."
    )
    anomaly_threshold: float = Field(
        0.9, gt=0, lt=1, description="Score at or above which a window counts as anomalous."
    )
    cold_start_priors: bool = Field(
        True,
        description="While a series' detector warms up, let evidence that needs no history "
        "(an error ratio jump, a latency many times its first minutes, saturation) alert.",
    )
    trace_window_seconds: float = Field(
        60.0, gt=0, description="Window of per-service RED signals and dependency edges."
    )
    alert_open_after: int = Field(3, ge=1, description="Anomalous windows before an alert fires.")
    alert_resolve_after: int = Field(6, ge=1, description="Normal windows before it resolves.")
    forecast_horizon_seconds: float = Field(
        900.0, gt=0, description="How far ahead per-series forecasts (with intervals) reach."
    )
    capacity_threshold_percent: float = Field(
        90.0, gt=0, le=100, description="Disk/memory percent whose crossing is predicted."
    )
    capacity_warn_within_seconds: float = Field(
        3600.0, gt=0, description="Warn when that threshold is expected within this long."
    )
    forecast_step_seconds: float = Field(
        300.0, gt=0, description="Forecast step: window values are averaged over this long."
    )
    forecast_report_every: int = Field(
        1, ge=1, description="Steps between written forecasts (of every report_every-th step)."
    )
    forecast_signals: list[str] = Field(
        ["request_rate", "cpu", "memory", "disk"],
        description="Signals forecast per service (JSON list; [] turns planning off).",
    )
    scaling_target_percent: float = Field(
        70.0, gt=0, description="Per-replica cpu the replica advice aims at."
    )
    scaling_replicas: dict[str, int] = Field(
        default_factory=dict,
        description='Replicas per service now, as JSON ({"api": 4}); unlisted services: 1.',
    )
    onnx_model: str | None = Field(
        "service_autoencoder",
        description="Registered model the flow scores service windows with; unset = none.",
    )
    onnx_providers: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="onnxruntime providers: auto (CUDA if a GPU is usable), cpu, cuda."
    )
    onnx_require_gpu: bool = Field(
        False, description="Refuse to serve a model that would not run on the GPU."
    )
    sink_batch_rows: int = Field(
        100_000, ge=1, description="Rows buffered per table before insert."
    )
    sink_batch_seconds: float = Field(2.0, gt=0, description="Longest a row waits before insert.")
    sink_spill_dir: Path | None = Field(
        None,
        description="Where the flow keeps rows while ClickHouse is down; unset = data_dir/spill.",
    )
    sink_spill_max_bytes: int = Field(
        2 * 1024**3, gt=0, description="Bound on the spill directory (oldest rows dropped beyond)."
    )

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, a,b,c.")
    kafka_metrics_topic: str = Field("airis.metrics", description="Metrics in (JSON or OTLP).")
    kafka_logs_topic: str = Field("airis.logs", description="Logs in (JSON or OTLP).")
    kafka_traces_topic: str = Field("airis.traces", description="Spans in (JSON or OTLP).")
    kafka_input_format: InputFormat = Field(
        "auto", description="How input messages are encoded; auto sniffs each message."
    )
    kafka_alerts_topic: str = Field("airis.alerts", description="Alerts out (Alertmanager shape).")
    kafka_anomalies_topic: str = Field("airis.anomalies", description="Anomalies out (JSON).")
    kafka_incidents_topic: str = Field(
        "airis.incidents", description="Resolved incidents with ranked root causes out (JSON)."
    )
    kafka_dead_letter_topic: str = Field(
        "airis.dead-letters", description="Undecodable or invalid input, original bytes kept."
    )
    kafka_batch_size: int = Field(5_000, ge=1, description="Messages consumed per poll.")
    kafka_poll_max_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1,
        description="Bytes of messages one poll of a partition may hold (about): fewer than "
        "kafka_batch_size messages when they are large (OTLP batches).",
    )
    kafka_tail: bool = Field(True, description="Wait for new messages at the end of a topic.")
    metrics_port: int | None = Field(
        9464, ge=0, le=65535, description="Prometheus /metrics port (process i: port + i)."
    )
    generator_url: str = Field(
        "http://localhost:3000/d/airis", description="Alerts' generatorURL (a Grafana board)."
    )
    qdrant_url: SecretStr | None = Field(
        None,
        description="Qdrant server URL, http(s)://[:API_KEY@]host:6333; unset = local mode under "
        "data_dir/qdrant.",
    )
    qdrant_path: Path | None = Field(
        None, description="Local-mode Qdrant directory (one process at a time)."
    )
    ollama_url: str | None = Field(
        None, description="Ollama server for incident embeddings; unset = hashing embeddings."
    )
    ollama_model: str = Field("nomic-embed-text", description="Ollama embedding model.")
    model_dir: Path | None = Field(
        None, description="Model registry directory; unset = data_dir/models."
    )
    drift_p_threshold: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="Family-wise significance of the per-window KS drift test (Holm-corrected).",
    )
    drift_window_rows: int = Field(
        2000, ge=2, description="Live feature rows per KS drift test against the reference."
    )
    drift_sample_every: int = Field(
        64,
        ge=1,
        description="One live row in this many (at random) enters the drift window, so that "
        "a window spans hours (about a day for 15 services at 10-s windows).",
    )

    @property
    def event_time(self) -> EventTimeConfig:
        return EventTimeConfig(*(getattr(self, f) for f in GROUPS["event_time"]))

    @property
    def detection(self) -> DetectionConfig:
        return DetectionConfig(*(getattr(self, f) for f in GROUPS["detection"]))

    @property
    def alerting(self) -> AlertingConfig:
        return AlertingConfig(*(getattr(self, f) for f in GROUPS["alerting"]))

    @property
    def planning(self) -> PlanningConfig:
        return PlanningConfig(
            signals=tuple(self.forecast_signals),
            step_seconds=self.forecast_step_seconds,
            horizon_seconds=self.forecast_horizon_seconds,
            report_every=self.forecast_report_every,
            capacity_threshold_percent=self.capacity_threshold_percent,
            capacity_warn_within_seconds=self.capacity_warn_within_seconds,
            scaling_target_percent=self.scaling_target_percent,
            scaling_replicas=dict(self.scaling_replicas),
        )

    @property
    def model(self) -> ModelConfig:
        return ModelConfig(
            name=self.onnx_model or None,
            providers=self.onnx_providers,
            require_gpu=self.onnx_require_gpu,
            model_dir=self.model_dir or self.data_dir / "models",
            drift_p_threshold=self.drift_p_threshold,
            drift_window_rows=self.drift_window_rows,
            drift_sample_every=self.drift_sample_every,
        )

    @property
    def store(self) -> StoreConfig:
        return StoreConfig(
            clickhouse_url=self.clickhouse_url,
            chdb_path=self.chdb_path or self.data_dir / "chdb",
            batch_rows=self.sink_batch_rows,
            batch_seconds=self.sink_batch_seconds,
            spill_dir=self.sink_spill_dir or self.data_dir / "spill",
            spill_max_bytes=self.sink_spill_max_bytes,
        )

    @property
    def kafka(self) -> KafkaConfig:
        return KafkaConfig(*(getattr(self, f) for f in GROUPS["kafka"]))

    @property
    def memory(self) -> MemoryConfig:
        return MemoryConfig(
            qdrant_url=self.qdrant_url,
            qdrant_path=self.qdrant_path or self.data_dir / "qdrant",
            ollama_url=self.ollama_url or None,
            ollama_model=self.ollama_model,
        )


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``, safe to log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
