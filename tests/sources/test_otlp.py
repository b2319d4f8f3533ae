"""Tests of OTLP decoding: protobuf and OTLP/JSON, as the collector's Kafka exporter writes them."""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from pydantic import ValidationError

import airis.sources.otlp as otlp
from airis.events import AggregatePoint, LogRecord, MetricPoint, Span
from airis.sources import fast_point
from airis.sources.otlp import (
    MAX_MESSAGE_BYTES,
    Decoded,
    OtlpDecodeError,
    Rejected,
    _mapping,
    _proto,
    decode_logs,
    decode_metrics,
    decode_traces,
    encode_logs,
    encode_metrics,
    encode_traces,
    sniff_encoding,
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


# --- round trips --------------------------------------------------------------------------

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


def canonical(events: list[Any]) -> list[str]:
    """Events in an order-free form: decoding groups them by service and signal."""
    return sorted(e.model_dump_json() for e in events)


@pytest.mark.parametrize("encoding", ENCODINGS)
@given(points=st.lists(metric_points, max_size=30))
@settings(deadline=None)
def test_metrics_round_trip(encoding: str, points: list[MetricPoint]) -> None:
    decoded = decode_metrics(encode_metrics(points, encoding), encoding)
    assert decoded.rejected == []
    assert canonical(decoded.events) == canonical(points)


@pytest.mark.parametrize("encoding", ENCODINGS)
@given(records=st.lists(log_records, max_size=20))
@settings(deadline=None)
def test_logs_round_trip(encoding: str, records: list[LogRecord]) -> None:
    decoded = decode_logs(encode_logs(records, encoding), encoding)
    assert decoded.rejected == []
    assert canonical(decoded.events) == canonical(records)


@pytest.mark.parametrize("encoding", ENCODINGS)
@given(original=st.lists(spans, max_size=20))
@settings(deadline=None)
def test_traces_round_trip(encoding: str, original: list[Span]) -> None:
    decoded = decode_traces(encode_traces(original, encoding), encoding)
    assert decoded.rejected == []
    # The encoder carries peer_service as the attribute peer.service, which is kept.
    expected = [
        s.model_copy(update={"attributes": {**s.attributes, "peer.service": s.peer_service}})
        if s.peer_service
        else s
        for s in original
    ]
    assert canonical(decoded.events) == canonical(expected)


def test_encoded_json_has_the_otlp_json_shape() -> None:
    span = Span(
        trace_id=TRACE, span_id=SPAN, service="api", name="GET /", start=T0, duration_ms=1.5
    )
    doc = orjson.loads(encode_traces([span], "otlp_json"))
    encoded = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert encoded["traceId"] == TRACE  # hex, not base64
    assert encoded["startTimeUnixNano"] == str(T0_NS)
    assert encoded["endTimeUnixNano"] == str(T0_NS + 1_500_000)
    point = MetricPoint(ts=T0, service="api", signal="cpu", value=2.0, labels={"a": "b"})
    doc = orjson.loads(encode_metrics([point], "otlp_json"))
    metric = doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]
    assert doc["resourceMetrics"][0]["resource"]["attributes"] == [
        {"key": "service.name", "value": {"stringValue": "api"}}
    ]
    assert metric == {
        "name": "cpu",
        "gauge": {
            "dataPoints": [
                {
                    "timeUnixNano": str(T0_NS),
                    "asDouble": 2.0,
                    "attributes": [{"key": "a", "value": {"stringValue": "b"}}],
                }
            ]
        },
    }
    # The protobuf encoding parses with the generated classes to the same request.
    raw = encode_metrics([point], "otlp_proto")
    request = ExportMetricsServiceRequest.FromString(raw)
    assert (
        request.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0].as_double == 2
    )


# --- the collector's OTLP/JSON ------------------------------------------------------------

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


