"""Decoding OTLP as the OpenTelemetry Collector's Kafka exporter writes it, in bulk.

One Kafka message carries one ``Export{Metrics,Logs,Trace}ServiceRequest``: many data points,
log records or spans. Two encodings are understood:

* ``otlp_proto`` (the exporter's default): the serialized protobuf request.
* ``otlp_json``: the protobuf JSON mapping of the same request as OTLP/JSON defines it:
  camelCase keys (snake_case accepted too), 64-bit integers as strings or numbers, enums as
  numbers or names, and ``traceId``/``spanId``/``parentSpanId`` as **hex** (base64 is accepted
  as a fallback; other ``bytes`` such as ``bytesValue`` are base64 as usual). The JSON is
  walked as plain dicts after `orjson` parsing: ``google.protobuf.json_format`` would read the
  hex ids as base64 and is several times slower.

`sniff_encoding` tells these apart from our own JSON events by their first bytes.

Mapping rules:

* **service** = resource attribute ``service.name``; missing or empty → ``unknown_service``
  (as the OpenTelemetry spec says). Names we keep (service, metric signal, label and attribute
  keys, peer service) have every character outside ``[A-Za-z0-9_.:/-]`` replaced by ``_`` and
  are cut to 128 characters; when two keys clash after that, the later one wins.
* **values of attributes** become strings: a string as is, bool/int/double as compact JSON
  (``true``, ``3``, ``0.5``; non-finite doubles as ``NaN``/``Infinity``/``-Infinity``), bytes as
  hex, arrays and key-value lists as compact JSON, an empty value as ``""``; cut to 1,024
  characters. More than 64 labels: the first 64 by key are kept (nothing is rejected).
* **metrics**: signal = metric name. Gauge points and non-monotonic Sum points (an
  UpDownCounter: a level) → one `MetricPoint` each (``as_double`` or ``as_int``). Running
  totals become one `AggregatePoint` each, which
  `airis.operators.signals.otlp_metrics.OtlpMetricPoints` turns into per-interval rates, means and
  percentiles later in the flow (per series state cannot live here: a Collector spreads one
  service's messages over partitions): a monotonic Sum (``kind="sum"``); a Histogram
  (``kind="histogram"``: count, sum when present, explicit bounds and bucket counts); an
  ExponentialHistogram as explicit buckets (``base = 2 ** 2 ** -scale``, bucket ``i`` covering
  ``(base ** (offset + i), base ** (offset + i + 1)]``, the negative ones mirrored below zero,
  the zero bucket between, an empty bucket at each end); a Summary's count and sum as a
  histogram without buckets, its quantiles as given → ``<name>.q<quantile>`` points
  (``latency.q0.99``, ``latency.q1``; the name is cut so that the suffix always fits).
  ``temporality`` = the metric's aggregation temporality (unspecified, which OTLP forbids,
  read as cumulative; Summaries are cumulative), ``start`` = ``start_time_unix_nano`` (0 →
  None), ``unit`` = the metric's unit. An aggregate whose bucket counts do not fit its bounds
  (bounds + 1), whose bounds do not increase, whose count is not the sum of its buckets, whose
  exponential bounds overflow a double, or whose start is after its time is `Rejected`.
  ts = ``time_unix_nano`` (UTC, truncated to µs), or
  ``start_time_unix_nano`` when that is 0. Labels = the point's attributes plus the resource
  attributes ``service.namespace``, ``service.instance.id`` and ``host.name`` (the point's own
  attribute wins a clash). A point flagged NoRecordedValue, with no value or no timestamp, a
  non-finite value or a timestamp outside [2000, 2100) is `Rejected`, with the reason; each
  point derived from a summary is judged on its own. Metric points and aggregates whose fields
  pass an exact pre-check are built without pydantic's validation (it would double the cost);
  the rest are validated by the model, which gives the reason.
* **logs**: ts = ``time_unix_nano``, else ``observed_time_unix_nano``; severity from
  ``severity_number`` (1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR, 21-24 FATAL),
  else from ``severity_text`` when it names a level (``WARNING`` → WARN, ``CRITICAL`` → FATAL),
  else INFO. body = a string as is, any other value as compact JSON, cut to `MAX_TEXT`.
  trace/span ids as hex; empty or all-zero → None. attributes = the record's attributes.
* **traces**: ids as hex (an empty or all-zero parent → None), name cut to 256 characters,
  start = ``start_time_unix_nano``, duration_ms = (end - start) / 1e6 (negative → `Rejected`),
  status ERROR → ``error``, OK → ``ok``, anything else → ``unset``; peer_service from the
  attribute ``peer.service``, else ``server.address``, else ``net.peer.name``.
  attributes = the span's attributes (``peer.service`` included) and ``span.kind``
  (``internal``, ``server``, ``client``, ``producer`` or ``consumer``) from the span's kind,
  unless an attribute of that name came with it or the kind is unspecified.

Failures: a message that cannot be read at all — over `MAX_MESSAGE_BYTES`, invalid protobuf,
invalid UTF-8 or JSON, or JSON whose containers have the wrong shape (anything outside a data
point, log record or span) — raises `OtlpDecodeError`. A data point, record or span that fails
validation, or whose own JSON fields are malformed, becomes one `Rejected` with the reason and a
JSON-able description (for malformed JSON, the item's JSON cut to 1,024 characters), and the
rest of the message is kept. Nothing else is ever raised for any payload (an unknown
``encoding`` argument is the caller's bug: ValueError). Protobuf is permissive, so random bytes
sometimes parse: they then give events and rejections like any other message.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, NamedTuple, TypeVar

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from pydantic import ValidationError

from airis.batches import MetricBatch
from airis.events import (
    MAX_LABELS,
    MAX_TEXT,
    MAX_TS,
    MIN_TS,
    AggregatePoint,
    LogRecord,
    MetricPoint,
    Span,
    aggregate_problem,
    validation_reason,
)
from airis.sources.fast_point import (
    FAST_CONSTRUCT,
    PointColumns,
    construct_point,
    valid_point_fields,
)

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Decoded",
    "OtlpDecodeError",
    "OtlpEncoding",
    "Rejected",
    "decode_logs",
    "decode_metrics",
    "decode_traces",
    "encode_logs",
    "encode_metrics",
    "encode_traces",
    "sniff_encoding",
]

#: Largest message we try to decode; checked before parsing anything.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
UNKNOWN_SERVICE = "unknown_service"
#: Resource attributes copied into every metric point's labels.
RESOURCE_LABELS = ("service.namespace", "service.instance.id", "host.name")
#: Scope name written by the encoders.
SCOPE_NAME = "airis-mon"

MAX_NAME = 128
MAX_LABEL_VALUE = 1024
MAX_SPAN_NAME = 256
MAX_UNIT = 64
#: Bounds and bucket counts of a rejected histogram kept in its dead letter.
MAX_ITEM_BUCKETS = 64

OtlpEncoding = Literal["otlp_proto", "otlp_json"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Rejected:
    """One data point, log record or span of a decodable message that failed validation."""

    reason: str
    item: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Decoded(Generic[T]):
    """What one message gave: valid events, and the items that were rejected."""

    events: list[T]
    rejected: list[Rejected]


class OtlpDecodeError(ValueError):
    """The whole message is undecodable; ``str(exc)`` is a short reason."""


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


# --- shared mapping -----------------------------------------------------------------------

_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.:/-]")
_NAME_CACHE: dict[str, str] = {}
_NAME_CACHE_MAX = 8192
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NO_TS = "ts: no timestamp (time_unix_nano and start_time_unix_nano are 0)"
_NO_VALUE_FLAG = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK


def _sanitise(name: str) -> str:
    """``name`` with characters outside our Name pattern replaced by ``_``, cut to 128.

    Names repeat across points, so results are cached (the cache is cleared when full).
    """
    clean = _NAME_CACHE.get(name)
    if clean is None:
        clean = _BAD_NAME_CHARS.sub("_", name)[:MAX_NAME]
        if len(_NAME_CACHE) >= _NAME_CACHE_MAX:
            _NAME_CACHE.clear()
        _NAME_CACHE[name] = clean
    return clean


def _with_suffix(base: str, suffix: str) -> str:
    """A derived signal name; the base is cut so that the suffix always survives."""
    return base[: MAX_NAME - len(suffix)] + suffix if suffix else base


def _service(attrs: dict[str, str]) -> str:
    return _sanitise(attrs.get("service.name") or "") or UNKNOWN_SERVICE


def _text(value: Any) -> str:
    """An attribute value as text: strings as is, anything else as compact JSON."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    return orjson.dumps(value).decode()


