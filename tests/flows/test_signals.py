"""The Bytewax side of the log and trace windowing (`CountWindows`), on system time we hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airis.batches import LogBatch
from airis.events import LogRecord
from airis.flows.signals import CountWindows
from airis.operators.signals.log_signals import ServiceLogSignals

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def line(second: float) -> LogRecord:
    return LogRecord(ts=T0 + timedelta(seconds=second), service="api", body="GET / took 3 ms")


def test_the_flow_closes_a_quiet_service_s_windows_after_the_grace_and_not_before() -> None:
    now = [500.0]  # system time, in our hands
    logs = ServiceLogSignals(window_seconds=10, lateness_seconds=0, quiet_seconds=20)
    logic = CountWindows(
        logs, source="logs", batch_type=LogBatch, idle_grace=60, clock=lambda: now[0]
    )
    assert logic.on_batch([[line(0), line(1)]]) == ([], logic.RETAIN)  # this service's batch
    asked = datetime.now(UTC)
    wake = logic.notify_at()  # the grace (60 s), then the window's end past the last line (9 s)
    assert wake is not None and timedelta(seconds=69) <= wake - asked < timedelta(seconds=70)
    now[0] += 68
    assert logic.on_notify() == ([], logic.RETAIN)  # not yet
    now[0] += 1
    closed, _ = logic.on_notify()
    assert [p.value for w in closed for p in w.points if p.signal == "log_rate"] == [0.2]
    now[0] += 3600  # an hour of silence: zeros for the quiet allowance, then nothing
    closed, _ = logic.on_notify()
    assert [p.value for w in closed for p in w.points if p.signal == "log_rate"] == [0, 0]
    assert logic.notify_at() is None