def test_collector_otlp_json_metrics_decode_to_the_expected_points() -> None:
    decoded = check_rejections(decode_metrics(COLLECTOR_METRICS, "otlp_json"))
    resource = {"service.namespace": "shop", "host.name": "node-7"}
    assert decoded.rejected == []
    assert decoded.events == [
        MetricPoint(
            ts=T0,
            service="checkout",
            signal="system.cpu.utilization",
            value=0.25,
            labels={**resource, "cpu": "cpu0", "state": "user"},
        ),
        MetricPoint(
            ts=T0 + timedelta(seconds=10),
            service="checkout",
            signal="system.cpu.utilization",
            value=42.0,
            labels={**resource, "cpu": "cpu0", "busy": "true", "tries": "3"},
        ),
    ]
    # The same document through the generated classes and protobuf gives the same points.
    request = json_format.Parse(COLLECTOR_METRICS, ExportMetricsServiceRequest())
    assert decode_metrics(request.SerializeToString(), "otlp_proto") == decoded


def test_snake_case_keys_and_numbers_for_64_bit_integers_are_accepted() -> None:
    doc = {
        "resource_metrics": [
            {
                "scope_metrics": [
                    {
                        "metrics": [
                            {
                                "name": "q",
                                "sum": {
                                    "data_points": [{"time_unix_nano": T0_NS, "as_int": 7}],
                                    "aggregation_temporality": 2,
                                    "is_monotonic": True,
                                },
                            }
                        ]
                    }
                ]
            }
        ]
    }
    decoded = decode_metrics(orjson.dumps(doc), "otlp_json")
    assert [(p.service, p.signal, p.value, p.ts, p.temporality) for p in decoded.events] == [
        ("unknown_service", "q", 7.0, T0, "cumulative")
    ]


# --- metric mapping -----------------------------------------------------------------------


def test_gauges_and_up_down_counters_stay_points() -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    gauge = m.Metric(name="cpu")
    gauge.gauge.data_points.add(time_unix_nano=T0_NS, as_double=0.5)
    level = m.Metric(name="queue.size")  # an UpDownCounter: a level, not a counter
    level.sum.data_points.add(time_unix_nano=T0_NS, as_int=12)
    level.sum.aggregation_temporality = 2
    level.sum.is_monotonic = False
    decoded = decode_both(metrics_request(gauge, level), decode_metrics)
    assert decoded.rejected == []
    assert [(type(p), p.signal, p.value) for p in decoded.events] == [
        (MetricPoint, "cpu", 0.5),
        (MetricPoint, "queue.size", 12.0),
    ]


def test_monotonic_sums_become_aggregates_with_their_temporality() -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    total = m.Metric(name="requests", unit="1")
    total.sum.data_points.add(
        time_unix_nano=T0_NS, start_time_unix_nano=T0_NS - 10**10, as_int=1200
    )
    total.sum.is_monotonic = True
    total.sum.aggregation_temporality = 2
    delta = m.Metric(name="bytes")
    dp = delta.sum.data_points.add(time_unix_nano=T0_NS, as_double=64.0)
    dp.attributes.append(kv("dir", "in"))
    delta.sum.is_monotonic = True
    delta.sum.aggregation_temporality = 1
    decoded = decode_both(metrics_request(total, delta), decode_metrics)
    assert decoded.rejected == []
    assert decoded.events == [
        AggregatePoint(
            ts=T0,
            start=T0 - timedelta(seconds=10),
            service="api",
            signal="requests",
            kind="sum",
            temporality="cumulative",
            unit="1",
            value=1200.0,
        ),
        AggregatePoint(
            ts=T0,
            service="api",
            signal="bytes",
            kind="sum",
            temporality="delta",
            value=64.0,
            labels={"dir": "in"},
        ),
    ]
    # OTLP/JSON may name the temporality instead of numbering it.
    doc = as_json(metrics_request(delta)).decode().replace("1,", '"AGGREGATION_TEMPORALITY_DELTA",')
    assert '"AGGREGATION_TEMPORALITY_DELTA"' in doc
    [point] = decode_metrics(doc.encode(), "otlp_json").events
    assert point.temporality == "delta"


