"""The JSON fast path builds exactly the point pydantic would, or steps aside."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from airis.events import MetricPoint
from airis.sources import fast_point
from airis.sources.fast_point import point_from_fields, point_from_json

names = st.one_of(
    st.sampled_from(["api", "cpu", "latency_p99", "a" * 128, "a" * 129, "", "bad name", "é"]),
    st.text(max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.none(),
)
timestamps = st.one_of(
    st.sampled_from(
        [
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.123456+00:00",
            "2026-01-01T00:00:00.1234567Z",
            "2026-01-01T00:00:00+01:00",
            "1970-01-01T00:00:00Z",
            "2200-01-01T00:00:00Z",
            "2026-01-01 00:00:00Z",
            "2026-13-01T00:00:00Z",
            "not a time",
        ]
    ),
    st.integers(min_value=-(2**40), max_value=2**40),
)
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=4),
)
labels = st.dictionaries(
    names.filter(lambda n: isinstance(n, str)), st.text(max_size=5), max_size=3
)


@settings(max_examples=400, deadline=None)
@given(ts=timestamps, service=names, signal=names, value=values, extra=st.booleans(), lab=labels)
def test_fast_path_agrees_with_pydantic(ts, service, signal, value, extra, lab) -> None:
    event = {"ts": ts, "service": service, "signal": signal, "value": value}
    if lab:
        event["labels"] = lab
    if extra:
        event["unexpected"] = 1
    raw = orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS) if _finite(value) else _dumps(event)
    fast = point_from_json(raw)
    try:
        slow = MetricPoint.model_validate_json(raw)
    except ValidationError:
        assert fast is None
        return
    if fast is not None:
        assert fast == slow
        assert fast.model_fields_set == slow.model_fields_set
        assert fast.model_dump() == slow.model_dump()


def test_common_events_take_the_fast_path() -> None:
    raw = b'{"ts":"2026-11-25T10:00:00+00:00","service":"api","signal":"cpu","value":12.5}'
    assert point_from_json(raw) is not None
    fields = {"ts": datetime(2026, 11, 25, tzinfo=UTC), "service": "api", "signal": "cpu"}
    assert point_from_fields({**fields, "value": 1.0}) == MetricPoint(**fields, value=1.0)
    assert point_from_fields({**fields, "value": float("nan")}) is None


def _finite(value: object) -> bool:
    return not isinstance(value, float) or (value == value and abs(value) != float("inf"))


def _dumps(event: dict) -> bytes:
    # orjson writes NaN/inf as null; keep them as the literal tokens a bad producer would send
    text = orjson.dumps({**event, "value": "__V__"}, option=orjson.OPT_NON_STR_KEYS).decode()
    return text.replace(
        '"__V__"', repr(event["value"]).replace("nan", "NaN").replace("inf", "Infinity")
    ).encode()


def test_timestamps_seen_before_give_the_same_points_and_the_cache_stays_bounded() -> None:
    raw = b'{"ts": "2026-03-01T12:00:00.5Z", "service": "api", "signal": "cpu", "value": 1.5}'
    first, again = fast_point.point_from_json(raw), fast_point.point_from_json(raw)
    assert first == again == MetricPoint.model_validate_json(raw)
    for i in range(fast_point._TS_CACHE_MAX + 10):
        stamp = f"2026-03-01T12:{i // 60 % 60:02d}:{i % 60:02d}.{i // 3600:06d}Z"
        assert fast_point._utc_timestamp(stamp) is not None
    assert len(fast_point._SEEN_TIMESTAMPS) <= fast_point._TS_CACHE_MAX
    assert fast_point._utc_timestamp("2026-13-01T00:00:00Z") is None  # pydantic decides


def test_columns_give_each_point_its_own_labels_only_when_some_point_has_labels() -> None:
    """`PointColumns.extend` of points without labels, beside points with labels, flushes
    `{}` for each of them, one dict apiece; without any labels, no labels column."""
    ts = [datetime(2026, 1, 1, tzinfo=UTC)] * 2
    columns = fast_point.PointColumns()
    columns.extend("api", ts, "cpu", [1.0, 2.0], {})
    columns.extend("api", ts, "mem", [3.0, 4.0], {"pod": "a"})
    columns.extend("db", ts, "cpu", [5.0, 6.0], {})
    out: list = []
    columns.flush(out)
    api, db = out
    assert api.labels == ({}, {}, {"pod": "a"}, {"pod": "a"}) and db.labels == ()
    assert len({id(labels) for labels in api.labels}) == 4
    assert [p.labels for p in api.points()] == [{}, {}, {"pod": "a"}, {"pod": "a"}]
