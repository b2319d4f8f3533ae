"""ServiceWindowDetector: event-time windows, the watermark, lateness and resuming."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from airis.events import MetricPoint
from airis.operators.windowing import windowed_detector
from airis.operators.windowing.service_window import close_window
from airis.operators.windowing.windowed_detector import ServiceWindowDetector, _epoch_seconds

T0 = datetime(2026, 11, 25, tzinfo=UTC)


def pt(seconds: float, value: float = 1.0, signal: str = "cpu") -> MetricPoint:
    return MetricPoint(
        ts=T0 + timedelta(seconds=seconds), service="api", signal=signal, value=value
    )


def test_windows_close_in_order_once_the_watermark_passes_their_end() -> None:
    det = ServiceWindowDetector(window_seconds=10, lateness_seconds=2)
    closed, late = det.update_many([pt(s) for s in range(0, 21)], now=0.0)
    assert [(w.start, w.end) for w in closed] == [(T0, T0 + timedelta(seconds=10))]
    assert late == [] and det.service == "api"
    assert closed[0].signals["cpu"].count == 10
    closed, _ = det.update_many([pt(32)], now=0.0)  # watermark 30: [10, 20) and [20, 30) close
    assert [w.start.second for w in closed] == [10, 20]


def test_a_quiet_service_has_its_last_window_closed_by_system_time_after_the_grace() -> None:
    det = ServiceWindowDetector(window_seconds=10, lateness_seconds=2, idle_grace_seconds=60)
    det.update_many([pt(0), pt(5)], now=100.0)  # watermark 3; window [0, 10) open
    assert det.next_close_in(100.0) == 67.0  # 60 s of grace, then 7 s to pass its end
    assert det.close_due(166.0) == []
    (window,) = det.close_due(167.0)
    assert window.end == T0 + timedelta(seconds=10)
    assert det.next_close_in(107.0) is None


def test_the_watermark_never_goes_back_and_older_points_are_late() -> None:
    det = ServiceWindowDetector(window_seconds=10, lateness_seconds=2, idle_grace_seconds=0)
    det.update_many([pt(100)], now=0.0)
    assert det.watermark(50.0) == T0 + timedelta(seconds=148)  # 98 + 50 s waited
    _, late = det.update_many([pt(120), pt(150)], now=50.0)
    assert [p.ts for p in late] == [T0 + timedelta(seconds=120)]
    assert det.watermark(50.0) == T0 + timedelta(seconds=148)  # 150 − 2 = 148: not lower


def test_bursts_and_pauses_shorter_than_the_grace_make_nothing_late() -> None:
    """Issue 13: 5-s delivery batches made 40 % of the points late, a 22-s broker restart 29 %."""
    det = ServiceWindowDetector(window_seconds=10, lateness_seconds=2, idle_grace_seconds=60)
    late_total, sent, now = 0, 0, 0.0
    for burst in range(60):  # every 10 s of system time, the last 10 s of points at once
        now = 10.0 * burst + (45.0 if burst >= 30 else 0.0)  # and a 45-s pause half way
        points = [pt(10 * burst + s) for s in range(10)]
        _, late = det.update_many(points, now=now)
        late_total, sent = late_total + len(late), sent + len(points)
    assert sent == 600 and late_total == 0
    closed, _ = det.update_many([], now=now + 200)  # quiet for longer than the grace
    assert closed and det.next_close_in(now + 200) is None  # every window closed


def test_resume_does_not_count_the_downtime() -> None:
    det = ServiceWindowDetector(window_seconds=10, lateness_seconds=2)
    det.update_many([pt(0), pt(5)], now=0.0)
    restored = pickle.loads(pickle.dumps(det))
    restored.resume(now=3600.0)  # an hour later, in a new process
    assert restored.close_due(3600.0) == []
    _, late = restored.update_many([pt(6)], now=3600.0)
    assert late == []
    assert [w.signals["cpu"].count for w in restored.close_all()] == [3]


def test_anomalous_windows_carry_their_anomalies() -> None:
    det = ServiceWindowDetector(window_seconds=10, lateness_seconds=0)
    steady = [pt(s, 50.0 + (s % 3)) for s in range(0, 3000, 10)]
    det.update_many(steady, now=0.0)
    closed, _ = det.update_many([pt(3000, 500.0), pt(3010, 51.0)], now=0.0)
    spike = [w for w in closed if w.start == T0 + timedelta(seconds=3000)]
    assert spike and [a.kind for a in spike[0].anomalies] == ["spike"]


@pytest.mark.parametrize("threshold", [0.05, 0.5, 0.9, 0.999])
def test_every_closed_window_is_the_one_close_window_makes(threshold: float) -> None:
    """The windows under the threshold skip `close_window`: each is still the window it
    makes of the same signals, anomalies included, at every threshold."""
    det = ServiceWindowDetector(window_seconds=10, lateness_seconds=0, threshold=threshold)
    points = [pt(s, 50.0 + (s % 7) + (400.0 if s % 997 < 20 else 0.0)) for s in range(0, 6000, 5)]
    closed = [*det.update_many(points, now=0.0)[0], *det.close_all()]
    assert len(closed) == 600
    made = [close_window("api", w.start, w.end, w.signals, threshold, detector="ensemble")
            for w in closed]  # fmt: skip
    assert closed == made
    assert any(w.anomalies for w in closed)


def test_a_threshold_close_window_refuses_is_refused_at_the_first_close() -> None:
    det = ServiceWindowDetector(window_seconds=10, lateness_seconds=0, threshold=1.5)
    det.update_many([pt(0), pt(5)], now=0.0)
    with pytest.raises(ValueError, match="threshold"):
        det.close_all()


def test_points_refused_by_the_signal_cap_are_handed_back_not_scored() -> None:
    from functools import partial

    from airis.operators.detectors.detector_bank import DetectorBank

    svc = ServiceWindowDetector("api", 10, 2, bank=partial(DetectorBank, max_signals=1))
    closed, late = svc.update_many([pt(0), pt(1, 5.0, "mem"), pt(12, 3.0)], now=0.0)
    assert [p.signal for p in svc.take_refused()] == ["mem"]
    assert svc.take_refused() == [] and late == []
    assert list(closed[0].signals) == ["cpu"]
    # the points after the refused one keep their own signal and value
    (rest,) = svc.close_all()
    assert list(rest.signals) == ["cpu"] and rest.signals["cpu"].assessment.observed == 3.0


def test_a_batch_listing_each_signal_over_its_span_is_not_late_against_itself() -> None:
    # An OTLP message (or a Collector's batch of several) lists each metric's data points
    # over the whole span, one metric after another: 20 minutes of cpu, then 20 of mem.
    by_signal = [pt(s, float(s % 7), signal) for signal in ("cpu", "mem") for s in range(1200)]
    in_time = sorted(by_signal, key=lambda p: p.ts)
    runs = []
    for batch in (by_signal, in_time):
        det = ServiceWindowDetector(window_seconds=10, lateness_seconds=2)
        closed, late = det.update_many(batch, now=0.0)
        runs.append((late, [(w.start, sorted(w.signals), w.signals["mem"].count) for w in closed]))
    assert runs[0] == runs[1]
    assert runs[0][0] == [] and len(runs[0][1]) == 119


@settings(max_examples=300, deadline=None)
@example([k % 9 for k in range(30)], UTC)  # kept: a third of them distinct
@given(
    st.lists(st.integers(0, 40), max_size=60),
    st.sampled_from([UTC, timezone(timedelta(hours=-5))]),
)
def test_epoch_seconds_are_each_stamps_timestamp(offsets: list[int], zone: timezone) -> None:
    """Shared stamps are worked out once, equal ones built apart too; mostly distinct ones
    each (both ways of `_epoch_seconds`); known ones from the stamps kept, and the same
    while the kept ones fill up and start afresh."""
    t0 = datetime(2026, 12, 4, 1, 2, 3, 456789, tzinfo=UTC)
    stamps = [(t0 + timedelta(seconds=10 * k, microseconds=k)).astimezone(zone) for k in offsets]
    expected = [ts.timestamp() for ts in stamps]
    later = [[ts + timedelta(hours=h) for ts in stamps] for h in (1, 2, 3)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(windowed_detector, "_SECONDS", {})
        patch.setattr(windowed_detector, "_SECONDS_KEPT", 12)
        most = 12  # the bound: what is kept, or one batch's stamps if more (kept whole)
        for batch in (stamps, stamps, stamps[::-1], stamps[: len(stamps) // 2], *later, stamps):
            assert _epoch_seconds(batch).tolist() == [ts.timestamp() for ts in batch]
            most = max(most, len(set(batch)))
            assert len(windowed_detector._SECONDS) <= most
    assert _epoch_seconds(stamps).tolist() == expected


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=20),
    st.integers(1, 5),
    st.integers(0, 19),
    st.sampled_from([UTC, timezone(timedelta(hours=-5))]),
)
def test_epoch_seconds_of_ticks_over_and_over_are_each_stamps_timestamp(
    offsets: list[int], cycles: int, cut: int, zone: timezone
) -> None:
    """An OTLP message's order: each metric's points over the same ticks (the last cut short
    here), equal stamps built apart too."""
    t0 = datetime(2026, 12, 4, 1, 2, 3, 456789, tzinfo=UTC)
    ticks = [(t0 + timedelta(seconds=10 * k)).astimezone(zone) for k in offsets]
    stamps = [ts + timedelta(0) if n % 2 else ts for n in range(cycles) for ts in ticks]
    stamps = stamps[: max(1, len(stamps) - cut)]
    assert _epoch_seconds(stamps).tolist() == [ts.timestamp() for ts in stamps]
