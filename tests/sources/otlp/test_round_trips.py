"""OTLP round trips through our encoder, and the Collector's own OTLP/JSON."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from otlp_helpers import (
    COLLECTOR_METRICS,
    ENCODINGS,
    SPAN,
    T0,
    T0_NS,
    TRACE,
    check_rejections,
    log_records,
    metric_points,
    spans,
)

from airis.events import LogRecord, MetricPoint, Span
from airis.sources.otlp import (
    decode_logs,
    decode_metrics,
    decode_traces,
    encode_logs,
    encode_metrics,
    encode_traces,
)

# --- round trips --------------------------------------------------------------------------


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
