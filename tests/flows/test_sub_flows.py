"""The sub-pipelines as Bytewax operators: they render, and snapshots from before resume."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main
from bytewax.visualize import to_json

from airis.app.kafka_commands import carry_over_snapshots
from airis.app.recovery_steps import carry_over, former_step_ids
from airis.flows import kafka_metrics, metrics_anomaly
from airis.settings import Settings


def _running_sum(total: int | None, value: int) -> tuple[int, int]:
    total = (total or 0) + value
    return total, total


def _flat(inp: list, out: list) -> Dataflow:
    """The layout before: the stateful step at the top of the flow."""
    flow = Dataflow("sums")
    keyed = op.key_on("key", op.input("read", flow, TestingSource(inp)), lambda _v: "k")
    op.output("out", op.stateful_map("running_sum", keyed, _running_sum), TestingSink(out))
    return flow


@operator
def summed(step_id: str, up: Stream[int]) -> Stream[tuple[str, int]]:
    keyed = op.key_on("key", up, lambda _v: "k")
    return op.stateful_map("running_sum", keyed, _running_sum)


def _nested(inp: list, out: list) -> Dataflow:
    """The layout after: the same steps inside an operator."""
    flow = Dataflow("sums")
    sums = summed("sum", op.input("read", flow, TestingSource(inp)))
    op.output("out", sums, TestingSink(out))
    return flow


def _crash_then_resume(tmp_path: Path, rename: bool) -> list:
    init_db_dir(tmp_path, 1)
    recovery = RecoveryConfig(str(tmp_path))
    first: list = []
    abort = TestingSource.ABORT()  # the crash; once triggered, a resumed run passes it
    run_main(
        _flat([1, 2, 3, abort], first),
        epoch_interval=timedelta(0),
        recovery_config=recovery,
    )
    assert [v for _k, v in first] == [1, 3, 6]
    if rename:
        assert carry_over(tmp_path, former_step_ids(_nested([], []), ours=(__name__,))) > 0
    resumed: list = []
    run_main(
        _nested([1, 2, 3, abort, 4], resumed),
        epoch_interval=timedelta(0),
        recovery_config=recovery,
    )
    return [v for _k, v in resumed]


def test_renamed_snapshots_resume_the_state_and_the_input_position(tmp_path: Path) -> None:
    assert _crash_then_resume(tmp_path, rename=True) == [10]


def test_without_renaming_the_nested_steps_start_over(tmp_path: Path) -> None:
    """What the renaming prevents: the state starts empty (the input position is that of the
    ``read`` step, whose id did not change here)."""
    assert _crash_then_resume(tmp_path, rename=False) == [4]


def test_the_kafka_flow_s_former_ids_are_its_steps_without_our_operators(tmp_path: Path) -> None:
    init_db_dir(tmp_path, 1)
    part = next(tmp_path.glob("part-*.sqlite3"))
    with sqlite3.connect(part) as db:
        db.execute(
            "INSERT INTO snaps (step_id, state_key, snap_epoch, ser_change) VALUES (?, ?, ?, ?)",
            ("airis_kafka_metrics.detect_and_window", "api", 1, json.dumps({}).encode()),
        )
    db.close()
    assert carry_over_snapshots(tmp_path) == 1
    with sqlite3.connect(part) as db:
        ids = [row[0] for row in db.execute("SELECT step_id FROM snaps")]
    db.close()
    assert ids == ["airis_kafka_metrics.detect.detect_and_window"]


def test_both_flows_render_with_their_sub_flows_as_steps() -> None:
    """What ``bytewax.run`` does at start when its dataflow API is on (`airis run` turns it
    on): a stream an operator returns but does not declare as a port cannot be rendered."""
    inert = {signal: TestingSource([]) for signal in ("metrics", "logs", "traces")}
    kafka = kafka_metrics.build_flow(
        store_sink=TestingSink([]), topics_sink=TestingSink([]), memory_sink=TestingSink([]),
        sources=inert,
    )  # fmt: skip
    off = Settings(forecast_signals=[], onnx_model=None)  # no model, no planning: no store-only
    simulated = metrics_anomaly.build_flow(
        TestingSource([]), TestingSink([]), off, logs=TestingSource([]), traces=TestingSource([]),
        memory=TestingSink([]),
    )  # fmt: skip
    for flow in (kafka, simulated):
        steps = json.loads(to_json(flow))["substeps"]
        names = {step["step_name"]: step for step in steps}
        assert {"otlp", "logs", "traces", "detect", "remember"} <= names.keys()
        detect_steps = {step["step_name"] for step in names["detect"]["substeps"]}
        assert "detect_and_window" in detect_steps
