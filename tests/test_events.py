"""Schema validation at the boundary: bad input gets a clear reason and becomes a dead letter."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from airis.events import (
    MAX_TEXT,
    DeadLetter,
    LogRecord,
    MetricPoint,
    Span,
    constructed_rows,
    event_id,
)
from airis.sources.decode import decode_metric

GOOD = {"ts": "2026-03-01T12:00:00Z", "service": "checkout", "signal": "cpu", "value": 12.5}


def _reason(raw) -> str:
    out = decode_metric(raw, "test")
    assert isinstance(out, DeadLetter), out
    assert out.source == "test"
    return out.reason


def test_valid_point_from_dict_json_text_and_bytes():
    for raw in (GOOD, orjson.dumps(GOOD), orjson.dumps(GOOD).decode()):
        point = decode_metric(raw, "test")
        assert isinstance(point, MetricPoint)
        assert point.ts == datetime(2026, 3, 1, 12, tzinfo=UTC)
        assert point.series == "checkout/cpu"


def test_epoch_seconds_are_accepted_as_utc():
    point = decode_metric({**GOOD, "ts": 1_772_366_400}, "test")
    assert point.ts.tzinfo is not None and point.ts.year == 2026


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ts": None}, "ts"),
        ({"value": "twelve"}, "value"),
        ({"value": math.nan}, "finite"),
        ({"value": math.inf}, "finite"),
        ({"ts": "1970-01-01T00:00:00Z"}, "outside"),
        ({"ts": "2200-01-01T00:00:00Z"}, "outside"),
        ({"ts": "2026-03-01T12:00:00"}, "timezone"),
        ({"service": "x" * 10_000}, "service"),
        ({"service": "bad name!"}, "service"),
        ({"extra_field": 1}, "extra_field"),
        ({"labels": {"k": 1}}, "labels"),
    ],
)
def test_bad_fields_name_the_field(change, expected):
    assert expected in _reason({**GOOD, **change}).lower()


def test_missing_fields_are_all_listed():
    reason = _reason({"service": "api"})
    assert "ts: Field required" in reason and "value: Field required" in reason


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"\xff\xfe\x00", b"[1, 2]", b"null", "not json", 42, None, [GOOD]]
)
def test_undecodable_input_becomes_a_dead_letter_with_its_payload(raw):
    out = decode_metric(raw, "test")
    assert isinstance(out, DeadLetter)
    assert out.reason


def test_nan_inside_json_text_is_rejected():
    raw = b'{"ts": "2026-03-01T12:00:00Z", "service": "a", "signal": "b", "value": NaN}'
    assert _reason(raw)


def test_huge_payload_is_truncated_and_flagged():
    raw = orjson.dumps({**GOOD, "service": "y" * (MAX_TEXT * 8)})
    out = decode_metric(raw, "test")
    assert isinstance(out, DeadLetter)
    assert out.truncated and len(out.payload) <= MAX_TEXT


def test_negative_span_duration_is_rejected():
    with pytest.raises(ValueError, match="duration_ms"):
        Span(
            trace_id="a" * 32,
            span_id="b" * 16,
            service="api",
            name="GET /",
            start=datetime(2026, 1, 1, tzinfo=UTC),
            duration_ms=-1,
        )


def test_log_record_rejects_huge_body():
    with pytest.raises(ValueError, match="body"):
        LogRecord(ts=datetime(2026, 1, 1, tzinfo=UTC), service="api", body="x" * (MAX_TEXT + 1))


def test_event_id_is_deterministic_and_distinguishes_parts():
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    assert event_id("a", "b", ts) == event_id("a", "b", ts)
    assert event_id("a", "b", ts) != event_id("ab", "", ts)
    assert len(event_id("x")) == 32


@given(
    st.dictionaries(
        st.text(max_size=20),
        st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=50)),
        max_size=6,
    )
)
def test_arbitrary_objects_never_raise(raw):
    out = decode_metric(raw, "fuzz")
    assert isinstance(out, (MetricPoint, DeadLetter))


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(raw):
    out = decode_metric(raw, "fuzz")
    assert isinstance(out, (MetricPoint, DeadLetter))


def test_events_built_from_rows_share_a_field_set_that_no_copy_changes() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [("0" * 32, f"{i:016x}", None, "api", "GET /", t, 1.0, "ok", None, {}) for i in range(3)]
    spans = constructed_rows(Span, rows)
    assert spans == [Span(**dict(zip(Span.model_fields, row, strict=True))) for row in rows]
    assert spans[0].model_fields_set == set(Span.model_fields)
    changed = spans[0].model_copy(update={"name": "POST /"})
    deep = copy.deepcopy(spans[1])
    assert changed.name == "POST /" and deep == spans[1]
    with pytest.raises(ValidationError, match="frozen"):
        spans[0].name = "x"
    # Every field is in the shared set, so nothing pydantic adds to a set can change it.
    assert spans[2].model_fields_set == set(Span.model_fields)
    assert [s.name for s in spans] == ["GET /"] * 3


def test_rows_of_a_model_that_is_not_frozen_or_of_the_wrong_length_are_refused() -> None:
    class Loose(BaseModel):
        a: int

    with pytest.raises(TypeError, match="not frozen"):
        constructed_rows(Loose, [(1,)])
    with pytest.raises(ValueError):
        constructed_rows(Span, [("0" * 32, "1" * 16)])
