"""Settings from ``AIRIS_*`` environment variables (documented in the README).

Precedence: explicit constructor argument, then the environment, then the default here.
Secrets (a password inside ``AIRIS_CLICKHOUSE_URL``) are never logged: use `redact`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "redact"]


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
    sink_batch_rows: int = Field(20_000, ge=1, description="Rows buffered per table before insert.")
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
    kafka_input_format: Literal["auto", "json", "otlp_proto", "otlp_json"] = Field(
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
    def resolved_chdb_path(self) -> Path:
        return self.chdb_path or self.data_dir / "chdb"

    @property
    def resolved_sink_spill_dir(self) -> Path:
        return self.sink_spill_dir or self.data_dir / "spill"

    @property
    def resolved_model_dir(self) -> Path:
        return self.model_dir or self.data_dir / "models"


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``, safe to log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
