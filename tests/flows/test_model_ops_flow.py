"""The metrics flow with a registered ONNX model (hot reload, drift) and capacity planning.

Everything is real: the model is trained here, registered in a registry on disk, served by
onnxruntime (CPU), and promoted or rolled back while the flow runs.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from bytewax.testing import TestingSink, run_main

from airis.batches import ForecastBatch, ModelScoreBatch, unbatched
from airis.events import (
    Alert,
    Anomaly,
    CapacityWarning,
    DriftEvent,
    ForecastPoint,
    MetricPoint,
    ModelScore,
)
from airis.flows.metrics_anomaly import build_flow
from airis.models.registry import ModelRegistry, fingerprint_array
from airis.models.service_features import train_service_autoencoder
from airis.models.serving import MODEL_FILE, REFERENCE_FILE
from airis.models.train import npy_bytes
from airis.settings import Settings
from airis.sources.iterable_source import TICKS_PER_BATCH, simulator_source
from airis.sources.simulator import SIGNALS, Simulator
from airis.sources.simulator.effects import make_fault

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
NAME = "service_autoencoder"


def _register(registry: ModelRegistry, seed: int, hidden: tuple[int, ...]) -> int:
    sim = Simulator(start=START - timedelta(hours=24), hours=24, seed=3, faults=[])
    trained = train_service_autoencoder(sim, hidden=hidden, seed=seed, max_iter=10)
    reference = trained.reference
    version = registry.register(
        NAME,
        {MODEL_FILE: trained.onnx_bytes, REFERENCE_FILE: npy_bytes(reference)},
        params=trained.params,
        metrics=trained.metrics,
        data_fingerprint=fingerprint_array(reference),
    )
    return version.version


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    registry = ModelRegistry(tmp_path_factory.mktemp("registry"))
    assert _register(registry, seed=0, hidden=(4,)) == 1
    assert _register(registry, seed=1, hidden=(3,)) == 2
    return registry


def test_promote_and_rollback_take_effect_between_batches_without_losing_a_window(
    registry: ModelRegistry,
) -> None:
    registry.promote(NAME, 1)
    sim = Simulator(start=START, hours=1, seed=3, faults=[])

    per_batch = TICKS_PER_BATCH * len(sim.services) * 8  # points per source batch

    def operate(emitted: int) -> None:  # the operator, while the flow runs
        if emitted == 12 * per_batch:
            registry.promote(NAME, 2)
        elif emitted == 24 * per_batch:
            registry.rollback(NAME)

    settings = Settings(
        model_dir=registry.root,
        onnx_model=NAME,
        forecast_signals=[],
        drift_window_rows=600,
        drift_sample_every=1,
    )
    out: list = []
    run_main(build_flow(simulator_source(sim, on_batch=operate), TestingSink(out), settings))

    assert not [e for e in out if isinstance(e, ModelScore)]  # as columns, a batch a service
    scores = [e for e in unbatched(out) if isinstance(e, ModelScore)]
    windows = Counter((s.service, s.window_start) for s in scores)
    ticks = round(3600 / sim.interval_seconds)
    assert len(windows) == ticks * len(sim.services)  # every window scored...
    assert set(windows.values()) == {1}  # ...exactly once
    runs = [
        v for i, v in enumerate(s.version for s in scores) if i == 0 or scores[i - 1].version != v
    ]
    assert runs == [1, 2, 1]  # v1, then v2 after the promotion, then v1 after the rollback
    switched = [s.window_start for s in scores if s.version == 2]
    # Promoted after the source's 12th batch (ticks 110-119), rolled back after its 24th.
    assert 100 <= (min(switched) - START).total_seconds() / 10 <= 125
    assert 220 <= (max(switched) - START).total_seconds() / 10 <= 245
    assert all(0 <= s.score <= 1 and s.providers == ["CPUExecutionProvider"] for s in scores)

    drift = [e for e in out if isinstance(e, DriftEvent)]
    assert drift and {e.window_rows for e in drift} == {600}
    assert {e.feature for e in drift} == set(SIGNALS)
    assert {e.version for e in drift} <= {1, 2}


def test_a_model_anomaly_joins_the_anomalies_with_its_evidence(registry: ModelRegistry) -> None:
    registry.promote(NAME, 1)
    begin, end = START + timedelta(minutes=20), START + timedelta(minutes=40)
    fault = make_fault("error_burst", "payment-service", begin, end)
    sim = Simulator(start=START, hours=1, seed=3, faults=[fault])
    settings = Settings(model_dir=registry.root, onnx_model=NAME, forecast_signals=[])
    out: list = []
    run_main(build_flow(simulator_source(sim), TestingSink(out), settings))
    model = [e for e in out if isinstance(e, Anomaly) and e.signal == f"model_{NAME}"]
    assert model, "the error burst must move the autoencoder's score"
    inside = [a for a in model if fault.start <= a.window_start < fault.end]
    assert len(inside) > len(model) / 2
    for a in model:
        assert a.score >= settings.anomaly_threshold and a.observed > a.upper > a.expected > 0
        assert a.detector.startswith(f"onnx:{NAME}:v")


def test_no_production_model_means_no_model_events_and_nothing_breaks(tmp_path) -> None:
    sim = Simulator(start=START, hours=0.25, seed=3, faults=[])
    settings = Settings(model_dir=tmp_path, onnx_model=NAME, forecast_signals=[])
    out: list = []
    run_main(build_flow(simulator_source(sim), TestingSink(out), settings))
    assert not [e for e in out if isinstance(e, ModelScore | ModelScoreBatch | DriftEvent)]
    assert len([e for e in unbatched(out) if isinstance(e, MetricPoint)]) == 90 * 15 * 8


def test_a_memory_leak_is_warned_before_it_crosses_the_threshold_and_forecasts_are_written() -> (
    None
):
    leak = make_fault(
        "memory_leak",
        "order-service",
        START + timedelta(hours=1),
        START + timedelta(hours=1, minutes=55),
        params={"target": 95.0},
    )
    sim = Simulator(start=START, hours=2.5, seed=5, faults=[leak])
    # One-minute steps: the forecasts are ready (50 steps) well within the 2.5 h.
    settings = Settings(onnx_model=None, forecast_step_seconds=60, forecast_report_every=5)
    out: list = []
    run_main(build_flow(simulator_source(sim), TestingSink(out), settings))

    memory = [
        e
        for e in unbatched(out)
        if isinstance(e, MetricPoint) and (e.service, e.signal) == ("order-service", "memory")
    ]
    crossed = min(p.ts for p in memory if p.value >= settings.capacity_threshold_percent)
    warnings = [e for e in out if isinstance(e, CapacityWarning)]
    assert {(w.service, w.signal) for w in warnings} == {("order-service", "memory")}
    first = min(w.ts for w in warnings)
    assert leak.start < first <= crossed - timedelta(minutes=15)
    alerts = [e for e in out if isinstance(e, Alert) and e.kind == "exhaustion"]
    assert alerts and alerts[0].service == "order-service"
    assert "expected to reach 90%" in alerts[0].summary
    assert alerts[0].labels["alertname"] == "ResourceExhaustion"
    assert alerts[0].ends_at is not None and alerts[0].ends_at > alerts[0].starts_at
    # Through the alert manager: the warnings of one leak are one episode.
    assert {a.starts_at for a in alerts} == {first}

    # Written as one batch of columns per service and batch of windows, not a point each.
    assert any(isinstance(e, ForecastBatch) for e in out)
    assert not [e for e in out if isinstance(e, ForecastPoint)]
    forecasts = [e for e in unbatched(out) if isinstance(e, ForecastPoint)]
    assert {f.horizon_seconds for f in forecasts} == {300, 600, 900}
    assert {f.signal for f in forecasts} == {"request_rate", "cpu", "memory", "disk"}
    assert len({f.service for f in forecasts}) == len(sim.services)
    assert all(f.lower <= f.forecast <= f.upper for f in forecasts)


def test_a_required_gpu_that_is_not_there_stops_the_flow_loudly(registry: ModelRegistry) -> None:
    # This machine has no GPU (onnxruntime-gpu still lists CUDA as available): a real session
    # falls back to CPU, which the settings forbid.
    registry.promote(NAME, 1)
    sim = Simulator(start=START, hours=0.1, seed=3, faults=[])
    settings = Settings(
        model_dir=registry.root, onnx_model=NAME, onnx_require_gpu=True, forecast_signals=[]
    )
    with pytest.raises(Exception, match="score_model") as failure:
        run_main(build_flow(simulator_source(sim), TestingSink([]), settings))
    causes, error = [], failure.value
    while error is not None:  # Bytewax wraps the step's exception
        causes.append(error)
        error = error.__cause__
    gpu = [e for e in causes if isinstance(e, RuntimeError) and "require_gpu" in str(e)]
    assert gpu, [str(e) for e in causes]
    assert "CPUExecutionProvider" in str(gpu[0])  # says what is in use instead
