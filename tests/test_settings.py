"""Settings: the documented variables, and the config group each component takes from them."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from airis.settings import GROUPS, Settings, redact

README = Path(__file__).parents[1] / "README.md"
PROCESS_WIDE = {"data_dir", "metrics_port"}

#: A value other than the default for every setting.
OTHER_VALUES = {
    "data_dir": Path("/srv/airis"),
    "clickhouse_url": SecretStr("clickhouse://u:p@ch:9000/db"),
    "chdb_path": Path("/srv/chdb"),
    "window_seconds": 5.0,
    "state_idle_seconds": 3600.0,
    "max_signals_per_service": 10,
    "idle_grace_seconds": 30.0,
    "partition_disorder_seconds": 1.0,
    "max_ahead_seconds": 60.0,
    "allowed_lateness_seconds": 1.0,
    "anomaly_threshold": 0.8,
    "cold_start_priors": False,
    "trace_window_seconds": 30.0,
    "alert_open_after": 2,
    "alert_resolve_after": 4,
    "forecast_horizon_seconds": 600.0,
    "capacity_threshold_percent": 80.0,
    "capacity_warn_within_seconds": 600.0,
    "forecast_step_seconds": 60.0,
    "forecast_report_every": 2,
    "forecast_signals": ["cpu"],
    "scaling_target_percent": 60.0,
    "scaling_replicas": {"api": 3},
    "onnx_model": "other",
    "onnx_providers": "cpu",
    "onnx_require_gpu": True,
    "sink_batch_rows": 10,
    "sink_batch_seconds": 0.5,
    "sink_spill_dir": Path("/srv/spill"),
    "sink_spill_max_bytes": 1024,
    "kafka_bootstrap": "a:9092,b:9092",
    "kafka_metrics_topic": "m",
    "kafka_logs_topic": "l",
    "kafka_traces_topic": "t",
    "kafka_input_format": "otlp_proto",
    "kafka_alerts_topic": "al",
    "kafka_anomalies_topic": "an",
    "kafka_incidents_topic": "in",
    "kafka_dead_letter_topic": "dl",
    "kafka_batch_size": 7,
    "kafka_poll_max_bytes": 99,
    "kafka_tail": False,
    "metrics_port": 9999,
    "generator_url": "http://grafana/d/x",
    "qdrant_url": SecretStr("http://qdrant:6333"),
    "qdrant_path": Path("/srv/qdrant"),
    "ollama_url": "http://ollama:11434",
    "ollama_model": "other-embed",
    "model_dir": Path("/srv/models"),
    "drift_p_threshold": 0.05,
    "drift_window_rows": 100,
    "drift_sample_every": 2,
}


def test_every_setting_is_in_one_group_or_process_wide() -> None:
    grouped = [name for names in GROUPS.values() for name in names]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) | PROCESS_WIDE == set(Settings.model_fields)
    assert set(OTHER_VALUES) == set(Settings.model_fields)


@pytest.fixture(autouse=True)
def _no_airis_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite points AIRIS_MODEL_DIR at a scratch registry; these tests read the defaults.
    monkeypatch.delenv("AIRIS_MODEL_DIR", raising=False)


@pytest.mark.parametrize("name", sorted(OTHER_VALUES))
def test_a_setting_changes_its_own_group_and_no_other(name: str) -> None:
    default, changed = Settings(), Settings(**{name: OTHER_VALUES[name]})
    differs = {g for g in GROUPS if getattr(default, g) != getattr(changed, g)}
    owners = {g for g, names in GROUPS.items() if name in names}
    if name == "data_dir":  # the default directories of three groups live under it
        owners = {"model", "store", "memory"}
    assert differs == owners


def test_groups_resolve_directories_under_the_data_dir_unless_set() -> None:
    settings = Settings(data_dir=Path("/d"), chdb_path=Path("/c"))
    assert settings.store.chdb_path == Path("/c")
    assert settings.store.spill_dir == Path("/d/spill")
    assert settings.model.model_dir == Path("/d/models")
    assert settings.memory.qdrant_path == Path("/d/qdrant")


def test_groups_pickle_for_the_dataflow_processes() -> None:
    settings = Settings(**OTHER_VALUES)
    for group in GROUPS:
        config = getattr(settings, group)
        assert pickle.loads(pickle.dumps(config)) == config


def test_an_empty_model_name_turns_the_model_off() -> None:
    assert Settings(onnx_model="").model.name is None
    assert Settings(onnx_model=None).model.name is None


def test_the_environment_reaches_the_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRIS_KAFKA_BOOTSTRAP", "x:1,y:2")
    monkeypatch.setenv("AIRIS_FORECAST_SIGNALS", '["disk"]')
    settings = Settings()
    assert settings.kafka.brokers == ["x:1", "y:2"]
    assert settings.planning.signals == ("disk",)


def test_the_readme_documents_every_setting() -> None:
    documented = set(re.findall(r"`AIRIS_([A-Z0-9_]+)`", README.read_text()))
    assert {name.upper() for name in Settings.model_fields} <= documented


def test_redact_hides_only_the_password() -> None:
    assert redact("clickhouse://u:secret@h:9000/db") == "clickhouse://u:***@h:9000/db"
    assert redact("http://h:6333") == "http://h:6333"
