"""`ClusterPlan`: what each dataflow process of `airis run --kafka` is started with."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from airis.app.cluster import STRAGGLER_STATUS, ClusterPlan, run_cluster


def test_settings_reach_the_processes_explicitly_and_leave_this_process_alone(tmp_path: Path):
    before = dict(os.environ)
    plan = ClusterPlan(
        processes=2,
        metrics_port=9100,
        data_dir=tmp_path,
        settings_overrides={"AIRIS_KAFKA_TAIL": "false"},
    )
    envs = [plan.environment(i) for i in range(2)]
    assert [e["AIRIS_KAFKA_TAIL"] for e in envs] == ["false", "false"]
    assert [e["BYTEWAX_DATAFLOW_API_PORT"] for e in envs] == ["9100", "9101"]
    assert dict(os.environ) == before


def test_two_processes_form_one_cluster(tmp_path: Path):
    plan = ClusterPlan(processes=2, workers=3, recovery_dir=tmp_path / "r", data_dir=tmp_path)
    first, second = plan.commands()
    assert first[first.index("-w") + 1] == "3" and first[first.index("-i") + 1] == "0"
    assert second[second.index("-i") + 1] == "1"
    assert first[first.index("-a") + 1] == second[second.index("-a") + 1]
    assert "-r" in first and first[first.index("-r") + 1] == str(tmp_path / "r")


@dataclass(frozen=True)
class ScriptedPlan(ClusterPlan):
    """Processes that run the given Python code instead of the dataflow."""

    scripts: tuple[str, ...] = ()

    def commands(self) -> list[list[str]]:
        return [[sys.executable, "-c", code] for code in self.scripts]


def test_processes_that_outlive_one_that_ended_well_are_stopped(tmp_path: Path):
    alive = tmp_path / "alive"
    stuck = f"import pathlib, time; pathlib.Path({str(alive)!r}).touch(); time.sleep(120)"
    plan = ScriptedPlan(processes=2, data_dir=tmp_path, scripts=("pass", stuck))
    started = time.monotonic()
    assert run_cluster(plan, poll_seconds=0.1, straggler_seconds=2) == STRAGGLER_STATUS
    assert alive.exists() and time.monotonic() - started < 30


def test_a_cluster_whose_processes_end_together_ends_well(tmp_path: Path):
    plan = ScriptedPlan(
        processes=2, data_dir=tmp_path, scripts=("import time; time.sleep(1)", "pass")
    )
    assert run_cluster(plan, poll_seconds=0.1, straggler_seconds=10) == 0


def test_the_flow_takes_snapshots_only_when_recovery_keeps_them(tmp_path: Path):
    without = ClusterPlan(data_dir=tmp_path).commands()[0]
    kept = ClusterPlan(recovery_dir=tmp_path / "r", data_dir=tmp_path).commands()[0]
    flow = "airis.flows.kafka_metrics:build_flow(store_partitions=1, snapshots={})"
    assert (without[3], kept[3]) == (flow.format(False), flow.format(True))
    assert "-r" not in without
