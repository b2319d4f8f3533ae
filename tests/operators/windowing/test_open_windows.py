"""`OpenWindows` folds as `add_assessment` does, one point at a time, and stays bounded."""

from __future__ import annotations

import math
import pickle
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from airis.operators.closed_windows import ClosedWindows
from airis.operators.types import Assessment, SignalColumns
from airis.operators.windowing.open_windows import OpenWindows
from airis.operators.windowing.service_window import add_assessment, close_window

START = datetime(2026, 1, 5, tzinfo=UTC)
WINDOW_US = 10_000_000
STATES = ("warming", "recent", "seasonal")
COMPONENTS = ("warming", "invalid", "level", "drift", "profile")


def _points(rng: random.Random, n: int) -> list[tuple[int, str, float, tuple]]:
    """(µs after START, signal, observed, kernel verdict row): few distinct scores, so ties
    are common; some NaN scores; times within three windows, not in order."""
    points = []
    for _ in range(n):
        at = rng.randrange(0, 3 * WINDOW_US, 250_000)
        score = rng.choice([0.1, 0.5, 0.5, 0.95, math.nan])
        verdict = (score, rng.random(), 0.0, 2.0, rng.randrange(3), rng.randrange(5), 0.9)
        points.append((at, rng.choice("abcde"), rng.gauss(0, 1), verdict))
    return points


def _assessment(observed: float, verdict: tuple) -> Assessment:
    score, expected, lower, upper, state, component, confidence = verdict
    return Assessment(
        score, observed, expected, lower, upper, STATES[state], COMPONENTS[component], confidence
    )


