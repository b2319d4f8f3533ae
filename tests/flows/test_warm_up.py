"""`warm_up`: after it, a flow's first real batch loads no compiled kernel and imports nothing
(checked in a new Python process: this one has long loaded everything); the Kafka flow warms
up when built, and flushes its store at epochs only when it keeps snapshots.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FIRST_BATCH = """
import importlib, json, pkgutil, sys, time
from datetime import UTC, datetime
from numba.core.registry import CPUDispatcher
import airis.operators
from airis.batches import MetricBatch
from airis.events import MetricPoint
from airis.flows.detection import service_detector
from airis.flows.model_ops import planning_step
from airis.flows.warm_up import warm_up
from airis.settings import Settings
from airis.sinks.chdb_store import ChdbStore
from airis.sources.simulator import Simulator

def kernels():
    loaded = {}
    for info in pkgutil.walk_packages(airis.operators.__path__, "airis.operators."):
        for name, obj in vars(importlib.import_module(info.name)).items():
            if isinstance(obj, CPUDispatcher):
                loaded[info.name + "." + name] = len(obj.signatures)
    return loaded

settings = Settings()
if sys.argv[1] == "warm":
    warm_up(settings)
sim = Simulator(start=datetime(2026, 3, 1, tzinfo=UTC), hours=2, seed=7, faults=[])
points = [MetricPoint(**p) for tick in sim.ticks() for p in tick if p["service"] == "frontend"]
store = ChdbStore(sys.argv[2])
store.execute("CREATE TABLE t (a Int64) ENGINE = MergeTree ORDER BY a")
modules, before = set(sys.modules), kernels()
detector = service_detector(settings.event_time, settings.detection)
closed, _ = detector.update_batch(MetricBatch.from_points("frontend", points), time.monotonic())
planning_step(settings.planning)(None, closed)
store.insert_columns("t", ["a"], [[1, 2]])
after = kernels()
print(json.dumps({
    "imported": sorted({m.split(".")[0] for m in set(sys.modules) - modules}),
    "kernels_loaded": sorted(k for k, n in after.items() if n > before.get(k, 0)),
    "windows": len(closed.end_times()),
}))
"""


def first_batch(tmp_path: Path, warm: bool) -> dict:
    mode = "warm" if warm else "cold"
    run = subprocess.run(
        [sys.executable, "-c", FIRST_BATCH, mode, str(tmp_path / mode)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return json.loads(run.stdout.splitlines()[-1])


def test_after_warm_up_the_first_batch_loads_no_kernel_and_imports_nothing(tmp_path):
    cold = first_batch(tmp_path, warm=False)
    warm = first_batch(tmp_path, warm=True)
    assert cold["windows"] == warm["windows"] > 100  # the same real work, planning included
    # What the check would catch: without the warm-up that batch loads both.
    assert len(cold["kernels_loaded"]) >= 5 and {"pandas", "numba"} & set(cold["imported"])
    assert warm["kernels_loaded"] == [] and warm["imported"] == []


def test_windows_longer_than_its_hour_still_warm_up(monkeypatch, caplog):
    from airis.flows.warm_up import warm_up
    from airis.settings import Settings

    monkeypatch.setenv("AIRIS_WINDOW_SECONDS", "7200")
    with caplog.at_level("INFO", logger="airis.flows.warm_up"):
        warm_up(Settings())
    assert "warm-up: compiled kernels" in caplog.text
    assert "failed" not in caplog.text


def _built(snapshots: bool):
    from bytewax.testing import TestingSink, TestingSource

    from airis.flows import kafka_metrics

    inert = {signal: TestingSource([]) for signal in ("metrics", "logs", "traces")}
    return kafka_metrics.build_flow(
        topics_sink=TestingSink([]), memory_sink=TestingSink([]), sources=inert,
        snapshots=snapshots,
    )  # fmt: skip


def _steps(steps):
    for step in steps:
        yield step
        yield from _steps(getattr(step, "substeps", []))


def test_the_kafka_flow_warms_up_when_built(caplog):
    with caplog.at_level("INFO", logger="airis.flows.warm_up"):
        _built(snapshots=True)
    assert "warm-up: compiled kernels and lazy imports loaded" in caplog.text


@pytest.mark.parametrize("snapshots", [True, False])
def test_the_store_is_flushed_at_epochs_only_when_snapshots_are_kept(snapshots):
    flow = _built(snapshots)
    (store,) = [s for s in _steps(flow.substeps) if s.step_id == "airis_kafka_metrics.store"]
    assert store.sink.flush_at_snapshots is snapshots


@pytest.mark.parametrize("snapshots", [True, False])
def test_alerts_wait_for_kafka_s_acknowledgement_only_when_snapshots_are_kept(snapshots):
    """Without snapshots no epoch's end needs the topics' deliveries done: the batches are
    queued (a failed delivery fails a later batch, or the flow's end)."""
    from bytewax.testing import TestingSink, TestingSource

    from airis.flows import kafka_metrics

    inert = {signal: TestingSource([]) for signal in ("metrics", "logs", "traces")}
    flow = kafka_metrics.build_flow(memory_sink=TestingSink([]), sources=inert, snapshots=snapshots)
    (out,) = [s for s in _steps(flow.substeps) if s.step_id.endswith("publish.kafka_out")]
    assert out.sink.acknowledged is snapshots
