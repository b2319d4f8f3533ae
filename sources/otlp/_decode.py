"""Which encoding a payload is in, and the public decoders over the walkers."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, Literal

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from airis.batches import MetricBatch
from airis.events import (
    AggregatePoint,
    LogRecord,
    MetricPoint,
    Span,
)
from airis.sources.fast_point import (
    PointColumns,
)
from airis.sources.otlp._json import _json_logs, _json_metrics, _json_traces, _kind
from airis.sources.otlp._mapping import _Out
from airis.sources.otlp._proto import _proto_logs, _proto_metrics, _proto_traces
from airis.sources.otlp._types import MAX_MESSAGE_BYTES, Decoded, OtlpDecodeError, OtlpEncoding

logger = logging.getLogger(__name__)


# --- sniffing -----------------------------------------------------------------------------

_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")
_OTLP_JSON_KEYS = re.compile(rb'"resource(?:Metrics|Logs|Spans|_metrics|_logs|_spans)"')
SNIFF_BYTES = 4096  # how far `sniff_encoding` looks


def sniff_encoding(payload: bytes) -> Literal["json", "otlp_json", "otlp_proto"]:
    """Guess a message's encoding from its first bytes (cheap: at most 4 KiB are searched).

    A JSON object with a ``resourceMetrics``/``resourceLogs``/``resourceSpans`` key near the
    start is OTLP/JSON, any other JSON object is our own event format, and everything else is
    taken for protobuf (an exporter's request starts with byte 0x0a, never with ``{``).

    Byte 0x0a is also a newline, and a request whose first resource is 123 bytes long starts
    with ``\\n{`` like indented JSON does: such a message is protobuf when its bytes are
    exactly a run of resources (tag 0x0a, length, body), which no JSON text is in practice.

    >>> sniff_encoding(b'  {"resourceMetrics": []}')
    'otlp_json'
    >>> sniff_encoding(b'{"ts": "2026-01-01T00:00:00Z", "service": "api"}')
    'json'
    >>> sniff_encoding(b"\\x0a\\x00")
    'otlp_proto'
    >>> sniff_encoding(b"\\n{" + b"x" * 123), sniff_encoding(b'\\n{"service": "api"}')
    ('otlp_proto', 'json')
    """
    if not isinstance(payload, bytes):  # memoryview, bytearray
        payload = bytes(payload)
    if payload[:1] == b"{":  # the common case, without the regex
        start = 0
    else:
        start = _LEADING_SPACE.match(payload, 0, SNIFF_BYTES).end()  # type: ignore[union-attr]
        if payload[start : start + 1] != b"{":
            return "otlp_proto"
        if payload[0] == 0x0A and _is_resource_run(payload):
            return "otlp_proto"
    end = start + SNIFF_BYTES
    if payload.find(b'"resource', start, end) < 0:  # bytes.find is far cheaper than a regex
        return "json"
    if _OTLP_JSON_KEYS.search(payload, start, end):
        return "otlp_json"
    return "json"


def _is_resource_run(payload: bytes) -> bool:
    """Whether ``payload`` is exactly a sequence of length-delimited field-1 records, as an
    OTLP export request (its only field is the repeated resource) is."""
    i, n = 0, len(payload)
    while i < n:
        if payload[i] != 0x0A:
            return False
        i += 1
        length = shift = 0
        while True:
            if i >= n or shift > 63:
                return False
            byte = payload[i]
            i += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        i += length
    return i == n


# --- public decoders ----------------------------------------------------------------------


def decode_metrics(
    payload: bytes, encoding: OtlpEncoding, columns: bool = False
) -> Decoded[MetricPoint | AggregatePoint | MetricBatch]:
    """Decode one ``ExportMetricsServiceRequest`` into metric points, aggregates (Sums,
    histograms: see the module docstring) and rejections. With ``columns``, the points come
    as one `MetricBatch` per service (after the aggregates) instead of a `MetricPoint` each.

    >>> doc = b'''{"resourceMetrics": [{"resource": {"attributes": [
    ...   {"key": "service.name", "value": {"stringValue": "api"}}]},
    ...   "scopeMetrics": [{"metrics": [{"name": "cpu", "gauge": {"dataPoints": [
    ...     {"timeUnixNano": "1767225600000000000", "asDouble": 0.5},
    ...     {"timeUnixNano": "0", "asInt": "3"}]}}]}]}]}'''
    >>> decoded = decode_metrics(doc, "otlp_json")
    >>> [(p.ts.isoformat(), p.service, p.signal, p.value) for p in decoded.events]
    [('2026-01-01T00:00:00+00:00', 'api', 'cpu', 0.5)]
    >>> decoded.rejected[0].reason
    'ts: no timestamp (time_unix_nano and start_time_unix_nano are 0)'
    >>> try:
    ...     decode_metrics(b"\\xff", "otlp_proto")
    ... except OtlpDecodeError as exc:
    ...     print(exc)
    invalid protobuf: ...
    """
    out = _Out(PointColumns() if columns else None)
    return _decode(
        payload, encoding, ExportMetricsServiceRequest, _proto_metrics, _json_metrics, out
    )


def decode_logs(payload: bytes, encoding: OtlpEncoding) -> Decoded[LogRecord]:
    """Decode one ``ExportLogsServiceRequest`` into log records and rejections.

    >>> doc = b'''{"resourceLogs": [{"scopeLogs": [{"logRecords": [{
    ...   "timeUnixNano": "1767225600000000000", "severityNumber": 17,
    ...   "body": {"stringValue": "boom"}, "traceId": "5B8EFFF798038103D269B633813FC60C"}]}]}]}'''
    >>> log = decode_logs(doc, "otlp_json").events[0]
    >>> log.service, log.severity, log.body, log.trace_id, log.span_id
    ('unknown_service', 'ERROR', 'boom', '5b8efff798038103d269b633813fc60c', None)
    """
    return _decode(payload, encoding, ExportLogsServiceRequest, _proto_logs, _json_logs)


def decode_traces(payload: bytes, encoding: OtlpEncoding) -> Decoded[Span]:
    """Decode one ``ExportTraceServiceRequest`` into spans and rejections.

    >>> doc = b'''{"resourceSpans": [{"resource": {"attributes": [
    ...   {"key": "service.name", "value": {"stringValue": "api"}}]},
    ...   "scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c",
    ...     "spanId": "eee19b7ec3c1b174", "name": "GET /", "status": {"code": 2},
    ...     "startTimeUnixNano": "1767225600000000000", "endTimeUnixNano": "1767225600250000000",
    ...     "attributes": [{"key": "peer.service", "value": {"stringValue": "db"}}]}]}]}]}'''
    >>> span = decode_traces(doc, "otlp_json").events[0]
    >>> span.service, span.name, span.duration_ms, span.status, span.peer_service
    ('api', 'GET /', 250.0, 'error', 'db')
    """
    return _decode(payload, encoding, ExportTraceServiceRequest, _proto_traces, _json_traces)


def _decode(
    payload: bytes,
    encoding: str,
    request_class: type[Any],
    proto_walker: Callable[[Any, _Out], None],
    json_walker: Callable[[dict[str, Any], _Out], None],
    out: _Out | None = None,
) -> Decoded[Any]:
    out = out or _Out()
    if _encoding(encoding) == "otlp_proto":
        _guard(proto_walker, _parse_proto(payload, request_class), out)
    else:
        _guard(json_walker, _parse_json(payload), out)
    if out.columns:
        out.columns.flush(out.events)
    return Decoded(out.events, out.rejected)


def _encoding(encoding: str) -> str:
    if encoding not in ("otlp_proto", "otlp_json"):
        # A caller's bug, not the message's: hence not an OtlpDecodeError.
        raise ValueError(f"unknown OTLP encoding {encoding!r}")
    return encoding


def _check_size(payload: bytes) -> None:
    if len(payload) > MAX_MESSAGE_BYTES:
        raise OtlpDecodeError(f"message of {len(payload)} bytes exceeds 64 MiB")


def _parse_proto(payload: bytes, cls: type[Any]) -> Any:
    _check_size(payload)
    request = cls()
    try:
        request.ParseFromString(payload)
    except (DecodeError, RuntimeError, TypeError) as exc:
        raise OtlpDecodeError(f"invalid protobuf: {exc}") from None
    return request


def _parse_json(payload: bytes) -> dict[str, Any]:
    _check_size(payload)
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise OtlpDecodeError(f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise OtlpDecodeError(f"expected a JSON object, got {_kind(doc)}")
    return doc


def _guard(walk: Callable[[Any, _Out], None], message: Any, out: _Out) -> None:
    """Run a walker; a stray error from a message we did not foresee still only dead-letters
    that message instead of stopping the flow."""
    try:
        walk(message, out)
    except OtlpDecodeError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        logger.warning("unexpected error decoding OTLP: %r", exc)
        raise OtlpDecodeError(f"malformed message: {exc}") from None
    except RecursionError:
        raise OtlpDecodeError("malformed message: nested too deeply") from None
