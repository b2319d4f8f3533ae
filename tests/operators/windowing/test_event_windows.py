"""The shared event-time window rule, through the log and trace signal operators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airis.events import LogRecord, Span
from airis.operators.signals.log_signals import ServiceLogSignals
from airis.operators.signals.trace_signals import ServiceTraceSignals

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def line(second: float) -> LogRecord:
    return LogRecord(ts=T0 + timedelta(seconds=second), service="api", body="GET / took 3 ms")


def rates(windows) -> list[tuple[int, float]]:
    return [
        (int((w.start - T0).total_seconds()), p.value)
        for w in windows
        for p in w.points
        if p.signal in ("log_rate", "trace_rate")
    ]


def test_windows_without_lines_report_a_log_rate_of_zero_and_no_error_ratio() -> None:
    logs = ServiceLogSignals(window_seconds=10, lateness_seconds=0, warmup_windows=0)
    windows, _ = logs.update_many([line(1), line(2), line(45)])
    assert rates(windows) == [(0, 0.2), (10, 0.0), (20, 0.0), (30, 0.0)]
    assert {p.signal for p in windows[1].points} == {
        "log_rate",
        "log_new_templates",
        "log_rare_lines",
    }


def test_a_late_line_among_lines_in_time_is_given_back_and_not_mined() -> None:
    """The lines in time are tokenised together; each keeps its own template."""
    logs = ServiceLogSignals(window_seconds=10, lateness_seconds=0, warmup_windows=0)
    logs.update_many([line(50)])

    def said(second: float, body: str) -> LogRecord:
        return LogRecord(ts=T0 + timedelta(seconds=second), service="api", body=body)

    _, late = logs.update_many(
        [said(55, "cache warmed"), said(20, "late line here"), said(56, "index rebuilt in 4 s")]
    )
    assert [r.body for r in late] == ["late line here"]
    (window,) = logs.close_all()
    assert sorted(t.template for t in window.templates) == [
        "GET / took <*>",
        "cache warmed",
        "index rebuilt in <*>",
    ]
    assert len(logs.miner.templates()) == 3  # the late line was not mined


def test_a_service_that_stops_logging_drops_to_zero_for_the_quiet_allowance_only() -> None:
    logs = ServiceLogSignals(window_seconds=10, lateness_seconds=0, quiet_seconds=30)
    logs.update_many([line(1), line(2)])
    closed = logs.advance(logs.watermark(waited=3600))  # an hour of silence
    assert rates(closed) == [(0, 0.2), (10, 0.0), (20, 0.0), (30, 0.0)]
    assert logs.next_due_end() is None  # gone: nothing more until it logs again
    later, _ = logs.update_many([line(7200), line(7215)])
    assert rates(later) == [(7200, 0.1)]  # the hour's gap is not filled


def test_spans_stopping_show_as_a_trace_rate_of_zero() -> None:
    traces = ServiceTraceSignals(window_seconds=60, lateness_seconds=0, quiet_seconds=120)
    span = Span(trace_id="a" * 32, span_id="b" * 16, service="api", name="GET /",
                start=T0 + timedelta(seconds=5), duration_ms=3.0)  # fmt: skip
    traces.update_many([span])
    assert rates(traces.advance(traces.watermark(waited=600))) == [(0, 1 / 60), (60, 0), (120, 0)]