def _by_add_assessment(points) -> dict[int, dict]:
    windows: dict[int, dict] = {}
    for at, signal, observed, verdict in points:
        ts = START + timedelta(microseconds=at)
        acc = windows.setdefault(at // WINDOW_US, {})
        add_assessment(acc, signal, ts, _assessment(observed, verdict))
    return windows


def _by_open_windows(
    points, batch: int, in_order: bool = False, at_once: bool = False
) -> dict[int, SignalColumns]:
    windows = OpenWindows(WINDOW_US)
    for i in range(0, len(points), batch):
        chunk = points[i : i + batch]
        windows.fold(
            np.array([at for at, *_ in chunk], dtype=np.int64),
            [signal for _, signal, *_ in chunk],
            np.array([verdict for *_, verdict in chunk], dtype=float),
            np.array([observed for _, _, observed, _ in chunk]),
            {},
            in_order=in_order,
        )
    ids = windows.ids()
    starts = [START + timedelta(microseconds=w * WINDOW_US) for w in ids]
    if at_once:
        return dict(zip(ids, _close_many(windows, ids), strict=True))
    return {w: windows.close(w, start) for w, start in zip(ids, starts, strict=True)}


def _close_many(windows: OpenWindows, ids: list[int]) -> list[SignalColumns]:
    """`OpenWindows.close_many`, each window's columns as `ClosedWindows` gives them."""
    closed = ClosedWindows(
        "api", START, WINDOW_US, ids, *windows.close_many(ids), windows.components
    )
    return [closed.columns(i) for i in range(len(ids))]


def _plain(summaries) -> dict[str, str]:
    return {signal: repr(summary) for signal, summary in summaries.items()}  # NaN == NaN


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("batch", [1, 7, 400])
@pytest.mark.parametrize("in_order", [False, True])
@pytest.mark.parametrize("at_once", [False, True], ids=["close", "close_many"])
def test_columns_keep_what_add_assessment_keeps(
    seed: int, batch: int, in_order: bool, at_once: bool
) -> None:
    points = _points(random.Random(seed), 400)
    if in_order:  # each batch in time order (a NaN score keeps its place: order matters)
        parts = [points[i : i + batch] for i in range(0, len(points), batch)]
        points = [point for part in parts for point in sorted(part, key=lambda p: p[0])]
    expected = _by_add_assessment(points)
    got = _by_open_windows(points, batch, in_order, at_once)
    assert sorted(got) == sorted(expected)
    for window_id, summaries in expected.items():
        assert _plain(got[window_id]) == _plain(summaries)
        observed = {signal: s.assessment.observed for signal, s in summaries.items()}
        assert repr(sorted(got[window_id].observed().items())) == repr(sorted(observed.items()))


def test_a_verdict_given_as_an_object_is_kept_with_its_own_names() -> None:
    windows = OpenWindows(WINDOW_US)
    prior = Assessment(0.99, 7.0, 1.0, 1.0, 1.0, "prior", "prior/ratio", 0.8)
    table = np.array([[0.2, 1.0, 0.0, 2.0, 1, 2, 0.9], [0.0] * 7])
    windows.fold(np.array([1, 2]), ["a", "b"], table, np.array([5.0, 0.0]), {1: prior})
    closed = windows.close(0, START)
    assert closed["b"].assessment == prior
    assert closed["a"].assessment.component == "level"
    assert closed.flagged(threshold=0.9, extreme=0.999) == ["b"]


def test_slots_of_signals_gone_are_given_up() -> None:
    windows = OpenWindows(WINDOW_US)
    many = [f"s{i}" for i in range(500)]
    table = np.zeros((500, 7))
    windows.fold(np.zeros(500, dtype=np.int64), many, table, np.zeros(500), {})
    assert len(windows.close(0, START)) == 500
    windows.fold(np.array([WINDOW_US]), ["s7"], table[:1], np.array([3.0]), {})
    windows.fold(np.array([2 * WINDOW_US]), ["new"], table[:1], np.array([4.0]), {})
    assert windows.close(1, START)["s7"].assessment.observed == 3.0
    assert len(windows._names) < 100  # the 500 slots were given up
    assert dict(windows.close(2, START).observed()) == {"new": 4.0}


def test_windows_closed_at_once_keep_their_names_when_their_slots_are_given_up() -> None:
    windows = OpenWindows(WINDOW_US)
    many = [f"s{i}" for i in range(500)]
    windows.fold(np.zeros(500, dtype=np.int64), many, np.zeros((500, 7)), np.zeros(500), {})
    windows.fold(np.array([WINDOW_US]), ["s7"], np.zeros((1, 7)), np.array([3.0]), {})
    first, second = _close_many(windows, [0, 1])
    assert list(first) == many and list(second) == ["s7"]
    assert second["s7"].assessment.observed == 3.0
    assert len(windows._names) < 100  # given up as they closed


def test_columns_behave_as_the_mapping_they_replace() -> None:
    points = _points(random.Random(1), 60)
    columns = _by_open_windows(points, 60)[0]
    as_dict = dict(columns)
    assert list(columns) == list(as_dict) and len(columns) == len(as_dict)
    assert all(signal in columns for signal in as_dict) and "zzz" not in columns
    with pytest.raises(KeyError):
        columns["zzz"]
    again = pickle.loads(pickle.dumps(columns))
    assert _plain(again) == _plain(as_dict)
    assert columns.observed() == {s: v.assessment.observed for s, v in as_dict.items()}
    window = close_window("api", START, START + timedelta(seconds=10), columns, threshold=0.5)
    from_dict = close_window("api", START, START + timedelta(seconds=10), as_dict, threshold=0.5)
    assert window.anomalies == from_dict.anomalies and window.anomalies


@pytest.mark.parametrize("at_once", [False, True], ids=["close", "close_many"])
def test_arrays_of_a_burst_of_windows_are_given_back_once_as_many_windows_again_passed(
    at_once: bool,
) -> None:
    windows = OpenWindows(WINDOW_US)
    at = np.arange(0, 200 * WINDOW_US, WINDOW_US // 2, dtype=np.int64)  # 200 windows at once
    table = np.zeros((len(at), 7))
    windows.fold(at, ["cpu"] * len(at), table, np.arange(len(at), dtype=float), {})
    assert len(windows._cells) >= 200
    ids = windows.ids()[:-1]
    closed = _close_many(windows, ids) if at_once else [windows.close(w, START) for w in ids]
    assert [c["cpu"].count for c in closed] == [2] * 199
    assert len(windows._cells) >= 200  # another burst may come: kept for now
    last = windows.ids()[0]
    windows.fold(np.array([last * WINDOW_US + 5]), ["cpu"], table[:1], np.array([-1.0]), {})
    assert windows.close(last, START)["cpu"].count == 3
    for window_id in range(200, 401):  # then one window at a time, 200 windows long
        windows.fold(np.array([window_id * WINDOW_US]), ["cpu"], table[:1], np.ones(1), {})
        assert windows.close(window_id, START)["cpu"].count == 1
    assert len(windows._cells) <= 4


def test_batches_that_each_open_a_few_windows_reuse_the_arrays() -> None:
    windows = OpenWindows(WINDOW_US)
    table = np.zeros((16, 7))
    arrays = set()
    for batch in range(50):  # 8 windows per batch, two points each, closed after the batch
        at = np.arange(16, dtype=np.int64) * (WINDOW_US // 2) + batch * 8 * WINDOW_US
        windows.fold(at, ["cpu"] * 16, table, np.ones(16), {}, in_order=True)
        ids = windows.ids()
        if batch % 2:
            assert [c["cpu"].count for c in _close_many(windows, ids)] == [2] * 8
        else:
            assert [windows.close(w, START)["cpu"].count for w in ids] == [2] * 8
        arrays.add(id(windows._cells))
    assert len(arrays) == 1


def test_arrays_grow_to_the_windows_open_at_once_and_no_further() -> None:
    windows = OpenWindows(WINDOW_US)
    table = np.zeros((1, 7))
    for window_id in range(100):  # three windows open at a time: each closes two later
        windows.fold(np.array([window_id * WINDOW_US]), ["cpu"], table, np.ones(1), {})
        if window_id >= 2:
            assert windows.close(window_id - 2, START)["cpu"].count == 1
    assert windows.ids() == [98, 99]
    assert len(windows._cells) == 3


@pytest.mark.parametrize("seed", range(6))
def test_closing_windows_at_once_keeps_the_arrays_closing_one_by_one_keeps(seed: int) -> None:
    """Bursts and lulls of windows, each round's oldest windows closed: `close_many` gives
    the columns `close` gives, and holds no more arrays (it gives a burst's back once, after
    the last window, where `close` may do so halfway at a larger size)."""
    rng = random.Random(seed)
    at_once, one_by_one = OpenWindows(WINDOW_US), OpenWindows(WINDOW_US)
    newest = 0
    for _ in range(300):
        spread = rng.choice([1, 1, 2, 3, 40, 250])  # windows a batch reaches
        at = np.sort(np.array([newest + rng.randrange(spread * WINDOW_US) for _ in range(30)]))
        newest = int(at[-1])
        for windows in (at_once, one_by_one):
            windows.fold(at, ["cpu"] * 30, np.zeros((30, 7)), np.ones(30), {}, in_order=True)
        due = at_once.ids()[: rng.choice([0, 1, 2, 5, 100, 1000])]
        starts = [START + timedelta(microseconds=w * WINDOW_US) for w in due]
        many = _close_many(at_once, due)
        single = [one_by_one.close(w, s) for w, s in zip(due, starts, strict=True)]
        assert [_plain(c) for c in many] == [_plain(c) for c in single]
        assert at_once.ids() == one_by_one.ids()
        assert len(at_once._cells) <= len(one_by_one._cells)
        assert at_once._peak == one_by_one._peak
