from __future__ import annotations

import logging
import math
import pickle
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airis.batches import plain_window
from airis.events import MetricPoint, event_id
from airis.operators.closed_windows import ClosedWindows
from airis.operators.types import (
    CELL_WIDTH,
    COMPONENT,
    CONFIDENCE,
    COUNT,
    EXPECTED,
    LOWER,
    OBSERVED,
    SCORE,
    STATE,
    UPPER,
    Assessment,
    ScoredPoint,
    SignalSummary,
)
from airis.operators.windowing import service_window
from airis.operators.windowing.service_window import (
    add_point,
    close_window,
    close_windows,
    merge_summaries,
    new_summaries,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
END = T0 + timedelta(seconds=10)


def verdict(
    score: float,
    observed: float = 500.0,
    expected: float = 100.0,
    state: str = "recent",
    component: str = "level",
    lower: float = 80.0,
    upper: float = 120.0,
) -> Assessment:
    return Assessment(score, observed, expected, lower, upper, state, component, 0.9)


def scored(signal: str, score: float, ms: int = 0, **kw: object) -> ScoredPoint:
    assessment = verdict(score, **kw)
    point = MetricPoint(
        ts=T0 + timedelta(milliseconds=ms),
        service="checkout",
        signal=signal,
        value=assessment.observed,
    )
    return ScoredPoint(point, assessment)


def fold(points: list[ScoredPoint]) -> dict[str, SignalSummary]:
    acc = new_summaries()
    for p in points:
        acc = add_point(acc, p)
    return acc


def summaries(**scores: float) -> dict[str, SignalSummary]:
    return {name: SignalSummary(T0, verdict(score), 1) for name, score in scores.items()}


# --- builder / folder / merger ---------------------------------------------------------------


def test_new_summaries_is_a_fresh_empty_dict() -> None:
    a, b = new_summaries(), new_summaries()
    assert a == {} and a is not b


def test_add_point_keeps_the_worst_point_and_counts() -> None:
    acc = new_summaries()
    out = add_point(acc, scored("latency", 0.2, ms=0))
    assert out is acc
    add_point(acc, scored("latency", 0.95, ms=1, observed=812.3))
    add_point(acc, scored("latency", 0.5, ms=2))
    add_point(acc, scored("errors", 0.1, ms=3))
    assert acc["latency"].count == 3
    assert acc["latency"].assessment.score == 0.95
    assert acc["latency"].assessment.observed == 812.3
    assert acc["latency"].ts == T0 + timedelta(milliseconds=1)
    assert acc["errors"].count == 1


def test_add_point_tie_goes_to_the_earlier_point() -> None:
    acc = fold([scored("s", 0.9, ms=5, observed=1.0), scored("s", 0.9, ms=2, observed=2.0)])
    assert acc["s"].assessment.observed == 2.0
    acc = fold([scored("s", 0.9, ms=2, observed=2.0), scored("s", 0.9, ms=5, observed=1.0)])
    assert acc["s"].assessment.observed == 2.0


def test_merge_summaries_adds_counts_keeps_worst_and_leaves_inputs_alone() -> None:
    a = fold([scored("x", 0.3, ms=0), scored("y", 0.99, ms=1)])
    b = fold([scored("x", 0.8, ms=2), scored("x", 0.1, ms=3), scored("z", 0.5, ms=4)])
    a_before, b_before = dict(a), dict(b)
    merged = merge_summaries(a, b)
    assert a == a_before and b == b_before
    assert {k: v.count for k, v in merged.items()} == {"x": 3, "y": 1, "z": 1}
    assert merged["x"].assessment.score == 0.8
    assert merged == merge_summaries(b, a)


_points = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(0.0, 1.0)), min_size=0, max_size=30
)


