"""`ClusterPlan`: what each dataflow process of `airis run --kafka` is started with."""

from __future__ import annotations

import os
from pathlib import Path

from airis.app.cluster import ClusterPlan


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