def test_histograms_become_aggregates_with_their_buckets() -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    hist = m.Metric(name="http.server.request.duration", unit="s")
    hist.histogram.aggregation_temporality = 2
    hist.histogram.data_points.add(
        time_unix_nano=T0_NS, count=10, sum=2.5, bucket_counts=[4, 6, 0], explicit_bounds=[0.1, 1]
    )
    no_sum = m.Metric(name="sizes")
    no_sum.histogram.aggregation_temporality = 1
    no_sum.histogram.data_points.add(time_unix_nano=T0_NS, count=3)
    decoded = decode_both(metrics_request(hist, no_sum), decode_metrics)
    assert decoded.rejected == []
    first, second = decoded.events
    assert (first.kind, first.temporality, first.unit) == ("histogram", "cumulative", "s")
    assert (first.value, first.count, first.bounds, first.buckets) == (
        2.5,
        10,
        (0.1, 1.0),
        (4, 6, 0),
    )
    assert (second.temporality, second.value, second.count, second.buckets) == (
        "delta",
        None,
        3,
        (),
    )


def test_exponential_histograms_become_explicit_buckets() -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    expo = m.Metric(name="expo")
    expo.exponential_histogram.aggregation_temporality = 2
    dp = expo.exponential_histogram.data_points.add(
        time_unix_nano=T0_NS, count=10, sum=9.5, scale=1, zero_count=1
    )
    dp.positive.offset = -1
    dp.positive.bucket_counts.extend([2, 3, 4])
    negative = expo.exponential_histogram.data_points.add(
        time_unix_nano=T0_NS, count=3, sum=-1.0, scale=0, zero_count=0
    )
    negative.negative.offset = 0
    negative.negative.bucket_counts.extend([1, 2])
    negative.attributes.append(kv("sign", "minus"))
    decoded = decode_both(metrics_request(expo), decode_metrics)
    assert decoded.rejected == []
    first, second = decoded.events
    base = 2**0.5  # scale 1: base 2 ** 2 ** -1; bucket i covers (base**(o+i), base**(o+i+1)]
    assert first.bounds == pytest.approx([base**-1, base**0, base**1, base**2])
    assert first.buckets == (1, 2, 3, 4, 0)  # zero bucket below, an empty bucket above
    assert (first.kind, first.count, first.value) == ("histogram", 10, 9.5)
    # Negative buckets: (-2, -1] holds bucket 0 and (-4, -2] bucket 1.
    assert second.bounds == (-4.0, -2.0, -1.0, 0.0)
    assert second.buckets == (0, 2, 1, 0, 0)


def test_summaries_keep_their_quantiles_and_give_count_and_sum_as_an_aggregate() -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    summary = m.Metric(name="rtt", unit="ms")
    summary.summary.data_points.add(
        time_unix_nano=T0_NS,
        count=4,
        sum=8.0,
        quantile_values=[
            m.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=1.5),
            m.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=3.0),
            m.SummaryDataPoint.ValueAtQuantile(quantile=1.0, value=4.0),
        ],
    )
    decoded = decode_both(metrics_request(summary), decode_metrics)
    assert decoded.rejected == []
    *quantiles, aggregate = decoded.events
    assert points_of(Decoded(quantiles, [])) == {"rtt.q0.5": 1.5, "rtt.q0.99": 3.0, "rtt.q1": 4.0}
    assert isinstance(aggregate, AggregatePoint)
    assert (aggregate.kind, aggregate.temporality, aggregate.count, aggregate.value) == (
        "histogram",
        "cumulative",
        4,
        8.0,
    )
    assert aggregate.buckets == ()
    # Points derived from one data point do not share one labels dict.
    labels = [p.labels for p in decoded.events]
    assert len({id(x) for x in labels}) == len(labels)