@given(_points, st.data())
def test_merging_folds_of_parts_equals_folding_the_whole(pts, data) -> None:
    points = [scored(signal, score, ms=i) for i, (signal, score) in enumerate(pts)]
    k = data.draw(st.integers(0, len(points)))
    whole = fold(points)
    assert merge_summaries(fold(points[:k]), fold(points[k:])) == whole
    assert merge_summaries(fold(points[k:]), fold(points[:k])) == whole
    assert sum(s.count for s in whole.values()) == len(points)


def test_accumulator_pickles() -> None:
    acc = fold([scored("x", 0.3), scored("y", 0.99, ms=1)])
    assert pickle.loads(pickle.dumps(acc)) == acc


# --- close_window ----------------------------------------------------------------------------


def test_close_window_threshold_is_inclusive() -> None:
    window = close_window("checkout", T0, END, summaries(a=0.9, b=0.8999, c=1.0), threshold=0.9)
    assert [a.signal for a in window.anomalies] == ["a", "c"]
    assert window.service == "checkout" and window.start == T0 and window.end == END
    assert set(window.signals) == {"a", "b", "c"}


def test_close_window_builds_the_anomaly() -> None:
    summary = SignalSummary(
        T0, verdict(0.97, observed=812.3, expected=120.5, state="seasonal", component="seasonal"), 4
    )
    window = close_window("checkout", T0, END, {"latency_p99": summary}, 0.9, detector="robust")
    (anomaly,) = window.anomalies
    assert anomaly.id == event_id("checkout", "latency_p99", "spike", T0)
    assert anomaly.kind == "spike"
    assert (anomaly.window_start, anomaly.window_end) == (T0, END)
    assert anomaly.score == 0.97
    assert (anomaly.observed, anomaly.expected, anomaly.lower, anomaly.upper) == (
        812.3,
        120.5,
        80.0,
        120.0,
    )
    assert anomaly.state == "seasonal"
    assert anomaly.detector == "robust/seasonal"


def test_close_window_dip_and_detector_without_component() -> None:
    summary = SignalSummary(T0, verdict(0.95, observed=3.0, expected=100.0, component=""), 1)
    (anomaly,) = close_window("checkout", T0, END, {"rps": summary}, 0.9).anomalies
    assert anomaly.kind == "dip"
    assert anomaly.id == event_id("checkout", "rps", "dip", T0)
    assert anomaly.detector == service_window.DEFAULT_DETECTOR


@pytest.mark.parametrize(
    ("state", "score", "anomalous"),
    [
        ("warming", 0.95, False),
        ("warming", 0.998, False),
        ("warming", 0.999, True),
        ("warming", 1.0, True),
        ("recent", 0.95, True),
        ("seasonal", 0.95, True),
        ("recent", 0.5, False),
    ],
)
def test_close_window_warming_detector_only_alerts_on_extremes(
    state: str, score: float, anomalous: bool
) -> None:
    summary = SignalSummary(T0, verdict(score, state=state), 1)
    window = close_window("checkout", T0, END, {"s": summary}, threshold=0.9, extreme=0.999)
    assert bool(window.anomalies) is anomalous
    if anomalous:
        assert window.anomalies[0].state == state


def test_close_window_is_deterministic_and_copies_summaries() -> None:
    acc = summaries(b=0.95, a=0.99)
    w1 = close_window("checkout", T0, END, acc, 0.9)
    w2 = close_window("checkout", T0, END, acc, 0.9)
    assert w1 == w2
    assert [a.signal for a in w1.anomalies] == ["a", "b"]
    acc.clear()
    assert set(w1.signals) == {"a", "b"}


