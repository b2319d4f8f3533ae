"""The fast path for metric points, and telling encodings apart."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from otlp_helpers import DECODERS, T0, finite, microsecond_times, names, valid_payloads
from pydantic import ValidationError

from airis.events import MetricPoint
from airis.sources import fast_point
from airis.sources.otlp import (
    _proto,
    encode_logs,
    encode_metrics,
    encode_traces,
    sniff_encoding,
)

# --- the fast path for metric points ------------------------------------------------------


def around(limit: int, char: str = "x") -> st.SearchStrategy[str]:
    """Strings of ``char`` a little shorter and a little longer than ``limit``."""
    return st.sampled_from([limit - 1, limit, limit + 1]).map(lambda n: char * n)


def mostly(valid: st.SearchStrategy[Any], edge: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid three times in four: many examples are then valid but for one field."""
    return st.integers(0, 3).flatmap(lambda i: edge if i == 0 else valid)


edge_names = (
    st.text(max_size=6)
    | around(128)
    | st.tuples(around(128, "a"), st.sampled_from(["", "-", " ", "\n"])).map("".join)
    | st.sampled_from(["", "a\n", "\na", "é", "a b", "\ud800", "ﬀ", "Ａ"])
)
name_like = mostly(names, edge_names)
edge_label_values = st.one_of(
    around(1024, "v"),
    around(1024, "é"),
    around(1024, "😀"),
    st.sampled_from(["\ud800", "ok\udfff", "\udbff\udc00", "é\ud83d"]),  # lone surrogates
)
valid_labels = st.dictionaries(names, st.text(max_size=10), max_size=4)
label_like = mostly(
    valid_labels,
    # Valid labels but for one entry, or for their number.
    st.tuples(valid_labels, names, edge_label_values).map(lambda t: {**t[0], t[1]: t[2]})
    | st.tuples(valid_labels, edge_names, st.text(max_size=10)).map(lambda t: {**t[0], t[1]: t[2]})
    | st.integers(62, 66).map(lambda n: {f"k{i}": "v" for i in range(n)}),
)
any_time = mostly(
    microsecond_times,
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
    | st.sampled_from(
        [
            datetime(2000, 1, 1, tzinfo=UTC),
            datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(2100, 1, 1, tzinfo=UTC),
            datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        ]
    ),
)
any_value = mostly(finite, st.sampled_from([math.nan, math.inf, -math.inf]) | st.floats())


@given(ts=any_time, service=name_like, signal=name_like, value=any_value, labels=label_like)
@example(ts=T0, service="a", signal="b", value=1.0, labels={"k": "v" * 1025})
@example(ts=T0, service="a", signal="b", value=1.0, labels={"k": "\ud800"})
@example(ts=T0, service="a", signal="b\n", value=1.0, labels={})
@settings(max_examples=600, deadline=None)
def test_fast_check_accepts_exactly_what_the_model_accepts(
    ts: datetime, service: str, signal: str, value: float, labels: dict[str, str]
) -> None:
    fields = {"ts": ts, "service": service, "signal": signal, "value": value, "labels": labels}
    try:
        validated = MetricPoint.model_validate(fields)
    except ValidationError:
        validated = None
    fast = fast_point.valid_point_fields(ts, service, signal, value, labels)
    assert fast == (validated is not None)
    if fast:
        built = fast_point.construct_point(dict(fields))
        assert built == validated
        assert built.model_dump() == validated.model_dump()
        assert built.model_fields_set == validated.model_fields_set
        assert repr(built) == repr(validated)


@given(
    ts=st.datetimes(timezones=st.just(timezone(timedelta(hours=2))))
    | st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 1, 1)),
    value=st.integers(-5, 5),
)
def test_fast_check_declines_what_it_does_not_know(ts: datetime, value: int) -> None:
    # Other time zones, naive datetimes and ints are left to the model (which converts them).
    assert not fast_point.valid_point_fields(ts, "api", "cpu", 1.0, {})
    assert not fast_point.valid_point_fields(T0, "api", "cpu", value, {})


def test_decoded_points_take_the_fast_path() -> None:
    point = MetricPoint(ts=T0, service="api", signal="cpu", value=1.0, labels={"a": "b"})
    request = ExportMetricsServiceRequest.FromString(encode_metrics([point], "otlp_proto"))
    dp = request.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0]
    labels = _proto._proto_attrs(dp.attributes)
    assert fast_point.FAST_CONSTRUCT
    assert fast_point.valid_point_fields(T0, "api", "cpu", 1.0, labels)


# --- sniffing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"resourceMetrics":[]}', "otlp_json"),
        (b' \n\t{"resourceLogs": []}', "otlp_json"),
        (b'{"resourceSpans": []}', "otlp_json"),
        (b'{"resource_metrics": []}', "otlp_json"),
        (b'{"ts": "2026-01-01T00:00:00Z", "service": "api", "signal": "cpu", "value": 1}', "json"),
        (b'{"service": "x", "note": "' + b"y" * 5000 + b'", "resourceMetrics": []}', "json"),
        (b"{}", "json"),
        (b"{", "json"),
        (b"", "otlp_proto"),
        (b"   ", "otlp_proto"),
        (b"\x0a\x2c\x0a\x2a", "otlp_proto"),
        (b"[1, 2]", "otlp_proto"),
        (memoryview(b'  {"resourceMetrics": []}'), "otlp_json"),
    ],
)
def test_sniff_encoding(payload: bytes, expected: str) -> None:
    assert sniff_encoding(payload) == expected


@pytest.mark.parametrize("signal", DECODERS)
def test_sniffing_tells_encoded_messages_apart(signal: str) -> None:
    encode = {"metrics": encode_metrics, "logs": encode_logs, "traces": encode_traces}[signal]
    assert sniff_encoding(encode([], "otlp_json")) == "otlp_json"
    assert sniff_encoding(valid_payloads()[signal]) == "otlp_proto"
