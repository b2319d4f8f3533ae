"""How OTLP log records and spans map onto our events."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otlp_helpers import (
    ENCODINGS,
    SPAN,
    T0,
    T0_NS,
    TRACE,
    as_json,
    decode_both,
    kv,
)

from airis.events import LogRecord, Span
from airis.sources.otlp import (
    decode_logs,
    decode_traces,
    encode_logs,
    encode_traces,
    sniff_encoding,
)

# --- logs ---------------------------------------------------------------------------------


def logs_request(*records: Any, service: str = "api") -> Any:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", service))
    rl.scope_logs.add().log_records.extend(records)
    return request


@pytest.mark.parametrize(
    ("number", "text", "expected"),
    [
        (1, "", "TRACE"),
        (4, "", "TRACE"),
        (5, "", "DEBUG"),
        (9, "ERROR", "INFO"),  # the number wins
        (12, "", "INFO"),
        (13, "", "WARN"),
        (17, "", "ERROR"),
        (20, "", "ERROR"),
        (21, "", "FATAL"),
        (24, "", "FATAL"),
        (0, "warning", "WARN"),
        (0, "Error", "ERROR"),
        (0, "CRITICAL", "FATAL"),
        (0, "notice", "INFO"),
        (0, "", "INFO"),
        (99, "debug", "DEBUG"),
    ],
)
def test_log_severity(number: int, text: str, expected: str) -> None:
    from opentelemetry.proto.logs.v1 import logs_pb2

    record = logs_pb2.LogRecord(time_unix_nano=T0_NS, severity_number=number, severity_text=text)
    [log] = decode_both(logs_request(record), decode_logs).events
    assert log.severity == expected


def test_log_mapping() -> None:
    from opentelemetry.proto.logs.v1 import logs_pb2

    structured = logs_pb2.LogRecord(
        observed_time_unix_nano=T0_NS,  # no time: the observed time is used
        trace_id=bytes.fromhex(TRACE),
        span_id=bytes.fromhex(SPAN),
        attributes=[kv("code", 500), kv("user id", "u1")],
    )
    structured.body.kvlist_value.values.add(key="msg").value.string_value = "hi"
    zero_ids = logs_pb2.LogRecord(time_unix_nano=T0_NS, trace_id=bytes(16), span_id=bytes(8))
    zero_ids.body.string_value = "plain"
    no_time = logs_pb2.LogRecord(severity_number=17)
    bad_id = logs_pb2.LogRecord(time_unix_nano=T0_NS, trace_id=b"\x01\x02")
    long_body = logs_pb2.LogRecord(time_unix_nano=T0_NS)
    long_body.body.string_value = "b" * 70_000
    request = logs_request(structured, zero_ids, no_time, bad_id, long_body, service="web")
    decoded = decode_both(request, decode_logs)
    first, second, third = decoded.events
    assert first == LogRecord(
        ts=T0,
        service="web",
        severity="INFO",
        body='{"msg":"hi"}',
        trace_id=TRACE,
        span_id=SPAN,
        attributes={"code": "500", "user_id": "u1"},
    )
    assert (second.body, second.trace_id, second.span_id) == ("plain", None, None)
    assert third.body == "b" * 65536
    reasons = [r.reason for r in decoded.rejected]
    assert reasons[0] == "ts: no timestamp (time_unix_nano and observed_time_unix_nano are 0)"
    assert reasons[1].startswith("trace_id: String should match pattern")


def test_otlp_json_ids_are_hex_in_any_case_or_base64() -> None:
    def doc(trace_id: str, span_id: str) -> bytes:
        record = {"timeUnixNano": str(T0_NS), "traceId": trace_id, "spanId": span_id}
        return orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]})

    b64_trace = base64.b64encode(bytes.fromhex(TRACE)).decode()
    b64_span = base64.urlsafe_b64encode(bytes.fromhex(SPAN)).decode().rstrip("=")
    for trace_id, span_id in [(TRACE.upper(), SPAN), (b64_trace, b64_span)]:
        [log] = decode_logs(doc(trace_id, span_id), "otlp_json").events
        assert (log.trace_id, log.span_id) == (TRACE, SPAN)
    decoded = decode_logs(doc("zz", SPAN), "otlp_json")
    assert decoded.events == []
    assert decoded.rejected[0].reason.startswith("trace_id: String should match pattern")


# --- traces -------------------------------------------------------------------------------


def traces_request(*spans_: Any, service: str = "api") -> Any:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", service))
    rs.scope_spans.add().spans.extend(spans_)
    return request


def proto_span(**fields: Any) -> Any:
    from opentelemetry.proto.trace.v1 import trace_pb2

    defaults = {
        "trace_id": bytes.fromhex(TRACE),
        "span_id": bytes.fromhex(SPAN),
        "name": "GET /",
        "start_time_unix_nano": T0_NS,
        "end_time_unix_nano": T0_NS + 2_500_000,
    }
    return trace_pb2.Span(**{**defaults, **fields})


@pytest.mark.parametrize(("code", "status"), [(0, "unset"), (1, "ok"), (2, "error"), (7, "unset")])
def test_span_status(code: int, status: str) -> None:
    span = proto_span()
    span.status.code = code
    [decoded] = decode_traces(traces_request(span).SerializeToString(), "otlp_proto").events
    assert decoded.status == status


@pytest.mark.parametrize(
    ("attributes", "peer"),
    [
        ({"peer.service": "db", "server.address": "10.0.0.1"}, "db"),
        ({"server.address": "db.internal:5432"}, "db.internal:5432"),
        ({"net.peer.name": "cache one"}, "cache_one"),
        ({"http.method": "GET"}, None),
    ],
)
def test_span_peer_service(attributes: dict[str, str], peer: str | None) -> None:
    span = proto_span(attributes=[kv(k, v) for k, v in attributes.items()])
    [decoded] = decode_both(traces_request(span), decode_traces).events
    assert decoded.peer_service == peer
    assert decoded.attributes == {k.replace(" ", "_"): v for k, v in attributes.items()}


@pytest.mark.parametrize(
    ("kind", "attributes", "expected"),
    [
        (2, {}, "server"),
        (3, {"peer.service": "db"}, "client"),
        (5, {}, "consumer"),
        (0, {}, None),  # unspecified: no attribute
        (3, {"span.kind": "custom"}, "custom"),  # an explicit attribute wins
    ],
)
def test_span_kind_becomes_the_span_kind_attribute(
    kind: int, attributes: dict[str, str], expected: str | None
) -> None:
    span = proto_span(kind=kind, attributes=[kv(k, v) for k, v in attributes.items()])
    [decoded] = decode_both(traces_request(span), decode_traces).events
    assert decoded.attributes.get("span.kind") == expected


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_encoded_spans_carry_their_kind_as_the_otlp_field(encoding: str) -> None:
    client = Span(
        trace_id=TRACE, span_id=SPAN, service="api", name="GET /", start=T0, duration_ms=1.0,
        peer_service="db", attributes={"span.kind": "client", "peer.service": "db"},
    )  # fmt: skip
    payload = encode_traces([client], encoding)
    request = ExportTraceServiceRequest()
    if encoding == "otlp_json":
        json_format.Parse(payload, request)
    else:
        request.ParseFromString(payload)
    [encoded] = request.resource_spans[0].scope_spans[0].spans
    assert encoded.kind == 3  # SPAN_KIND_CLIENT
    assert "span.kind" not in {a.key for a in encoded.attributes}
    assert decode_traces(payload, encoding).events == [client]


@pytest.mark.parametrize("signal", ["logs", "traces"])
def test_a_request_starting_like_indented_json_is_sniffed_as_protobuf(signal: str) -> None:
    """A first resource of 123 bytes makes a request start with b"\\n{" (seen on Kafka)."""
    for size in range(1, 300):
        if signal == "logs":
            event: Any = LogRecord(ts=T0, service="api", body="x" * size)
            payload = encode_logs([event], "otlp_proto")
        else:
            event = Span(trace_id=TRACE, span_id=SPAN, service="api", name="x" * size,
                         start=T0, duration_ms=1.0)  # fmt: skip
            payload = encode_traces([event], "otlp_proto")
        if payload.startswith(b"\n{"):
            break
    assert payload.startswith(b"\n{")
    assert sniff_encoding(payload) == "otlp_proto"
    assert sniff_encoding(b"\n" + orjson.dumps(event.model_dump(mode="json"))) == "json"


def test_span_mapping() -> None:
    child = proto_span(parent_span_id=bytes.fromhex("00f067aa0ba902b7"), name="x" * 300)
    root = proto_span(parent_span_id=bytes(8))
    backwards = proto_span(end_time_unix_nano=T0_NS - 1)
    no_start = proto_span(start_time_unix_nano=0)
    no_id = proto_span(span_id=b"")
    request = traces_request(child, root, backwards, no_start, no_id, service="gw")
    decoded = decode_both(request, decode_traces)
    first, second = decoded.events
    assert first == Span(
        trace_id=TRACE,
        span_id=SPAN,
        parent_span_id="00f067aa0ba902b7",
        service="gw",
        name="x" * 256,
        start=T0,
        duration_ms=2.5,
    )
    assert second.parent_span_id is None
    reasons = [r.reason for r in decoded.rejected]
    assert reasons[0] == "duration_ms: Input should be greater than or equal to 0"
    assert reasons[1].startswith("start: Value error, timestamp 1970-01-01T00:00:00+00:00")
    assert reasons[2].startswith("span_id: String should match pattern")


def test_base64_ids_from_the_plain_protobuf_json_mapping_are_accepted() -> None:
    # json_format writes bytes as base64, as a collector configured with a plain protobuf
    # JSON marshaler would; decode_both checks that it decodes the same as protobuf.
    request = traces_request(proto_span(parent_span_id=bytes.fromhex("00f067aa0ba902b7")))
    assert base64.b64encode(bytes.fromhex(TRACE)).decode() in as_json(request).decode()
    [span] = decode_both(request, decode_traces).events
    assert (span.trace_id, span.parent_span_id) == (TRACE, "00f067aa0ba902b7")