@pytest.mark.parametrize(("threshold", "extreme"), [(0.0, 0.999), (0.95, 0.9), (0.9, 1.5)])
def test_close_window_rejects_bad_thresholds(threshold: float, extreme: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        close_window("checkout", T0, END, {}, threshold, extreme)


def test_close_window_leaves_out_unusable_assessments_with_a_warning(caplog) -> None:
    bad = SignalSummary(T0, verdict(0.95, lower=-math.inf), 1)
    good = SignalSummary(T0, verdict(0.95), 1)
    with caplog.at_level(logging.WARNING, logger=service_window.__name__):
        window = close_window("checkout", T0, END, {"bad": bad, "good": good}, 0.9)
    assert [a.signal for a in window.anomalies] == ["good"]
    assert "bad" in window.signals
    assert "checkout/bad" in caplog.text


@pytest.mark.parametrize(
    ("service", "start"),
    [
        ("bad name", T0),
        ("checkout", datetime(2100, 1, 1, tzinfo=UTC)),
        ("checkout", T0.replace(tzinfo=None)),
    ],
)
def test_close_window_leaves_out_every_anomaly_of_a_window_anomaly_cannot_hold(
    service: str, start: datetime, caplog
) -> None:
    good = SignalSummary(T0, verdict(0.95), 1)
    with caplog.at_level(logging.WARNING, logger=service_window.__name__):
        window = close_window(service, start, start + (END - T0), {"a": good, "b": good}, 0.9)
    assert window.anomalies == ()
    assert f"{service}/a" in caplog.text and f"{service}/b" in caplog.text


def _mostly(valid: list, edge: st.SearchStrategy) -> st.SearchStrategy:
    """A valid value three times in four: examples are then valid but for a field or two."""
    return st.integers(0, 3).flatmap(lambda i: edge if i == 0 else st.sampled_from(valid))


_FLOATS = _mostly(
    [0.0, 0.5, 1.0, 5.0],
    st.one_of(st.floats(), st.sampled_from([-0.0, 1.0000001, -1e-300, math.nan]), st.integers()),
)
_NAMES = _mostly(["api", "cpu", "a/b:c-d_e.f", "a" * 128], st.one_of(
    st.sampled_from(["a" * 129, "", "bad name", "é", "api\n"]), st.text(max_size=6)
))  # fmt: skip
_EDGES = [datetime(2000, 1, 1, tzinfo=UTC), datetime(2099, 12, 31, 23, 59, 55, tzinfo=UTC)]
_TIMES = _mostly(_EDGES, st.one_of(
    st.datetimes(timezones=st.sampled_from([UTC, None, timezone(timedelta(hours=1))])),
    st.sampled_from([datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
                     datetime(2100, 1, 1, tzinfo=UTC)]),
))  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(
    service=_NAMES, signal=_NAMES, kind=st.sampled_from(["spike", "dip", "drop"]),
    model=st.sampled_from(["ensemble", "ensemble/level", 7]),
    start=_TIMES, length=st.sampled_from([timedelta(0), timedelta(seconds=10)]),
    score=_FLOATS, observed=_FLOATS, expected=_FLOATS, lower=_FLOATS, upper=_FLOATS,
    state=st.sampled_from(["warming", "recent", "seasonal", "prior", "other"]),
)  # fmt: skip
def test_an_anomaly_made_without_validation_is_the_one_validation_accepts(
    service, signal, kind, model, start, length, score, observed, expected, lower, upper, state,
) -> None:  # fmt: skip
    """Whatever `close_window` makes without validation, `Anomaly` validates to the same
    event; what it leaves to validation is left, not made."""
    from pydantic import ValidationError

    from airis.events import Anomaly, constructed

    try:
        end = start + length
    except OverflowError:
        return
    fields = {
        "id": "0" * 32, "service": service, "signal": signal, "kind": kind,
        "window_start": start, "window_end": end, "score": score, "observed": observed,
        "expected": expected, "lower": lower, "upper": upper, "state": state, "detector": model,
    }  # fmt: skip
    fits = plain_window(service, start, end)
    if not (fits and service_window._surely_valid(fields)):
        return
    made = constructed(Anomaly, fields, set(fields))
    try:
        validated = Anomaly(**{**made.model_dump(), "window_start": start, "window_end": end})
    except ValidationError as ex:
        raise AssertionError(f"made without validation, yet invalid: {ex}") from ex
    assert made == validated and made.model_dump() == validated.model_dump()
    assert type(made.score) is float and made.window_start.tzinfo is UTC


def test_a_window_s_anomalies_made_without_validation_are_those_validation_makes() -> None:
    """`close_window` over windows of every state and score gives the anomalies of the
    validating way, field for field."""
    from unittest.mock import patch

    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    summaries = {
        f"s{i}": SignalSummary(t0, Assessment(score, 5.0 + i, 4.0, 3.0, 6.0, state, "level", 1), 1)
        for i, (score, state) in enumerate([(0.99, "recent"), (0.95, "warming"), (0.999, "warming"),
                                            (0.3, "recent"), (1.0, "prior"), (0.97, "seasonal")])
    }  # fmt: skip
    fast = close_window("api", t0, t0 + timedelta(seconds=10), summaries, 0.9, 0.99)
    with patch.object(service_window, "_surely_valid", return_value=False):
        slow = close_window("api", t0, t0 + timedelta(seconds=10), summaries, 0.9, 0.99)
    assert len(fast.anomalies) == 4
    assert [a.model_dump() for a in fast.anomalies] == [a.model_dump() for a in slow.anomalies]
    assert fast == slow


_CELL_SCORES = [math.nan, 0.0, 0.5, 0.9, 0.95, 0.999, 1.0, 1.5]
_CELL_VALUES = [80.0, 100.0, 500.0, -3.0, math.inf]


@settings(max_examples=300, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 6), st.integers(1, 5)),
    data=st.data(),
    threshold=st.sampled_from([0.9, 0.95, 0.999]),
)
def test_windows_closed_at_once_are_those_closed_one_by_one(shape, data, threshold) -> None:
    """`close_windows` makes of each window what `close_window` makes of its columns: the
    same anomalies in the same order, slots without a point ignored (their cells keep an old
    window's score), warming detectors only at extremes, unusable verdicts left out."""
    windows, slots = shape
    cells = np.zeros((windows, slots, CELL_WIDTH))
    for w in range(windows):
        for s in range(slots):
            cells[w, s, SCORE] = data.draw(st.sampled_from(_CELL_SCORES))
            for column in (OBSERVED, EXPECTED, LOWER, UPPER):
                cells[w, s, column] = data.draw(st.sampled_from(_CELL_VALUES))
            cells[w, s, STATE] = data.draw(st.integers(0, 2))
            cells[w, s, COMPONENT] = data.draw(st.integers(0, 1))
            cells[w, s, CONFIDENCE] = 0.9
            cells[w, s, COUNT] = data.draw(st.sampled_from([0, 1, 3]))
    names = tuple(data.draw(st.permutations(["p99", "cpu", "err", "mem", "disk"]))[:slots])
    used = [int((cells[w, :, COUNT] > 0).sum()) for w in range(windows)]
    worst = [float(np.nanmax(cells[w, :, SCORE], initial=-np.inf)) for w in range(windows)]
    closed = ClosedWindows(
        "checkout", T0, 10_000_000, list(range(3, 3 + windows)), names, cells, used, worst,
        ["level", "drift"],
    )  # fmt: skip
    indices = sorted(data.draw(st.sets(st.integers(0, windows - 1), min_size=1)))
    one_by_one = {
        i: close_window("checkout", closed.start(i), closed.end(i), closed.columns(i), threshold)
        for i in indices
    }
    at_once = close_windows(closed, indices, threshold)
    assert list(at_once) == indices
    for i in indices:  # the signals by their repr: a NaN score is not equal to itself
        got, expected = at_once[i], one_by_one[i]
        assert (got.service, got.start, got.end) == (expected.service, expected.start, expected.end)
        assert got.anomalies == expected.anomalies and repr(got.signals) == repr(expected.signals)


def test_windows_closed_at_once_reject_bad_thresholds() -> None:
    closed = ClosedWindows(
        "checkout", T0, 10_000_000, [0], ("cpu",), np.zeros((1, 1, CELL_WIDTH)), [0], [0.0], []
    )
    with pytest.raises(ValueError, match="threshold"):
        close_windows(closed, [0], threshold=0.0)