def test_inconsistent_aggregates_are_rejected_with_the_reason() -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    hist = m.Metric(name="h")
    points = hist.histogram.data_points
    points.add(time_unix_nano=T0_NS, count=3, bucket_counts=[1, 2], explicit_bounds=[1, 2])
    points.add(time_unix_nano=T0_NS, count=5, bucket_counts=[1, 2], explicit_bounds=[1])
    points.add(time_unix_nano=T0_NS, count=2, bucket_counts=[1, 0, 1], explicit_bounds=[2, 1])
    points.add(time_unix_nano=T0_NS, start_time_unix_nano=T0_NS + 1, count=0)
    points.add(time_unix_nano=T0_NS, count=1, bucket_counts=[1, 0], explicit_bounds=[1])  # good
    expo = m.Metric(name="e")
    bad = expo.exponential_histogram.data_points.add(time_unix_nano=T0_NS, count=4, scale=0)
    bad.positive.bucket_counts.extend([1, 1])
    huge = expo.exponential_histogram.data_points.add(time_unix_nano=T0_NS, count=1, scale=-10)
    huge.positive.offset = 5
    huge.positive.bucket_counts.append(1)
    counter = m.Metric(name="c")
    counter.sum.is_monotonic = True
    counter.sum.data_points.add(time_unix_nano=T0_NS)  # no value
    decoded = decode_both(metrics_request(hist, expo, counter), decode_metrics)
    assert [p.buckets for p in decoded.events] == [(1, 0)]
    assert [r.reason for r in decoded.rejected] == [
        "2 bucket counts for 2 bounds (expected bounds + 1)",
        "count 5 is not the sum of the bucket counts (3)",
        "bucket bounds are not strictly increasing",
        f"start_time_unix_nano {T0_NS + 1} is after time_unix_nano {T0_NS}",
        "count 4 is not the sum of the bucket counts (2)",
        "bucket bound 2**5120.0 out of range",
        "no value",
    ]
    assert decoded.rejected[0].item["buckets"] == [1, 2]
    assert decoded.rejected[0].item["signal"] == "h"


