"""`ClosedWindows`: its columns say what its windows say, and the steps that read the columns
(alerting, planning, the model's values) do what they did window by window."""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from airis.events import MetricPoint
from airis.operators.alerting.alert_manager import AlertManager
from airis.operators.closed_windows import ClosedWindows
from airis.operators.planning.service_planner import ServicePlanner
from airis.operators.types import CELL_WIDTH, COUNT, WindowValues, observed_values
from airis.operators.windowing.windowed_detector import ServiceWindowDetector
from tests.operators.alerting import alert_windows

T0 = datetime(2026, 11, 25, tzinfo=UTC)
SIGNALS = ("request_rate", "cpu", "memory", "disk", "latency_p99")


def _blocks(seed: int, seconds: int = 6 * 3600) -> list[ClosedWindows]:
    """A service's closed windows, a block per batch of input: signals that come and go,
    gaps without any point, a leak on memory and spikes (anomalies, alerts, warnings)."""
    rng = random.Random(seed)
    det = ServiceWindowDetector("api", window_seconds=10, lateness_seconds=2)
    points, blocks = [], []
    for s in range(0, seconds, 10):
        if 7200 < s < 7600:  # a gap: windows missing altogether
            continue
        for signal in SIGNALS:
            if signal == "disk" and rng.random() < 0.2:  # a window without the signal
                continue
            value = 50 + rng.gauss(0, 1) + (300 if s % 3000 < 60 else 0)
            if signal == "memory":
                value = 40 + max(0, s - 10_000) / 300 + rng.gauss(0, 0.3)
            ts = T0 + timedelta(seconds=s + rng.random() * 9)
            points.append(MetricPoint(ts=ts, service="api", signal=signal, value=value))
        if rng.random() < 0.1 or len(points) > rng.choice([5, 50, 800]):
            blocks.append(det.update_many(points, now=0.0)[0])
            points = []
    blocks += [det.update_many(points, now=0.0)[0], det.close_all()]
    return [block for block in blocks if len(block)]


@pytest.mark.parametrize("seed", range(3))
def test_the_columns_say_what_the_windows_say(seed: int) -> None:
    blocks = _blocks(seed)
    assert any(not b.full for b in blocks) and any(b.anomalous for b in blocks)
    for block in blocks:
        windows = list(block)  # each made from the columns, or by `close_window`
        assert block.end_times() == [w.end.timestamp() for w in windows]
        assert list(block.ends()) == [w.end for w in windows] == block.ends()[:]
        assert block.starts() == [w.start for w in windows]
        for signal in (*SIGNALS, "absent"):
            column = [w.signals[signal].assessment.observed if signal in w.signals else None
                      for w in windows]  # fmt: skip
            got = block.observed_column(signal)  # None: not a signal of the service now
            assert (got or [None] * len(windows)) == column
            assert got is not None or signal == "absent"
        assert block.observed().values() == [
            WindowValues(w.service, w.start, w.end, observed_values(w.signals)) for w in windows
        ]
        assert block.anomalies() == [a for w in windows for a in w.anomalies]
        names = {name for w in windows for name in w.signals}
        assert sorted(block.signal_names()) == sorted(names)
        assert pickle.loads(pickle.dumps(block)) == windows


@pytest.mark.parametrize("seed", range(3))
def test_alerting_a_block_at_once_is_alerting_its_windows_one_by_one(seed: int) -> None:
    """Blocks without anomalies while nothing is tracked skip the windows; the alerts and
    the manager's state are those of one window at a time, replayed blocks included."""
    blocks = _blocks(seed)
    fed = [*blocks, blocks[len(blocks) // 2]]  # an old block again: its windows are skipped
    at_once, one_by_one = AlertManager(), AlertManager()
    for block in fed:
        assert at_once.update_many(block) == [a for w in block for a in one_by_one.update_one(w)]
    assert pickle.dumps(at_once) == pickle.dumps(one_by_one)
    assert at_once._skipped == one_by_one._skipped > 0


def test_a_replayed_block_that_ends_later_counts_only_its_older_windows_as_skipped() -> None:
    blocks = _blocks(0)
    quiet = [b for b in blocks if not b.anomalous and len(b) > 3]
    block = quiet[-1]
    at_once, one_by_one = AlertManager(), AlertManager()
    for manager in (at_once, one_by_one):
        manager.update_one(block[1])  # the block's first two windows are then behind
    assert at_once.update_many(block) == [a for w in block for a in one_by_one.update_one(w)]
    assert at_once._skipped == one_by_one._skipped == 2
    assert at_once._last_end == one_by_one._last_end == block.end(len(block) - 1)
    older = quiet[-2]  # all behind now
    assert at_once.update_many(older) == [a for w in older for a in one_by_one.update_one(w)]
    assert at_once._skipped == one_by_one._skipped == 2 + len(older)
    assert at_once._last_end == one_by_one._last_end == block.end(len(block) - 1)


def test_a_window_without_the_signal_does_not_end_its_pending_streak() -> None:
    """Anomalous, anomalous, no point of the signal, anomalous: the third anomalous window
    fires, as `update_one` has it, from a block whose quiet window stays columns."""
    cells = np.zeros((4, 2, CELL_WIDTH))
    cells[:, :, COUNT] = 1
    cells[2, 0, COUNT] = 0  # window 2 has cpu only
    names = (alert_windows.LAT, "cpu")
    block = ClosedWindows(
        alert_windows.SERVICE, alert_windows.T0, 10_000_000, [0, 1, 2, 3], names, cells,
        [2, 2, 1, 2], [0.95, 0.95, 0.1, 0.95], ["level"],
    )  # fmt: skip
    made = {i: alert_windows.window(i, alert_windows.anomaly(i)) for i in (0, 1, 3)}
    block.set_made(made)
    assert block.signals_of(2) == ("cpu",) and alert_windows.LAT in block.signals_of(1)
    alerts = AlertManager().update_many(block)
    one_by_one = AlertManager()
    assert alerts == [a for w in block for a in one_by_one.update_one(w)]
    assert [(a.status, a.starts_at) for a in alerts] == [("firing", alert_windows.T0)]


@pytest.mark.parametrize("seed", range(3))
def test_planning_from_the_columns_is_planning_from_each_windows_values(seed: int) -> None:
    blocks = _blocks(seed, seconds=12 * 3600)
    from_columns, from_rows = ServicePlanner(step_seconds=60), ServicePlanner(step_seconds=60)
    plans = []
    for block in blocks:
        columns = {signal: block.observed_column(signal) for signal in from_columns.signals}
        got = from_columns.update_columns(block.end_times(), block.ends(), columns)
        rows = [observed_values(w.signals) for w in block]
        assert got == from_rows.update_many([w.end for w in block], rows)
        plans += got
    assert any(p.warnings for p in plans) and any(p.forecasts for p in plans)
    assert pickle.dumps(from_columns) == pickle.dumps(from_rows)
