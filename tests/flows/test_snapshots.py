"""Keyed steps snapshot their state as pickled bytes, not deep copies, and resume from both."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main

from airis.flows import snapshots


class Total:
    """A running total that counts how often it is deep-copied and pickled."""

    copies = 0
    pickles = 0

    def __init__(self, value: int = 0) -> None:
        self.value = value

    def __deepcopy__(self, memo: dict) -> Total:
        Total.copies += 1
        return Total(self.value)

    def __reduce__(self) -> tuple:
        Total.pickles += 1
        return Total, (self.value,)


def _running_total(total: Total | None, value: int) -> tuple[Total, int]:
    total = total or Total()
    total.value += value
    return total, total.value


def _flow(stateful_map, inp: list, out: list) -> Dataflow:
    flow = Dataflow("totals")
    keyed = op.key_on("key", op.input("read", flow, TestingSource(inp)), lambda _v: "k")
    op.output("out", stateful_map("running_total", keyed, _running_total), TestingSink(out))
    return flow


def _crash_then_resume(tmp_path: Path, before, after, keep: bool = True) -> tuple[list, list]:
    init_db_dir(tmp_path, 1)
    recovery = RecoveryConfig(str(tmp_path))
    abort = TestingSource.ABORT()  # the crash; once triggered, a resumed run passes it
    first: list = []
    with snapshots.kept(keep):
        crashing = _flow(before, [1, 2, 3, abort], first)
    run_main(crashing, epoch_interval=timedelta(0), recovery_config=recovery)
    resumed: list = []
    run_main(_flow(after, [1, 2, 3, abort, 4], resumed), epoch_interval=timedelta(0),
             recovery_config=recovery)  # fmt: skip
    return [v for _k, v in first], [v for _k, v in resumed]


def test_snapshots_are_pickles_not_deep_copies(tmp_path: Path) -> None:
    Total.copies = Total.pickles = 0
    first, resumed = _crash_then_resume(tmp_path, snapshots.stateful_map, snapshots.stateful_map)
    assert (first, resumed) == ([1, 3, 6], [10])
    assert Total.copies == 0 and Total.pickles > 0
    copy.deepcopy(Total())  # what Bytewax's own stateful_map does every epoch
    assert Total.copies == 1


def test_a_snapshot_taken_by_bytewaxs_stateful_map_resumes(tmp_path: Path) -> None:
    assert _crash_then_resume(tmp_path, op.stateful_map, snapshots.stateful_map)[1] == [10]


def test_steps_built_without_snapshots_take_none(tmp_path: Path) -> None:
    Total.copies = Total.pickles = 0
    out: list = []
    with snapshots.kept(False):
        flow = _flow(snapshots.stateful_map, list(range(1, 6)), out)
    run_main(flow, epoch_interval=timedelta(0))  # an epoch per item: a snapshot asked each
    assert [v for _k, v in out] == [1, 3, 6, 10, 15]
    assert Total.copies == Total.pickles == 0
    # What taking none means with recovery (why only a run without it may): the resumed
    # run starts the state afresh.
    assert _crash_then_resume(tmp_path, snapshots.stateful_map, snapshots.stateful_map,
                              keep=False)[1] == [4]  # fmt: skip
