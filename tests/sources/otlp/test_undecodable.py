"""Messages that cannot be read: the only error is OtlpDecodeError, whatever the bytes."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from otlp_helpers import DECODERS, ENCODINGS, SPAN, TRACE, check_rejections, valid_payloads

from airis.sources.otlp import (
    MAX_MESSAGE_BYTES,
    Decoded,
    OtlpDecodeError,
    decode_metrics,
)

# --- undecodable messages -----------------------------------------------------------------


@pytest.mark.parametrize("signal", DECODERS)
def test_truncated_protobuf_gives_an_error_or_a_result_never_anything_else(signal: str) -> None:
    payload = valid_payloads()[signal]
    decode = DECODERS[signal]
    outcomes = {"error": 0, "decoded": 0}
    for cut in range(0, len(payload), 7):
        try:
            check_rejections(decode(payload[:cut], "otlp_proto"))
            outcomes["decoded"] += 1
        except OtlpDecodeError as exc:
            assert str(exc).startswith("invalid protobuf: ")
            outcomes["error"] += 1
    assert outcomes["error"] > 0 and outcomes["decoded"] > 0


@pytest.mark.parametrize("signal", DECODERS)
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"resourceMetrics": [\xff]}', "invalid JSON"),
        (b"\xff\xfe{}", "invalid JSON"),
        (b'{"resourceMetrics": ', "invalid JSON"),
        (b"", "invalid JSON"),
        (b"[]", "expected a JSON object, got list"),
        (b'"resourceMetrics"', "expected a JSON object, got str"),
        (b"42", "expected a JSON object, got int"),
        (b"null", "expected a JSON object, got null"),
    ],
)
def test_invalid_json_is_an_otlp_decode_error(signal: str, payload: bytes, reason: str) -> None:
    with pytest.raises(OtlpDecodeError, match=reason):
        DECODERS[signal](payload, "otlp_json")


@pytest.mark.parametrize(
    ("signal", "doc", "reason"),
    [
        ("metrics", {"resourceMetrics": {}}, "resourceMetrics: expected a list, got dict"),
        ("metrics", {"resourceMetrics": ["x"]}, r"resourceMetrics\[0\]: expected an object"),
        ("metrics", {"resourceMetrics": [{"scopeMetrics": 3}]}, "scopeMetrics: expected a list"),
        (
            "metrics",
            {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"gauge": []}]}]}]},
            r"metrics\[0\]\.gauge: expected an object, got list",
        ),
        (
            "metrics",
            {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": 5}]}]}]},
            "name: expected a string",
        ),
        (
            "metrics",
            {"resourceMetrics": [{"resource": {"attributes": [{"key": 1}]}}]},
            r"resourceMetrics\[0\]\.resource: expected a string",
        ),
        ("logs", {"resourceLogs": "many"}, "resourceLogs: expected a list, got str"),
        ("logs", {"resourceLogs": [{"scopeLogs": [{"logRecords": [1]}]}]}, "expected an object"),
        ("traces", {"resourceSpans": [{"resource": []}]}, "resource: expected an object"),
        ("traces", {"resourceSpans": [{"scopeSpans": [{"spans": {}}]}]}, "spans: expected a list"),
    ],
)
def test_wrong_shape_json_is_an_otlp_decode_error(signal: str, doc: Any, reason: str) -> None:
    with pytest.raises(OtlpDecodeError, match=reason):
        DECODERS[signal](orjson.dumps(doc), "otlp_json")


def test_json_without_the_request_key_is_an_empty_request() -> None:
    # As in the protobuf JSON mapping, a missing repeated field is empty (and unknown keys
    # are ignored, as the collector's unmarshaler does).
    for decode in DECODERS.values():
        assert decode(b'{"other": 1}', "otlp_json") == Decoded([], [])
        assert decode(b"", "otlp_proto") == Decoded([], [])


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("signal", DECODERS)
def test_oversized_payload_is_refused_before_parsing(signal: str, encoding: str) -> None:
    payload = b"\x00" * 100_000_000
    started = time.perf_counter()
    with pytest.raises(OtlpDecodeError, match=r"^message of 100000000 bytes exceeds 64 MiB$"):
        DECODERS[signal](payload, encoding)
    assert time.perf_counter() - started < 0.5
    # The limit itself is allowed through to the parser.
    assert MAX_MESSAGE_BYTES == 64 * 1024 * 1024


def test_unknown_encoding_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="unknown OTLP encoding 'json'") as info:
        decode_metrics(b"{}", "json")  # type: ignore[arg-type]
    assert not isinstance(info.value, OtlpDecodeError)


# --- fuzzing ------------------------------------------------------------------------------


def decode_or_error(signal: str, payload: bytes, encoding: str) -> None:
    try:
        check_rejections(DECODERS[signal](payload, encoding))
    except OtlpDecodeError as exc:
        assert str(exc)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("signal", DECODERS)
@given(payload=st.binary(max_size=300))
@example(payload=b"\x0a\x00")
@example(payload=b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"sum": {}}]}]}]}')
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_never_raise_anything_but_otlp_decode_error(
    signal: str, encoding: str, payload: bytes
) -> None:
    decode_or_error(signal, payload, encoding)


@pytest.mark.parametrize("signal", DECODERS)
@given(data=st.data())
@settings(max_examples=200, deadline=None)
def test_mutated_protobuf_never_raises_anything_but_otlp_decode_error(
    signal: str, data: st.DataObject
) -> None:
    # Random bytes rarely parse; a valid payload with a few bytes changed often does, and
    # then yields odd field values that the mapping must handle.
    payload = bytearray(valid_payloads()[signal])
    for _ in range(data.draw(st.integers(1, 4))):
        payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    decode_or_error(signal, bytes(payload), "otlp_proto")


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["NaN", "Infinity", "1767225600000000000", TRACE, SPAN, "AAECAw=="])
)
otlp_keys = st.sampled_from(
    [
        "resourceMetrics", "resourceLogs", "resourceSpans", "resource", "attributes", "key",
        "value", "stringValue", "intValue", "doubleValue", "boolValue", "bytesValue",
        "arrayValue", "kvlistValue", "values", "scopeMetrics", "scopeLogs", "scopeSpans",
        "metrics", "name", "gauge", "sum", "histogram", "exponentialHistogram", "summary",
        "dataPoints", "timeUnixNano", "startTimeUnixNano", "asDouble", "asInt", "count",
        "quantileValues", "quantile", "flags", "logRecords", "observedTimeUnixNano",
        "severityNumber", "severityText", "body", "traceId", "spanId", "parentSpanId", "spans",
        "endTimeUnixNano", "status", "code",
    ]
)  # fmt: skip
otlp_like_json = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(otlp_keys, inner, max_size=4),
    max_leaves=40,
)


@pytest.mark.parametrize("signal", DECODERS)
@given(doc=st.dictionaries(otlp_keys, otlp_like_json, max_size=3))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_otlp_like_json_never_raises_anything_but_otlp_decode_error(
    signal: str, doc: dict[str, Any]
) -> None:
    try:
        payload = orjson.dumps(doc)
    except orjson.JSONEncodeError:  # integers beyond 64 bits: write them by hand
        payload = repr(doc).encode()
    decode_or_error(signal, payload, "otlp_json")


@given(depth=st.integers(1, 400))
@settings(max_examples=20, deadline=None)
def test_deeply_nested_values_do_not_escape(depth: int) -> None:
    value = '{"stringValue": "x"}'
    for _ in range(depth):
        value = '{"arrayValue": {"values": [' + value + "]}}"
    attr = '{"key": "deep", "value": ' + value + "}"
    point = '{"timeUnixNano": "1767225600000000000", "asDouble": 1, "attributes": [' + attr + "]}"
    doc = '{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", "gauge": '
    doc += '{"dataPoints": [' + point + "]}}]}]}]}"
    decode_or_error("metrics", doc.encode(), "otlp_json")