@pytest.mark.parametrize(
    ("value", "json_value"), [(math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity")]
)
def test_non_finite_values_are_rejected(value: float, json_value: str) -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    gauge = m.Metric(name="cpu")
    gauge.gauge.data_points.add(time_unix_nano=T0_NS, as_double=value)
    gauge.gauge.data_points.add(time_unix_nano=T0_NS, as_double=1.0)
    request = metrics_request(gauge)
    assert f'"asDouble": "{json_value}"' in as_json(request).decode()
    decoded = decode_both(request, decode_metrics)
    assert [p.value for p in decoded.events] == [1.0]
    [rejected] = decoded.rejected
    assert "value must be finite" in rejected.reason
    assert rejected.item["value"] == json_value
    assert rejected.item["signal"] == "cpu"
    assert rejected.item["time_unix_nano"] == str(T0_NS)


@pytest.mark.parametrize("year", [1970, 1999, 2100, 2200])
def test_timestamps_outside_2000_to_2100_are_rejected(year: int) -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    ns = int((datetime(year, 6, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
    gauge = m.Metric(name="cpu")
    gauge.gauge.data_points.add(time_unix_nano=ns * 10**9 + 1, as_double=1.0)
    decoded = decode_both(metrics_request(gauge), decode_metrics)
    assert decoded.events == []
    [rejected] = decoded.rejected
    assert rejected.reason.startswith(f"ts: Value error, timestamp {year}-06-01T00:00:00")
    assert rejected.reason.endswith("outside [2000, 2100)")


def test_missing_timestamps_flags_and_values() -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    gauge = m.Metric(name="cpu")
    points = gauge.gauge.data_points
    points.add(start_time_unix_nano=T0_NS, as_double=1.0)  # falls back to the start time
    points.add(as_double=2.0)  # no timestamp at all
    points.add(time_unix_nano=T0_NS, as_double=3.0, flags=1)  # NoRecordedValue
    points.add(time_unix_nano=T0_NS)  # no value
    decoded = decode_both(metrics_request(gauge), decode_metrics)
    assert [(p.ts, p.value) for p in decoded.events] == [(T0, 1.0)]
    assert [r.reason for r in decoded.rejected] == [
        "ts: no timestamp (time_unix_nano and start_time_unix_nano are 0)",
        "no recorded value",
        "no value",
    ]


def test_nanoseconds_are_truncated_to_microseconds() -> None:
    doc = COLLECTOR_METRICS.replace(b'"1767225600000000000"', b'"1767225600000001999"')
    decoded = decode_metrics(doc, "otlp_json")
    assert decoded.events[0].ts == T0 + timedelta(microseconds=1)


def test_service_names_labels_and_resource_attributes() -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    gauge = m.Metric(name="http server/duration ms" + "x" * 200)
    dp = gauge.gauge.data_points.add(time_unix_nano=T0_NS, as_double=1.0)
    dp.attributes.extend(
        [
            kv("http method", "GET"),
            kv("host.name", "own-host"),  # the point's own attribute wins over the resource's
            kv("ratio", 0.5),
            kv("big", "v" * 2000),
            KeyValue(key="raw", value=AnyValue(bytes_value=b"\x01\xff")),
            KeyValue(key="empty", value=AnyValue()),
        ]
    )
    nested = AnyValue()
    nested.array_value.values.add(string_value="a")
    nested.array_value.values.add(int_value=2)
    inner = nested.array_value.values.add().kvlist_value.values.add(key="k")
    inner.value.double_value = math.nan
    dp.attributes.add(key="list", value=nested)
    resource = {
        "service.name": "my service!",
        "host.name": "node-1",
        "service.instance.id": "i-1",
        "k8s.pod.name": "ignored",
    }
    decoded = decode_both(metrics_request(gauge, resource=resource), decode_metrics)
    [point] = decoded.events
    assert point.service == "my_service_"
    assert point.signal == ("http_server/duration_ms" + "x" * 200)[:128]
    assert point.labels == {
        "service.instance.id": "i-1",
        "host.name": "own-host",
        "http_method": "GET",
        "ratio": "0.5",
        "big": "v" * 1024,
        "raw": "01ff",
        "empty": "",
        "list": '["a",2,{"k":"NaN"}]',
    }


def test_more_than_64_labels_keeps_the_first_64_by_key() -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    gauge = m.Metric(name="cpu")
    dp = gauge.gauge.data_points.add(time_unix_nano=T0_NS, as_double=1.0)
    dp.attributes.extend(kv(f"k{i:03d}", str(i)) for i in reversed(range(100)))
    [point] = decode_both(metrics_request(gauge), decode_metrics).events
    assert list(point.labels) == [f"k{i:03d}" for i in range(64)]


def test_summary_suffix_survives_a_long_name() -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    summary = m.Metric(name="n" * 300)
    summary.summary.data_points.add(
        time_unix_nano=T0_NS, quantile_values=[m.SummaryDataPoint.ValueAtQuantile(quantile=0.9)]
    )
    decoded = decode_both(metrics_request(summary), decode_metrics)
    signals = [p.signal for p in decoded.events]
    # The quantile and the count-and-sum aggregate (whose rate and mean keep their suffixes
    # when derived: see airis.operators.signals.otlp_metrics).
    assert signals == ["n" * 123 + ".q0.9", "n" * 128]
    assert all(len(s) == 128 for s in signals)


def test_missing_or_empty_service_name_is_unknown_service() -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    gauge = m.Metric(name="cpu")
    gauge.gauge.data_points.add(time_unix_nano=T0_NS, as_double=1.0)
    for resource in ({}, {"service.name": ""}):
        [point] = decode_both(metrics_request(gauge, resource=resource), decode_metrics).events
        assert point.service == "unknown_service"


def test_an_empty_metric_name_is_rejected_not_raised() -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    gauge = m.Metric(name="")
    gauge.gauge.data_points.add(time_unix_nano=T0_NS, as_double=1.0)
    decoded = decode_both(metrics_request(gauge), decode_metrics)
    assert decoded.events == []
    assert decoded.rejected[0].reason.startswith("signal: String should have at least 1")


def test_malformed_json_data_points_are_rejected_one_by_one() -> None:
    doc = orjson.loads(COLLECTOR_METRICS)
    points = doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["gauge"]["dataPoints"]
    points.append({"timeUnixNano": "soon", "asDouble": 1.0})
    points.append({"timeUnixNano": str(T0_NS), "asDouble": [1]})
    points.append({"timeUnixNano": str(T0_NS), "asDouble": 1, "attributes": "x"})
    points.append({"timeUnixNano": "1" * 40, "asDouble": 1})
    decoded = check_rejections(decode_metrics(orjson.dumps(doc), "otlp_json"))
    assert len(decoded.events) == 2
    assert len(decoded.rejected) == 4
    assert all(r.reason.startswith("malformed data point: ") for r in decoded.rejected)
    assert decoded.rejected[0].item["data_point"] == '{"timeUnixNano":"soon","asDouble":1.0}'


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


# --- undecodable messages -----------------------------------------------------------------


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
