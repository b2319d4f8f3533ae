"""The Bytewax side of the log and trace windowing: `CountWindows` on system time we hold, and
the closed windows' signals as batches (`signal_batches`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airis.events import LogRecord, Span
from airis.flows.detection import _detection_key, batch_by_key
from airis.flows.signals import CountWindows, reported_templates, signal_batches
from airis.operators.signals.log_signals import ServiceLogSignals
from airis.operators.signals.trace_signals import ServiceTraceSignals

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def line(second: float, service: str = "api") -> LogRecord:
    return LogRecord(ts=T0 + timedelta(seconds=second), service=service, body="GET / took 3 ms")


def test_the_flow_closes_a_quiet_service_s_windows_after_the_grace_and_not_before() -> None:
    now = [500.0]  # system time, in our hands
    logs = ServiceLogSignals(window_seconds=10, lateness_seconds=0, quiet_seconds=20)
    logic = CountWindows(logs, source="logs", idle_grace=60, clock=lambda: now[0])
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


def test_closed_windows_signals_become_one_keyed_batch_per_service_as_their_points() -> None:
    logs = {s: ServiceLogSignals(window_seconds=10, lateness_seconds=0) for s in ("api", "db")}
    traces = ServiceTraceSignals(window_seconds=10, lateness_seconds=0)
    closed: list = []
    for second in (0, 1, 12, 25):
        for service, windows in logs.items():
            closed += windows.update_many([line(second, service)])[0]
    spans = [Span(trace_id="a" * 32, span_id=f"{s:016x}", service="api", name="GET /",
                  start=T0 + timedelta(seconds=s), duration_ms=s + 1.0,
                  attributes={"span.kind": "server"}) for s in (0, 3, 14, 31)]  # fmt: skip
    red = traces.update_many(spans)[0]
    for windows in (closed, red):
        batches = signal_batches(windows)
        assert [b.service for b in batches] == list(dict.fromkeys(w.service for w in windows))
        points = [p for w in windows for p in w.points]
        assert len(points) > len(windows) > 1
        for batch in batches:
            assert list(batch.points()) == [p for p in points if p.service == batch.service]
            assert {batch.key} == {_detection_key(p) for p in batch.points()} != {batch.service}
            # keyed by its maker: the detection exchange moves it as it is
            assert batch_by_key([batch]) == [(batch.key, batch)]
            assert batch_by_key([batch])[0][1] is batch


def test_windows_closed_together_report_a_template_once_until_it_changes() -> None:
    logs = ServiceLogSignals(window_seconds=10, lateness_seconds=0)
    closed = logs.update_many([line(0), line(11), line(31)])[0]  # [0, 10), [10, 20), [20, 30)
    assert [len(w.templates) for w in closed] == [1, 1, 0]
    first, second = (w.templates[0] for w in closed[:2])
    assert first is second  # the template did not change in between: one event
    assert reported_templates(closed) == [first]
    later = logs.update_many([line(45)])[0]  # [30, 40): seen again: a new event
    assert (first.count, later[0].templates[0].count) == (3, 4)
    assert reported_templates([*closed, *later]) == [first, later[0].templates[0]]