def _finite_or_text(value: float) -> float | str:
    """A double ready for JSON: non-finite ones spelled as the protobuf JSON mapping does."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _limit(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        return dict(sorted(labels.items())[:MAX_LABELS])
    return labels


def _ns_to_datetime(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _datetime_to_ns(ts: datetime) -> int:
    return (ts - _EPOCH) // _MICROSECOND * 1000


def _hex_id(raw: bytes) -> str | None:
    """An optional id (log context, parent span): empty or all zeros means none."""
    return raw.hex() if raw.strip(b"\x00") else None


_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
#: Severity numbers 1-24 come in runs of four per level.
_SEVERITY_BY_NUMBER = tuple(level for level in _LEVELS for _ in range(4))
_SEVERITY_BY_TEXT = {
    "TRACE": "TRACE",
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "WARN": "WARN",
    "WARNING": "WARN",
    "ERROR": "ERROR",
    "FATAL": "FATAL",
    "CRITICAL": "FATAL",
}
_SEVERITY_NUMBER = {level: 1 + 4 * i for i, level in enumerate(_LEVELS)}


def _severity(number: int, text: str) -> str:
    if 1 <= number <= 24:
        return _SEVERITY_BY_NUMBER[number - 1]
    return _SEVERITY_BY_TEXT.get(text.strip().upper(), "INFO")


_STATUS = {2: "error", 1: "ok"}
_STATUS_CODE = {"error": 2, "ok": 1, "unset": 0}
#: OTLP's SpanKind numbers ↔ the ``span.kind`` attribute of a `Span` (UNSPECIFIED: none).
_SPAN_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_SPAN_KIND_NUMBERS = {name: number for number, name in _SPAN_KINDS.items()}
_PEER_KEYS = ("peer.service", "server.address", "net.peer.name")


def _peer_service(attributes: dict[str, str]) -> str | None:
    for key in _PEER_KEYS:
        value = attributes.get(key)
        if value:
            return _sanitise(value)
    return None


class _Out:
    """Events and rejections of one message, with a per-message cache of timestamps (the
    points of one batch mostly share a handful of them)."""

    __slots__ = ("columns", "events", "rejected", "times")

    def __init__(self, columns: PointColumns | None = None) -> None:
        self.events: list[Any] = []
        self.rejected: list[Rejected] = []
        self.times: dict[int, datetime] = {}
        self.columns = columns  # points go here instead of `events`, when given

    def ts(self, ns: int) -> datetime:
        ts = self.times.get(ns)
        if ts is None:
            ts = self.times[ns] = _ns_to_datetime(ns)
        return ts

    def reject(self, reason: str, item: dict[str, Any]) -> None:
        self.rejected.append(Rejected(reason, item))


# Points whose fields pass `valid_point_fields` are built without pydantic's validation (see
# airis.sources.fast_point); anything it declines goes through `MetricPoint.model_validate`.
_FAST_CONSTRUCT = FAST_CONSTRUCT
_valid_point_fields = valid_point_fields
_construct_point = construct_point


class _Metric:
    """One OTLP metric being turned into points: what its data points share."""

    __slots__ = ("base", "name", "out", "service", "signal", "unit")

    def __init__(
        self, out: _Out, service: str, base: dict[str, str], name: str, unit: str = ""
    ) -> None:
        self.out = out
        self.service = service
        self.base = base  # resource labels
        self.name = name
        self.signal = _sanitise(name)
        self.unit = unit[:MAX_UNIT]

    def data_point(
        self,
        attrs: dict[str, str],
        ts_ns: int,
        start_ns: int,
        flags: int,
        values: Sequence[tuple[str, float | None]],
    ) -> None:
        """The metric points of one data point: one per ``(suffix, value)`` in ``values``."""
        labels = {**self.base, **attrs} if self.base else attrs
        if len(labels) > MAX_LABELS:
            labels = _limit(labels)
        ns = ts_ns or start_ns
        if flags & _NO_VALUE_FLAG:
            self.reject("no recorded value", self.signal, ns, None, labels)
            return
        if not ns:
            self.reject(_NO_TS, self.signal, ns, None, labels)
            return
        ts = self.out.times.get(ns)
        if ts is None:
            try:
                ts = self.out.ts(ns)
            except OverflowError:
                reason = f"ts: timestamp of {ns} ns outside [2000, 2100)"
                self.reject(reason, self.signal, ns, None, labels)
                return
        suffix, value = values[0]
        self.emit(ts, ns, suffix, value, labels)
        if len(values) > 1:
            for suffix, value in values[1:]:
                self.emit(ts, ns, suffix, value, dict(labels))  # points must not share a dict

    def emit(
        self, ts: datetime, ns: int, suffix: str, value: float | None, labels: dict[str, str]
    ) -> None:
        signal = _with_suffix(self.signal, suffix) if suffix else self.signal
        if value is None:
            self.reject("no value", signal, ns, None, labels)
            return
        columns = self.out.columns
        if _FAST_CONSTRUCT and _valid_point_fields(ts, self.service, signal, value, labels):
            if columns is not None:
                columns.add(ts, self.service, signal, value, labels)
                return
            fields = {"ts": ts, "service": self.service, "signal": signal, "value": value,
                      "labels": labels}  # fmt: skip
            self.out.events.append(_construct_point(fields))
            return
        fields = {"ts": ts, "service": self.service, "signal": signal, "value": value,
                  "labels": labels}  # fmt: skip
        try:
            point = MetricPoint.model_validate(fields)
        except ValidationError as exc:
            self.reject(validation_reason(exc), signal, ns, value, labels)
            return
        if columns is not None:
            columns.add(point.ts, point.service, point.signal, point.value, point.labels)
        else:
            self.out.events.append(point)

    def aggregate(
        self, attrs: dict[str, str], ts_ns: int, start_ns: int, flags: int, raw: _RawAggregate
    ) -> None:
        """One `AggregatePoint` (a monotonic Sum, a histogram, a Summary's count and sum)."""
        labels = {**self.base, **attrs} if self.base else attrs
        if len(labels) > MAX_LABELS:
            labels = _limit(labels)
        ns = ts_ns or start_ns
        reason = ""
        if flags & _NO_VALUE_FLAG:
            reason = "no recorded value"
        elif not ns:
            reason = _NO_TS
        elif ts_ns and start_ns > ts_ns:
            reason = f"start_time_unix_nano {start_ns} is after time_unix_nano {ts_ns}"
        else:
            reason = aggregate_problem(raw.kind, raw.value, raw.count, raw.bounds, raw.buckets)
        if reason:
            self.reject(reason, self.signal, ns, raw.value, labels, raw)
            return
        try:
            ts = self.out.ts(ns)
            start = self.out.ts(start_ns) if start_ns and ts_ns else None
        except OverflowError:
            reason = f"ts: timestamp of {ns} ns outside [2000, 2100)"
            self.reject(reason, self.signal, ns, raw.value, labels, raw)
            return
        fields = {
            "ts": ts,
            "start": start,
            "service": self.service,
            "signal": self.signal,
            "kind": raw.kind,
            "temporality": raw.temporality,
            "unit": self.unit,
            "value": raw.value,
            "count": raw.count,
            "bounds": raw.bounds,
            "buckets": raw.buckets,
            "labels": labels,
        }
        if _valid_aggregate_fields(ts, start, self.service, self.signal, raw, labels):
            self.out.events.append(AggregatePoint.model_construct(**fields))
            return
        try:
            point = AggregatePoint.model_validate(fields)
        except ValidationError as exc:
            self.reject(validation_reason(exc), self.signal, ns, raw.value, labels, raw)
        else:
            self.out.events.append(point)

    def reject(
        self,
        reason: str,
        signal: str,
        ns: int,
        value: float | None,
        labels: dict[str, str],
        raw: _RawAggregate | None = None,
    ) -> None:
        item = {
            "service": self.service,
            "metric": self.name,
            "signal": signal,
            "time_unix_nano": str(ns),
            "value": None if value is None else _finite_or_text(value),
            "labels": labels,
        }
        if raw is not None:
            item["kind"] = raw.kind
            item["count"] = raw.count
            item["bounds"] = [_finite_or_text(b) for b in raw.bounds[:MAX_ITEM_BUCKETS]]
            item["buckets"] = list(raw.buckets[:MAX_ITEM_BUCKETS])
        self.out.reject(reason, item)


class _RawAggregate(NamedTuple):
    """An aggregate data point's fields as read from either encoding (see `AggregatePoint`)."""

    kind: str  # "sum" or "histogram"
    temporality: str  # "cumulative" or "delta"
    value: float | None
    count: int = 0
    bounds: tuple[float, ...] = ()
    buckets: tuple[int, ...] = ()


def _valid_aggregate_fields(
    ts: datetime,
    start: datetime | None,
    service: str,
    signal: str,
    raw: _RawAggregate,
    labels: dict[str, str],
) -> bool:
    """Whether `AggregatePoint.model_validate` accepts these fields unchanged (the point's
    consistency is checked before: `aggregate_problem`); otherwise pydantic decides."""
    value = 0.0 if raw.value is None else raw.value
    if not (_FAST_CONSTRUCT and _valid_point_fields(ts, service, signal, value, labels)):
        return False
    if start is not None and not (type(start) is datetime and MIN_TS <= start < MAX_TS):
        return False
    if not all(type(b) is float and math.isfinite(b) for b in raw.bounds):
        return False
    return all(type(c) is int and c >= 0 for c in raw.buckets) and raw.count >= 0


#: AggregationTemporality: 1 delta, 2 cumulative; 0 (unspecified, invalid) read as cumulative,
#: the default of every SDK.
_TEMPORALITY = {1: "delta"}
_MAX_BUCKETS = 4096


def _temporality(number: int) -> str:
    return _TEMPORALITY.get(number, "cumulative")


def _exponential_buckets(
    scale: int,
    zero_count: int,
    positive: tuple[int, Sequence[int]],
    negative: tuple[int, Sequence[int]],
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """An ExponentialHistogram's buckets as explicit ones (``ValueError``: why not).

    With ``base = 2 ** 2 ** -scale``, positive bucket ``i`` covers
    ``(base ** (offset + i), base ** (offset + i + 1)]`` and negative bucket ``i`` the same
    range below zero. The explicit buckets keep every bound: an empty bucket below the lowest
    and above the highest, and the zero bucket (with the negative ones when there are none
    of those) between the negative and the positive ranges.

    >>> _exponential_buckets(0, 1, (1, [2, 3]), (0, []))
    ((2.0, 4.0, 8.0), (1, 2, 3, 0))
    """
    if not -10 <= scale <= 20:
        raise ValueError(f"scale {scale} outside [-10, 20]")
    pos_offset, pos = positive
    neg_offset, neg = negative
    if len(pos) + len(neg) > _MAX_BUCKETS:
        raise ValueError(f"more than {_MAX_BUCKETS} buckets")
    step = 2.0**-scale

    def bound(index: int) -> float:
        exponent = index * step
        if not -1000 < exponent < 1000:
            raise ValueError(f"bucket bound 2**{exponent} out of range")
        return 2.0**exponent

    bounds: list[float] = []
    counts: list[int] = []
    if any(neg):
        bounds += [-bound(neg_offset + i + 1) for i in reversed(range(len(neg)))]
        bounds.append(-bound(neg_offset))
        counts += [0, *reversed(neg)]
    if pos:
        bounds += [bound(pos_offset + i) for i in range(len(pos) + 1)]
        counts += [zero_count, *pos, 0]
    else:
        counts += [zero_count]
        if not bounds:
            return (), ()  # only a zero bucket: count and sum, no distribution
        counts.append(0)
        bounds.append(0.0)
    return tuple(bounds), tuple(counts)


def _quantile_suffix(quantile: float) -> str:
    text = repr(float(quantile))
    return ".q" + _sanitise(text[:-2] if text.endswith(".0") else text)


class _RawLog(NamedTuple):
    """A log record's fields as read from either encoding, before mapping."""

    time_ns: int
    observed_ns: int
    severity_number: int
    severity_text: str
    body: str
    trace_id: str | None
    span_id: str | None
    attributes: dict[str, str]


def _emit_log(out: _Out, service: str, raw: _RawLog) -> None:
    fields: dict[str, Any] = {
        "service": service,
        "severity": _severity(raw.severity_number, raw.severity_text),
        "body": raw.body[:MAX_TEXT],
        "trace_id": raw.trace_id,
        "span_id": raw.span_id,
        "attributes": _limit(raw.attributes),
    }
    ns = raw.time_ns or raw.observed_ns
    try:
        if not ns:
            raise _NoTimestamp(
                "ts: no timestamp (time_unix_nano and observed_time_unix_nano are 0)"
            )
        out.events.append(LogRecord(ts=_timestamp(out, ns, "ts"), **fields))
        return
    except _NoTimestamp as exc:
        reason = str(exc)
    except ValidationError as exc:
        reason = validation_reason(exc)
    fields["body"] = fields["body"][:MAX_LABEL_VALUE]  # enough to recognise it
    out.reject(reason, dict(fields, time_unix_nano=str(raw.time_ns)))


class _RawSpan(NamedTuple):
    """A span's fields as read from either encoding, before mapping."""

    trace_id: str | None
    span_id: str | None
    parent_span_id: str | None
    name: str
    start_ns: int
    end_ns: int
    status: int
    attributes: dict[str, str]
    kind: int = 0


def _emit_span(out: _Out, service: str, raw: _RawSpan) -> None:
    attributes = raw.attributes
    kind = _SPAN_KINDS.get(raw.kind)
    if kind is not None and "span.kind" not in attributes:
        attributes = {**attributes, "span.kind": kind}
    fields: dict[str, Any] = {
        "trace_id": raw.trace_id,
        "span_id": raw.span_id,
        "parent_span_id": raw.parent_span_id,
        "service": service,
        "name": raw.name[:MAX_SPAN_NAME],
        "duration_ms": (raw.end_ns - raw.start_ns) / 1e6,
        "status": _STATUS.get(raw.status, "unset"),
        "peer_service": _peer_service(attributes),
        "attributes": _limit(attributes),
    }
    try:
        out.events.append(Span(start=_timestamp(out, raw.start_ns, "start"), **fields))
        return
    except _NoTimestamp as exc:
        reason = str(exc)
    except ValidationError as exc:
        reason = validation_reason(exc)
    del fields["duration_ms"]
    fields["start_time_unix_nano"] = str(raw.start_ns)
    fields["end_time_unix_nano"] = str(raw.end_ns)
    out.reject(reason, fields)


class _NoTimestamp(Exception):
    """A record without a usable timestamp; the message is the reason."""


def _timestamp(out: _Out, ns: int, field: str) -> datetime:
    try:
        return out.ts(ns)
    except OverflowError:
        raise _NoTimestamp(f"{field}: timestamp of {ns} ns outside [2000, 2100)") from None


# --- protobuf walkers ---------------------------------------------------------------------


def _proto_value(value: AnyValue) -> Any:
    """An AnyValue as a JSON-able Python value (bytes as hex, non-finite doubles as text)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return _finite_or_text(value.double_value)
    if kind == "bool_value":
        return value.bool_value
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind == "array_value":
        return [_proto_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _proto_value(kv.value) for kv in value.kvlist_value.values}
    return None


def _proto_attrs(attributes: Iterable[Any]) -> dict[str, str]:
    labels: dict[str, str] = {}
    names = _NAME_CACHE
    for kv in attributes:
        value = kv.value
        text = value.string_value
        # Most attributes are non-empty strings: skip the generic conversion for them.
        if not text and value.WhichOneof("value") != "string_value":
            text = _text(_proto_value(value))
        key = kv.key
        labels[names.get(key) or _sanitise(key)] = (
            text if len(text) <= MAX_LABEL_VALUE else text[:MAX_LABEL_VALUE]
        )
    return labels


def _proto_resource(resource: Any) -> tuple[str, dict[str, str]]:
    attrs = _proto_attrs(resource.attributes)
    base = {key: attrs[key] for key in RESOURCE_LABELS if key in attrs}
    return _service(attrs), base


def _proto_metrics(request: Any, out: _Out) -> None:
    for rm in request.resource_metrics:
        service, base = _proto_resource(rm.resource)
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                _proto_metric(out, service, base, metric)


def _proto_metric(out: _Out, service: str, base: dict[str, str], metric: Any) -> None:
    kind = metric.WhichOneof("data")
    if kind is None:
        return  # a metric without data: nothing to emit
    target = _Metric(out, service, base, metric.name, metric.unit)
    data = getattr(metric, kind)
    if kind == "histogram" or kind == "exponential_histogram" or kind == "summary":
        for dp in data.data_points:
            _proto_aggregate(target, kind, _temporality_of(kind, data), dp)
        return
    counter = kind == "sum" and data.is_monotonic
    temporality = _temporality(data.aggregation_temporality) if counter else ""
    for dp in data.data_points:
        which = dp.WhichOneof("value")
        if which == "as_double":
            value: float | None = dp.as_double
        else:
            value = None if which is None else float(dp.as_int)
        attrs = _proto_attrs(dp.attributes)
        if counter:
            raw = _RawAggregate("sum", temporality, value)
            target.aggregate(attrs, dp.time_unix_nano, dp.start_time_unix_nano, dp.flags, raw)
        else:
            ts_ns, start_ns = dp.time_unix_nano, dp.start_time_unix_nano
            target.data_point(attrs, ts_ns, start_ns, dp.flags, (("", value),))


def _temporality_of(kind: str, data: Any) -> str:
    """A Summary is cumulative (OTLP gives it no temporality); the others say theirs."""
    return "cumulative" if kind == "summary" else _temporality(data.aggregation_temporality)


def _proto_aggregate(target: _Metric, kind: str, temporality: str, dp: Any) -> None:
    attrs = _proto_attrs(dp.attributes)
    ts_ns, start_ns, flags = dp.time_unix_nano, dp.start_time_unix_nano, dp.flags
    if kind == "summary":
        quantiles = [(q.quantile, q.value) for q in dp.quantile_values]
        if quantiles:
            target.data_point(attrs, ts_ns, start_ns, flags, _summary_values(quantiles))
        raw = _RawAggregate("histogram", temporality, dp.sum, dp.count)
        target.aggregate(dict(attrs), ts_ns, start_ns, flags, raw)
        return
    total = dp.sum if dp.HasField("sum") else None
    if kind == "histogram":
        raw = _RawAggregate(
            "histogram",
            temporality,
            total,
            dp.count,
            tuple(dp.explicit_bounds),
            tuple(dp.bucket_counts),
        )
    else:
        try:
            raw = _exponential_aggregate(
                temporality,
                total,
                dp.count,
                dp.scale,
                dp.zero_count,
                (dp.positive.offset, list(dp.positive.bucket_counts)),
                (dp.negative.offset, list(dp.negative.bucket_counts)),
            )
        except ValueError as exc:
            labels = {**target.base, **attrs}
            target.reject(str(exc), target.signal, ts_ns or start_ns, total, labels)
            return
    target.aggregate(attrs, ts_ns, start_ns, flags, raw)


def _exponential_aggregate(
    temporality: str,
    total: float | None,
    count: int,
    scale: int,
    zero_count: int,
    positive: tuple[int, Sequence[int]],
    negative: tuple[int, Sequence[int]],
) -> _RawAggregate:
    """An ExponentialHistogram point as explicit buckets (``ValueError``: why it has none)."""
    in_buckets = zero_count + sum(positive[1]) + sum(negative[1])
    if in_buckets != count:
        raise ValueError(f"count {count} is not the sum of the bucket counts ({in_buckets})")
    bounds, buckets = _exponential_buckets(scale, zero_count, positive, negative)
    return _RawAggregate("histogram", temporality, total, count, bounds, buckets)


def _summary_values(quantiles: list[tuple[float, float]]) -> list[tuple[str, float | None]]:
    return [(_quantile_suffix(q), v) for q, v in quantiles]


def _proto_logs(request: Any, out: _Out) -> None:
    for rl in request.resource_logs:
        service = _service(_proto_attrs(rl.resource.attributes))
        for sl in rl.scope_logs:
            for record in sl.log_records:
                _proto_log(out, service, record)


def _proto_log(out: _Out, service: str, record: Any) -> None:
    body = _text(_proto_value(record.body)) if record.HasField("body") else ""
    raw = _RawLog(
        record.time_unix_nano,
        record.observed_time_unix_nano,
        record.severity_number,
        record.severity_text,
        body,
        _hex_id(record.trace_id),
        _hex_id(record.span_id),
        _proto_attrs(record.attributes),
    )
    _emit_log(out, service, raw)


def _proto_traces(request: Any, out: _Out) -> None:
    for rs in request.resource_spans:
        service = _service(_proto_attrs(rs.resource.attributes))
        for ss in rs.scope_spans:
            for span in ss.spans:
                _proto_span(out, service, span)


def _proto_span(out: _Out, service: str, span: Any) -> None:
    raw = _RawSpan(
        span.trace_id.hex(),
        span.span_id.hex(),
        _hex_id(span.parent_span_id),
        span.name,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        span.status.code,
        _proto_attrs(span.attributes),
        span.kind,
    )
    _emit_span(out, service, raw)


# --- OTLP/JSON walkers --------------------------------------------------------------------
#
# Containers (requests, resources, scopes, metrics) of the wrong shape make the whole message
# undecodable (OtlpDecodeError). Within a data point, record or span, a malformed field raises
# ValueError/TypeError, which rejects only that item.

_ITEM_ERRORS = (ValueError, TypeError, KeyError, OverflowError, RecursionError, binascii.Error)
_HEX = re.compile(r"[0-9a-fA-F]+")
_INT64 = (-(2**63), 2**63 - 1)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _jget(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _jobjects(obj: dict[str, Any], camel: str, snake: str, where: str) -> Iterator[dict]:
    """The objects of a repeated field; null or missing is empty, as in the JSON mapping."""
    items = _jget(obj, camel, snake)
    if items is None:
        return
    if not isinstance(items, list):
        raise OtlpDecodeError(f"{where}{camel}: expected a list, got {_kind(items)}")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise OtlpDecodeError(f"{where}{camel}[{i}]: expected an object, got {_kind(item)}")
        yield item


def _jobject(obj: dict[str, Any], camel: str, snake: str, where: str) -> dict[str, Any]:
    value = _jget(obj, camel, snake)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OtlpDecodeError(f"{where}{camel}: expected an object, got {_kind(value)}")
    return value


def _jint(value: Any) -> int:
    """A 64-bit integer field: a number or a decimal string; missing is 0."""
    if value is None:
        return 0
    if type(value) is int:
        number = value
    elif type(value) is str or (type(value) is float and value.is_integer()):
        number = int(value)
    else:
        raise TypeError(f"expected an integer, got {value!r:.40}")
    if not -(2**63) <= number < 2**64:
        raise ValueError(f"integer {number} out of 64-bit range")
    return number


def _jfloat(value: Any) -> float:
    """A double field: a number, or a string such as ``"NaN"`` or ``"Infinity"``."""
    if value is None:
        return 0.0
    if type(value) is float:
        return value
    if type(value) is int or type(value) is str:
        return float(value)
    raise TypeError(f"expected a number, got {value!r:.40}")


def _jstr(value: Any) -> str:
    if value is None:
        return ""
    if type(value) is not str:
        raise TypeError(f"expected a string, got {value!r:.40}")
    return value


def _jenum(value: Any, enum: Any) -> int:
    """An enum given as its number or its name."""
    if type(value) is str and not value.lstrip("-").isdigit():
        return int(enum.Value(value))
    return _jint(value)


def _jbytes(value: Any) -> bytes:
    """A bytes field: base64, standard or URL-safe, padded or not (as the JSON mapping)."""
    text = _jstr(value).replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _jid(value: Any, size: int) -> str:
    """A trace (16 bytes) or span (8 bytes) id as hex: hex as OTLP/JSON says, in any case,
    else base64 as the plain protobuf JSON mapping would have it."""
    text = _jstr(value)
    if len(text) == 2 * size and _HEX.fullmatch(text):
        return text.lower()
    try:
        return _jbytes(text).hex()  # of the wrong size, validation rejects it
    except binascii.Error:
        return text  # not an id at all: validation rejects it with the pattern as the reason


def _jopt_id(value: Any, size: int) -> str | None:
    """An optional id: empty or all zeros means none."""
    hex_id = _jid(value, size)
    return hex_id if hex_id and hex_id.strip("0") else None


def _json_value(value: Any) -> Any:
    """A JSON AnyValue as a JSON-able Python value, as `_proto_value` does."""
    if not isinstance(value, dict):
        raise TypeError(f"expected an AnyValue object, got {_kind(value)}")
    if "stringValue" in value or "string_value" in value:
        return _jstr(_jget(value, "stringValue", "string_value"))
    if "intValue" in value or "int_value" in value:
        number = _jint(_jget(value, "intValue", "int_value"))
        if number > _INT64[1]:
            raise ValueError(f"integer {number} out of 64-bit range")
        return number
    if "doubleValue" in value or "double_value" in value:
        return _finite_or_text(_jfloat(_jget(value, "doubleValue", "double_value")))
    if "boolValue" in value or "bool_value" in value:
        flag = _jget(value, "boolValue", "bool_value")
        if type(flag) is not bool:
            raise TypeError(f"expected a bool, got {flag!r:.40}")
        return flag
    if "bytesValue" in value or "bytes_value" in value:
        return _jbytes(_jget(value, "bytesValue", "bytes_value")).hex()
    if "arrayValue" in value or "array_value" in value:
        array = _jobject(value, "arrayValue", "array_value", "")
        return [_json_value(v) for v in _jlist(array, "values")]
    if "kvlistValue" in value or "kvlist_value" in value:
        kvlist = _jobject(value, "kvlistValue", "kvlist_value", "")
        return {
            _jstr(kv.get("key")): _json_value(_or_empty(kv.get("value"))) for kv in _jkvs(kvlist)
        }
    return None


def _excerpt(raw: Any) -> str:
    """A malformed item as compact JSON, cut to 1,024 characters: enough to recognise it,
    and safe to serialise however large or deeply nested it was."""
    try:
        text = orjson.dumps(raw).decode()
    except (TypeError, RecursionError):  # nested deeper than orjson writes, or huge integers
        text = "<nested too deeply to show>"
    return text[:MAX_LABEL_VALUE]


def _or_empty(value: Any) -> Any:
    """Null is the default value in the JSON mapping: an empty AnyValue here."""
    return {} if value is None else value


def _jlist(obj: dict[str, Any], key: str) -> list[Any]:
    items = obj.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise TypeError(f"{key}: expected a list, got {_kind(items)}")
    return items


def _jkvs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    kvs = _jlist(obj, "values") if "values" in obj else _jlist(obj, "attributes")
    for kv in kvs:
        if not isinstance(kv, dict):
            raise TypeError(f"expected a key-value object, got {_kind(kv)}")
    return kvs


def _json_attrs(obj: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for kv in _jlist(obj, "attributes"):
        if not isinstance(kv, dict):
            raise TypeError(f"attributes: expected an object, got {_kind(kv)}")
        value = kv.get("value")
        if type(value) is dict and type(value.get("stringValue")) is str:
            text = value["stringValue"]  # the common case, without the generic conversion
        else:
            text = _text(_json_value(_or_empty(value)))
        labels[_sanitise(_jstr(kv.get("key")))] = text[:MAX_LABEL_VALUE]
    return labels


def _json_resource(container: dict[str, Any], where: str) -> dict[str, str]:
    resource = _jobject(container, "resource", "resource", where)
    try:
        return _json_attrs(resource)
    except _ITEM_ERRORS as exc:
        raise OtlpDecodeError(f"{where}resource: {exc}") from None


def _json_metrics(doc: dict[str, Any], out: _Out) -> None:
    for i, rm in enumerate(_jobjects(doc, "resourceMetrics", "resource_metrics", "")):
        where = f"resourceMetrics[{i}]."
        attrs = _json_resource(rm, where)
        service = _service(attrs)
        base = {key: attrs[key] for key in RESOURCE_LABELS if key in attrs}
        for j, sm in enumerate(_jobjects(rm, "scopeMetrics", "scope_metrics", where)):
            where_sm = f"{where}scopeMetrics[{j}]."
            for k, metric in enumerate(_jobjects(sm, "metrics", "metrics", where_sm)):
                _json_metric(out, service, base, metric, f"{where_sm}metrics[{k}].")


_JSON_KINDS = (
    ("gauge", "gauge", "gauge"),
    ("sum", "sum", "sum"),
    ("histogram", "histogram", "histogram"),
    ("exponentialHistogram", "exponential_histogram", "exponential_histogram"),
    ("summary", "summary", "summary"),
)


def _json_metric(
    out: _Out, service: str, base: dict[str, str], metric: dict[str, Any], where: str
) -> None:
    name = metric.get("name")
    if name is None:
        name = ""
    elif type(name) is not str:
        raise OtlpDecodeError(f"{where}name: expected a string, got {_kind(name)}")
    unit = metric.get("unit")
    if unit is not None and type(unit) is not str:
        raise OtlpDecodeError(f"{where}unit: expected a string, got {_kind(unit)}")
    found = _json_metric_data(metric, where)
    if found is None:
        return  # a metric without data: nothing to emit
    kind, data, where = found
    target = _Metric(out, service, base, name, unit or "")
    try:
        temporality = _json_temporality(kind, data)
    except _ITEM_ERRORS as exc:
        raise OtlpDecodeError(f"{where}{exc}") from None
    for dp in _jobjects(data, "dataPoints", "data_points", where):
        try:
            attrs = _json_attrs(dp)
            ts_ns = _jint(_jget(dp, "timeUnixNano", "time_unix_nano"))
            start_ns = _jint(_jget(dp, "startTimeUnixNano", "start_time_unix_nano"))
            flags = _jint(dp.get("flags"))
            if kind == "exponential_histogram":
                fields = _json_exponential_fields(dp)
            else:
                values = _json_values(kind, temporality, dp)
        except _ITEM_ERRORS as exc:
            item = {"service": service, "metric": name, "data_point": _excerpt(dp)}
            out.reject(f"malformed data point: {exc}", item)
            continue
        if kind == "exponential_histogram":
            try:
                raw = _exponential_aggregate(temporality, *fields)
            except ValueError as exc:
                labels = {**target.base, **attrs}
                target.reject(str(exc), target.signal, ts_ns or start_ns, fields[0], labels)
                continue
            target.aggregate(attrs, ts_ns, start_ns, flags, raw)
            continue
        for value in values:
            if isinstance(value, _RawAggregate):
                target.aggregate(dict(attrs), ts_ns, start_ns, flags, value)
            else:
                target.data_point(attrs, ts_ns, start_ns, flags, value)


def _json_metric_data(metric: dict[str, Any], where: str) -> tuple[str, dict, str] | None:
    """The metric's kind, data and path."""
    for camel, snake, kind in _JSON_KINDS:
        data = _jget(metric, camel, snake)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise OtlpDecodeError(f"{where}{camel}: expected an object, got {_kind(data)}")
        return kind, data, f"{where}{camel}."
    return None


def _json_temporality(kind: str, data: dict[str, Any]) -> str:
    """``cumulative`` or ``delta`` for points that become `AggregatePoint`\\ s, else ``""``."""
    if kind == "gauge" or kind == "summary":
        return "" if kind == "gauge" else "cumulative"
    if kind == "sum":
        monotonic = _jget(data, "isMonotonic", "is_monotonic")
        if monotonic is not None and type(monotonic) is not bool:
            raise TypeError(f"isMonotonic: expected a bool, got {monotonic!r:.40}")
        if not monotonic:
            return ""
    number = _jget(data, "aggregationTemporality", "aggregation_temporality")
    return _temporality(_jenum(number, metrics_pb2.AggregationTemporality))


def _json_values(
    kind: str, temporality: str, dp: dict[str, Any]
) -> list[Sequence[tuple[str, float | None]] | _RawAggregate]:
    """What one data point gives: `_Metric.data_point` values and `_RawAggregate`\\ s."""
    if kind == "gauge" or kind == "sum":
        number = _jget(dp, "asDouble", "as_double")
        if number is not None:
            value: float | None = _jfloat(number)
        else:
            number = _jget(dp, "asInt", "as_int")
            value = None if number is None else float(_jint(number))
        if temporality:
            return [_RawAggregate("sum", temporality, value)]
        return [(("", value),)]
    count = _jint(dp.get("count"))
    total = dp.get("sum")
    if kind == "histogram":
        bounds = tuple(
            _jfloat(b) for b in _jlist(dp, "explicitBounds") or _jlist(dp, "explicit_bounds")
        )
        buckets = tuple(_jint(c) for c in _jlist(dp, "bucketCounts") or _jlist(dp, "bucket_counts"))
        return [
            _RawAggregate(
                "histogram",
                temporality,
                None if total is None else _jfloat(total),
                count,
                bounds,
                buckets,
            )
        ]
    quantiles = []
    for q in _jlist(dp, "quantileValues") or _jlist(dp, "quantile_values"):
        if not isinstance(q, dict):
            raise TypeError(f"quantileValues: expected an object, got {_kind(q)}")
        quantiles.append((_jfloat(q.get("quantile")), _jfloat(q.get("value"))))
    out: list[Sequence[tuple[str, float | None]] | _RawAggregate] = []
    if quantiles:
        out.append(_summary_values(quantiles))
    out.append(_RawAggregate("histogram", temporality, _jfloat(total), count))
    return out


def _json_exponential_fields(
    dp: dict[str, Any],
) -> tuple[float | None, int, int, int, tuple[int, list[int]], tuple[int, list[int]]]:
    """An ExponentialHistogram point's fields, as `_exponential_aggregate` takes them."""
    total = dp.get("sum")
    ranges = []
    for key in ("positive", "negative"):
        buckets = dp.get(key)
        if buckets is None:
            buckets = {}
        elif not isinstance(buckets, dict):
            raise TypeError(f"{key}: expected an object, got {_kind(buckets)}")
        counts = _jlist(buckets, "bucketCounts") or _jlist(buckets, "bucket_counts")
        ranges.append((_jint(buckets.get("offset")), [_jint(c) for c in counts]))
    return (
        None if total is None else _jfloat(total),
        _jint(dp.get("count")),
        _jint(dp.get("scale")),
        _jint(_jget(dp, "zeroCount", "zero_count")),
        ranges[0],
        ranges[1],
    )


def _json_logs(doc: dict[str, Any], out: _Out) -> None:
    for i, rl in enumerate(_jobjects(doc, "resourceLogs", "resource_logs", "")):
        where = f"resourceLogs[{i}]."
        service = _service(_json_resource(rl, where))
        for j, sl in enumerate(_jobjects(rl, "scopeLogs", "scope_logs", where)):
            where_sl = f"{where}scopeLogs[{j}]."
            for record in _jobjects(sl, "logRecords", "log_records", where_sl):
                try:
                    _json_log(out, service, record)
                except _ITEM_ERRORS as exc:
                    item = {"service": service, "log_record": _excerpt(record)}
                    out.reject(f"malformed log record: {exc}", item)


def _json_log(out: _Out, service: str, record: dict[str, Any]) -> None:
    body = record.get("body")
    raw = _RawLog(
        _jint(_jget(record, "timeUnixNano", "time_unix_nano")),
        _jint(_jget(record, "observedTimeUnixNano", "observed_time_unix_nano")),
        _jenum(_jget(record, "severityNumber", "severity_number"), logs_pb2.SeverityNumber),
        _jstr(_jget(record, "severityText", "severity_text")),
        "" if body is None else _text(_json_value(body)),
        _jopt_id(_jget(record, "traceId", "trace_id"), 16),
        _jopt_id(_jget(record, "spanId", "span_id"), 8),
        _json_attrs(record),
    )
    _emit_log(out, service, raw)


def _json_traces(doc: dict[str, Any], out: _Out) -> None:
    for i, rs in enumerate(_jobjects(doc, "resourceSpans", "resource_spans", "")):
        where = f"resourceSpans[{i}]."
        service = _service(_json_resource(rs, where))
        for j, ss in enumerate(_jobjects(rs, "scopeSpans", "scope_spans", where)):
            for span in _jobjects(ss, "spans", "spans", f"{where}scopeSpans[{j}]."):
                try:
                    _json_span(out, service, span)
                except _ITEM_ERRORS as exc:
                    item = {"service": service, "span": _excerpt(span)}
                    out.reject(f"malformed span: {exc}", item)


def _json_span(out: _Out, service: str, span: dict[str, Any]) -> None:
    status = span.get("status")
    if status is None:
        status = {}
    elif not isinstance(status, dict):
        raise TypeError(f"status: expected an object, got {_kind(status)}")
    raw = _RawSpan(
        _jid(_jget(span, "traceId", "trace_id"), 16),
        _jid(_jget(span, "spanId", "span_id"), 8),
        _jopt_id(_jget(span, "parentSpanId", "parent_span_id"), 8),
        _jstr(span.get("name")),
        _jint(_jget(span, "startTimeUnixNano", "start_time_unix_nano")),
        _jint(_jget(span, "endTimeUnixNano", "end_time_unix_nano")),
        _jenum(status.get("code"), trace_pb2.Status.StatusCode),
        _json_attrs(span),
        _jenum(span.get("kind", 0), trace_pb2.Span.SpanKind),
    )
    _emit_span(out, service, raw)


# --- encoders (for the simulator) ---------------------------------------------------------


def encode_metrics(points: Sequence[MetricPoint], encoding: OtlpEncoding) -> bytes:
    """Encode metric points as one request: a ResourceMetrics per service (resource attribute
    ``service.name``), a Gauge per signal, a double NumberDataPoint per point, labels as
    attributes.

    >>> from datetime import UTC, datetime
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
                severity_number=_SEVERITY_NUMBER[r.severity],
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
            span.status.code = _STATUS_CODE[s.status]  # type: ignore[assignment]
            span.kind = _SPAN_KIND_NUMBERS.get(s.attributes.get("span.kind", ""), 0)
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
        "severityNumber": _SEVERITY_NUMBER[r.severity],
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
        "status": {"code": _STATUS_CODE[s.status]},
        "attributes": _json_kvs(_span_attributes(s)),
    }
    kind = _SPAN_KIND_NUMBERS.get(s.attributes.get("span.kind", ""))
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
    if attributes.get("span.kind") in _SPAN_KIND_NUMBERS:
        attributes = {k: v for k, v in attributes.items() if k != "span.kind"}
    if s.peer_service and "peer.service" not in attributes:
        attributes = {**attributes, "peer.service": s.peer_service}
    return attributes
