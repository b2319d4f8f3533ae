"""How OTLP metrics map onto points and aggregates, and what is rejected."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from otlp_helpers import (
    COLLECTOR_METRICS,
    T0,
    T0_NS,
    as_json,
    check_rejections,
    decode_both,
    kv,
    metrics_request,
    points_of,
)

from airis.events import AggregatePoint, MetricPoint
from airis.sources.otlp import (
    Decoded,
    decode_metrics,
)

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
