"""What the OTLP decoding tests share: requests, strategies, payloads and checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf import json_format
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

import airis.sources.otlp as otlp
from airis.events import LogRecord, MetricPoint, Span
from airis.sources.otlp import (
    Decoded,
    Rejected,
    _mapping,
    decode_logs,
    decode_metrics,
    decode_traces,
    encode_logs,
    encode_metrics,
    encode_traces,
)

ENCODINGS = ("otlp_proto", "otlp_json")
DECODERS: dict[str, Callable[[bytes, Any], Decoded[Any]]] = {
    "metrics": decode_metrics,
    "logs": decode_logs,
    "traces": decode_traces,
}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T0_NS = 1_767_225_600_000_000_000
TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"


def check_rejections(decoded: Decoded[Any]) -> Decoded[Any]:
    """Every rejection has a reason and a JSON-able item."""
    for rejected in decoded.rejected:
        assert isinstance(rejected, Rejected)
        assert rejected.reason
        orjson.dumps(rejected.item)
    return decoded


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(double_value=value))


def as_json(message: Any) -> bytes:
    """The protobuf JSON mapping of a message, as the collector's otlp_json writes it
    (camelCase, 64-bit integers as strings)."""
    return json_format.MessageToJson(message).encode()


def metrics_request(*metrics: Any, resource: dict[str, Any] | None = None) -> Any:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    attrs = {"service.name": "api"} if resource is None else resource
    rm.resource.attributes.extend(kv(k, v) for k, v in attrs.items())
    rm.scope_metrics.add().metrics.extend(metrics)
    return request


def decode_both(request: Any, decode: Callable[..., Decoded[Any]]) -> Decoded[Any]:
    """Decode a request in both encodings; both must give the same result."""
    from_proto = check_rejections(decode(request.SerializeToString(), "otlp_proto"))
    from_json = check_rejections(decode(as_json(request), "otlp_json"))
    assert from_proto == from_json
    return from_proto


def points_of(decoded: Decoded[MetricPoint]) -> dict[str, float]:
    return {p.signal: p.value for p in decoded.events}


names = st.from_regex(r"[A-Za-z0-9_.:/-]{1,40}", fullmatch=True)
microsecond_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)
label_dicts = st.dictionaries(
    names.filter(lambda k: k not in otlp.RESOURCE_LABELS), st.text(max_size=30), max_size=5
)
finite = st.floats(allow_nan=False, allow_infinity=False)
hex_ids = st.binary(min_size=16, max_size=16).filter(any).map(bytes.hex)
hex_span_ids = st.binary(min_size=8, max_size=8).filter(any).map(bytes.hex)

metric_points = st.builds(
    MetricPoint, ts=microsecond_times, service=names, signal=names, value=finite, labels=label_dicts
)
log_records = st.builds(
    LogRecord,
    ts=microsecond_times,
    service=names,
    severity=st.sampled_from(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]),
    body=st.text(max_size=200),
    trace_id=st.none() | hex_ids,
    span_id=st.none() | hex_span_ids,
    attributes=label_dicts,
)
spans = st.builds(
    Span,
    trace_id=hex_ids,
    span_id=hex_span_ids,
    parent_span_id=st.none() | hex_span_ids,
    service=names,
    name=st.text(min_size=1, max_size=50),
    start=microsecond_times,
    # Whole microseconds survive the trip through integer nanoseconds exactly.
    duration_ms=st.integers(0, 10**9).map(lambda us: us / 1000),
    status=st.sampled_from(["ok", "error", "unset"]),
    peer_service=st.none() | names,
    attributes=st.dictionaries(
        names.filter(lambda k: k not in _mapping._PEER_KEYS), st.text(max_size=30), max_size=5
    ),
)


COLLECTOR_METRICS = b"""{
  "resourceMetrics": [{
    "resource": {
      "attributes": [
        {"key": "service.name", "value": {"stringValue": "checkout"}},
        {"key": "service.namespace", "value": {"stringValue": "shop"}},
        {"key": "host.name", "value": {"stringValue": "node-7"}},
        {"key": "telemetry.sdk.language", "value": {"stringValue": "go"}}
      ],
      "droppedAttributesCount": 0
    },
    "scopeMetrics": [{
      "scope": {"name": "otelcol/hostmetricsreceiver", "version": "0.101.0"},
      "metrics": [
        {
          "name": "system.cpu.utilization",
          "unit": "1",
          "description": "CPU utilization",
          "gauge": {"dataPoints": [
            {"attributes": [{"key": "cpu", "value": {"stringValue": "cpu0"}},
                            {"key": "state", "value": {"stringValue": "user"}}],
             "startTimeUnixNano": "1767225500000000000",
             "timeUnixNano": "1767225600000000000", "asDouble": 0.25},
            {"attributes": [{"key": "cpu", "value": {"stringValue": "cpu0"}},
                            {"key": "busy", "value": {"boolValue": true}},
                            {"key": "tries", "value": {"intValue": "3"}}],
             "timeUnixNano": "1767225610000000000", "asInt": "42", "flags": 0}
          ]}
        },
        {"name": "empty.metric", "unit": "1"}
      ],
      "schemaUrl": "https://opentelemetry.io/schemas/1.9.0"
    }],
    "schemaUrl": "https://opentelemetry.io/schemas/1.9.0"
  }]
}"""


def valid_payloads() -> dict[str, bytes]:
    """A valid protobuf payload of each signal, with a bit of everything in it."""
    point = MetricPoint(ts=T0, service="api", signal="cpu", value=1.0, labels={"a": "b"})
    log = LogRecord(ts=T0, service="api", body="hello", trace_id=TRACE, span_id=SPAN)
    span = Span(
        trace_id=TRACE,
        span_id=SPAN,
        service="api",
        name="GET /",
        start=T0,
        duration_ms=3.0,
        peer_service="db",
    )
    return {
        "metrics": encode_metrics(
            [point, point.model_copy(update={"signal": "mem"})] * 3, "otlp_proto"
        ),
        "logs": encode_logs([log] * 3, "otlp_proto"),
        "traces": encode_traces([span] * 3, "otlp_proto"),
    }
