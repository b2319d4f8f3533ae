"""Encoding events as OTLP requests (the simulator's `--format otlp` and the tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from airis.events import (
    LogRecord,
    MetricPoint,
    Span,
)
from airis.otel_codes import SEVERITY_NUMBER, SPAN_KIND_NUMBERS, STATUS_CODE
from airis.sources.otlp._decode import _encoding
from airis.sources.otlp._mapping import _datetime_to_ns
from airis.sources.otlp._types import SCOPE_NAME, OtlpEncoding

# --- encoders (for the simulator) ---------------------------------------------------------


def encode_metrics(points: Sequence[MetricPoint], encoding: OtlpEncoding) -> bytes:
    """Encode metric points as one request: a ResourceMetrics per service (resource attribute
    ``service.name``), a Gauge per signal, a double NumberDataPoint per point, labels as
    attributes.

    >>> from datetime import UTC, datetime
    >>> from airis.sources.otlp import decode_logs, decode_metrics, decode_traces
    >>> p = MetricPoint(ts=datetime(2026, 1, 1, tzinfo=UTC), service="api", signal="cpu",
    ...                 value=0.5, labels={"zone": "a"})
    >>> decode_metrics(encode_metrics([p], "otlp_json"), "otlp_json").events == [p]
    True
    """
    by_service = _group(points, lambda p: p.service)
    if _encoding(encoding) == "otlp_json":
        return _json_request("Metrics", "metrics", by_service, _json_gauges)
    request = ExportMetricsServiceRequest()
    for scope, group in _proto_scopes(request.resource_metrics, "scope_metrics", by_service):
        for signal, series in _group(group, lambda p: p.signal).items():
            data_points = scope.metrics.add(name=signal).gauge.data_points
            for p in series:
                dp = data_points.add(time_unix_nano=_datetime_to_ns(p.ts), as_double=p.value)
                _proto_kvs(dp.attributes, p.labels)
    return request.SerializeToString()


def encode_logs(records: Sequence[LogRecord], encoding: OtlpEncoding) -> bytes:
    """Encode log records as one request: a ResourceLogs per service, the body as a string,
    the severity as both number and text.

    >>> from datetime import UTC, datetime
    >>> from airis.sources.otlp import decode_logs, decode_metrics, decode_traces
    >>> r = LogRecord(ts=datetime(2026, 1, 1, tzinfo=UTC), service="api", severity="WARN",
    ...               body="slow", span_id="eee19b7ec3c1b174")
    >>> decode_logs(encode_logs([r], "otlp_proto"), "otlp_proto").events == [r]
    True
    """
    by_service = _group(records, lambda r: r.service)
    if _encoding(encoding) == "otlp_json":
        return _json_request("Logs", "logRecords", by_service, _json_log_records)
    request = ExportLogsServiceRequest()
    for scope, group in _proto_scopes(request.resource_logs, "scope_logs", by_service):
        for r in group:
            record = scope.log_records.add(
                time_unix_nano=_datetime_to_ns(r.ts),
                severity_number=SEVERITY_NUMBER[r.severity],
                severity_text=r.severity,
                trace_id=bytes.fromhex(r.trace_id or ""),
                span_id=bytes.fromhex(r.span_id or ""),
            )
            record.body.string_value = r.body
            _proto_kvs(record.attributes, r.attributes)
    return request.SerializeToString()


def encode_traces(spans: Sequence[Span], encoding: OtlpEncoding) -> bytes:
    """Encode spans as one request: a ResourceSpans per service; ``peer_service`` becomes the
    attribute ``peer.service`` unless the span's attributes already have one.

    >>> from datetime import UTC, datetime
    >>> from airis.sources.otlp import decode_logs, decode_metrics, decode_traces
    >>> s = Span(trace_id="5b8efff798038103d269b633813fc60c", span_id="eee19b7ec3c1b174",
    ...          service="api", name="GET /", start=datetime(2026, 1, 1, tzinfo=UTC),
    ...          duration_ms=12.5, status="ok")
    >>> decode_traces(encode_traces([s], "otlp_json"), "otlp_json").events == [s]
    True
    """
    by_service = _group(spans, lambda s: s.service)
    if _encoding(encoding) == "otlp_json":
        return _json_request("Spans", "spans", by_service, _json_spans)
    request = ExportTraceServiceRequest()
    for scope, group in _proto_scopes(request.resource_spans, "scope_spans", by_service):
        for s in group:
            start_ns, end_ns = _span_ns(s)
            span = scope.spans.add(
                trace_id=bytes.fromhex(s.trace_id),
                span_id=bytes.fromhex(s.span_id),
                parent_span_id=bytes.fromhex(s.parent_span_id or ""),
                name=s.name,
                start_time_unix_nano=start_ns,
                end_time_unix_nano=end_ns,
            )
            span.status.code = STATUS_CODE[s.status]  # type: ignore[assignment]
            span.kind = SPAN_KIND_NUMBERS.get(s.attributes.get("span.kind", ""), 0)
            _proto_kvs(span.attributes, _span_attributes(s))
    return request.SerializeToString()


def _group(events: Iterable[Any], key: Callable[[Any], str]) -> dict[str, list[Any]]:
    """Events by key, keys in order of first appearance."""
    groups: dict[str, list[Any]] = {}
    for event in events:
        groups.setdefault(key(event), []).append(event)
    return groups


def _proto_scopes(
    resources: Any, scopes_field: str, by_service: dict[str, list[Any]]
) -> Iterator[tuple[Any, list[Any]]]:
    """One resource (with its ``service.name``) and one scope per service, to fill."""
    for service, group in by_service.items():
        resource = resources.add()
        _proto_kvs(resource.resource.attributes, {"service.name": service})
        scope = getattr(resource, scopes_field).add()
        scope.scope.name = SCOPE_NAME
        yield scope, group


def _proto_kvs(target: Any, labels: dict[str, str]) -> None:
    for key, value in labels.items():
        target.add(key=key).value.string_value = value


def _json_request(
    signal: str,
    items_key: str,
    by_service: dict[str, list[Any]],
    items: Callable[[list[Any]], list[dict[str, Any]]],
) -> bytes:
    """An OTLP/JSON request: ``resource<Signal>`` → ``scope<Signal>`` → ``items_key``."""
    scope = {"name": SCOPE_NAME}
    resources = [
        {
            "resource": {"attributes": _json_kvs({"service.name": service})},
            f"scope{signal}": [{"scope": scope, items_key: items(group)}],
        }
        for service, group in by_service.items()
    ]
    return orjson.dumps({f"resource{signal}": resources})


def _json_kvs(labels: dict[str, str]) -> list[dict[str, Any]]:
    return [{"key": k, "value": {"stringValue": v}} for k, v in labels.items()]


def _json_gauges(points: list[MetricPoint]) -> list[dict[str, Any]]:
    return [
        {"name": signal, "gauge": {"dataPoints": [_json_number_point(p) for p in series]}}
        for signal, series in _group(points, lambda p: p.signal).items()
    ]


def _json_number_point(p: MetricPoint) -> dict[str, Any]:
    return {
        "timeUnixNano": str(_datetime_to_ns(p.ts)),
        "asDouble": p.value,
        "attributes": _json_kvs(p.labels),
    }


def _json_log_records(records: list[LogRecord]) -> list[dict[str, Any]]:
    return [_json_log_record(r) for r in records]


def _json_log_record(r: LogRecord) -> dict[str, Any]:
    record: dict[str, Any] = {
        "timeUnixNano": str(_datetime_to_ns(r.ts)),
        "severityNumber": SEVERITY_NUMBER[r.severity],
        "severityText": r.severity,
        "body": {"stringValue": r.body},
        "attributes": _json_kvs(r.attributes),
    }
    if r.trace_id:
        record["traceId"] = r.trace_id  # OTLP/JSON ids are hex, not base64
    if r.span_id:
        record["spanId"] = r.span_id
    return record


def _json_spans(spans: list[Span]) -> list[dict[str, Any]]:
    return [_json_span_record(s) for s in spans]


def _json_span_record(s: Span) -> dict[str, Any]:
    start_ns, end_ns = _span_ns(s)
    span: dict[str, Any] = {
        "traceId": s.trace_id,
        "spanId": s.span_id,
        "name": s.name,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(end_ns),
        "status": {"code": STATUS_CODE[s.status]},
        "attributes": _json_kvs(_span_attributes(s)),
    }
    kind = SPAN_KIND_NUMBERS.get(s.attributes.get("span.kind", ""))
    if kind:
        span["kind"] = kind
    if s.parent_span_id:
        span["parentSpanId"] = s.parent_span_id
    return span


def _span_ns(s: Span) -> tuple[int, int]:
    start_ns = _datetime_to_ns(s.start)
    return start_ns, start_ns + round(s.duration_ms * 1e6)


def _span_attributes(s: Span) -> dict[str, str]:
    """The span's attributes as OTLP carries them: its kind is a field of its own (when OTLP
    has a number for it), and its peer service the attribute ``peer.service``."""
    attributes = s.attributes
    if attributes.get("span.kind") in SPAN_KIND_NUMBERS:
        attributes = {k: v for k, v in attributes.items() if k != "span.kind"}
    if s.peer_service and "peer.service" not in attributes:
        attributes = {**attributes, "peer.service": s.peer_service}
    return attributes
