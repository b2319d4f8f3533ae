"""Walking OTLP/JSON requests (parsed as plain dicts)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from airis.sources.otlp._mapping import _finite_or_text, _Out, _sanitise, _service, _text
from airis.sources.otlp._proto import _exponential_aggregate, _summary_values
from airis.sources.otlp._records import (
    _emit_log,
    _emit_span,
    _Metric,
    _RawAggregate,
    _RawLog,
    _RawSpan,
    _temporality,
)
from airis.sources.otlp._types import MAX_LABEL_VALUE, RESOURCE_LABELS, OtlpDecodeError

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
