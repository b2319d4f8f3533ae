"""OTLP aggregates through the metrics dataflow: what an SDK behind a Collector sends."""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bytewax.testing import TestingSink, TestingSource, run_main
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from airis.batches import MetricBatch, unbatched
from airis.events import Alert, DeadLetter, MetricPoint
from airis.flows.metrics_anomaly import build_flow
from airis.settings import Settings
from airis.sources.otlp import decode_metrics

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The SDKs' default bounds for http.server.request.duration (seconds).
BOUNDS = [0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
TICKS = 360  # an hour, every 10 s
FAULT = (270, 300)  # minutes 45 to 50: latency × 4


def _ns(ts: datetime) -> int:
    return int((ts - EPOCH).total_seconds()) * 10**9


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def otlp_messages(factor: float = 4.0, seed: int = 5) -> list[bytes]:
    """One service's export requests: a cumulative request-duration histogram (three attribute
    sets), a cumulative counter and a CPU gauge, every 10 s."""
    rng = random.Random(seed)
    start = _ns(T0 - timedelta(hours=1))
    attribute_sets = {("GET", 200): 150, ("GET", 500): 3, ("POST", 200): 40}
    buckets = {a: [0] * (len(BOUNDS) + 1) for a in attribute_sets}
    sums = dict.fromkeys(attribute_sets, 0.0)
    orders = 0
    messages = []
    for tick in range(TICKS):
        ns = _ns(T0 + timedelta(seconds=10 * tick))
        slow = factor if FAULT[0] <= tick < FAULT[1] else 1.0
        for attrs, n in attribute_sets.items():
            for _ in range(n):
                x = rng.lognormvariate(-3.2, 0.3) * slow
                buckets[attrs][next((i for i, b in enumerate(BOUNDS) if x <= b), len(BOUNDS))] += 1
                sums[attrs] += x
        orders += rng.randint(8, 12)
        request = ExportMetricsServiceRequest()
        rm = request.resource_metrics.add()
        rm.resource.attributes.append(_kv("service.name", "shop"))
        metrics = rm.scope_metrics.add().metrics
        duration = metrics.add(name="http.server.request.duration", unit="s")
        duration.histogram.aggregation_temporality = 2  # cumulative, the SDKs' default
        for (method, status), counts in buckets.items():
            dp = duration.histogram.data_points.add(
                start_time_unix_nano=start,
                time_unix_nano=ns,
                count=sum(counts),
                sum=sums[(method, status)],
                bucket_counts=counts,
                explicit_bounds=BOUNDS,
            )
            dp.attributes.extend(
                [_kv("http.request.method", method), _kv("http.response.status_code", status)]
            )
        total = metrics.add(name="app.orders", unit="1")
        total.sum.aggregation_temporality = 2
        total.sum.is_monotonic = True
        total.sum.data_points.add(start_time_unix_nano=start, time_unix_nano=ns, as_int=orders)
        cpu = metrics.add(name="cpu", unit="1")
        cpu.gauge.data_points.add(time_unix_nano=ns, as_double=rng.gauss(30, 1))
        messages.append(request.SerializeToString())
    return messages


def _run(messages: list[bytes]) -> list:
    items: list = []
    for message in messages:
        for event in decode_metrics(message, "otlp_proto").events:
            # Gauge points as the JSON events the source gives; aggregates as decoded.
            items.append(event.model_dump(mode="json") if isinstance(event, MetricPoint) else event)
    out: list = []
    run_main(build_flow(TestingSource(items, batch_size=50), TestingSink(out), Settings()))
    return unbatched(out)


@pytest.fixture(scope="module")
def fault_run() -> list:
    return _run(otlp_messages())


def test_a_latency_fault_carried_only_by_a_cumulative_histogram_alerts(fault_run: list) -> None:
    firing = [a for a in fault_run if isinstance(a, Alert) and a.status == "firing"]
    assert firing, "the latency fault must raise an alert"
    assert {a.signal for a in firing} <= {"latency_p50", "latency_p95", "latency_p99"}
    fault_start = T0 + timedelta(seconds=10 * FAULT[0])
    fault_end = T0 + timedelta(seconds=10 * FAULT[1])
    assert all(fault_start <= a.starts_at < fault_end for a in firing)
    assert {a.service for a in firing} == {"shop"}


def test_counters_and_histograms_become_per_interval_points(fault_run: list) -> None:
    points = [p for p in fault_run if isinstance(p, MetricPoint)]
    by_signal: dict[str, list[float]] = {}
    for p in points:
        by_signal.setdefault(p.signal, []).append(p.value)
    assert set(by_signal) == {
        "cpu",
        "app.orders.rate",
        "request_rate",
        "error_rate",
        "latency_p50",
        "latency_p95",
        "latency_p99",
    }
    # Every interval of the hour, stored like any point (the first aggregates, whose start
    # is an hour old, only set the baseline); the counter as a rate, not a running total.
    assert {len(values) for s, values in by_signal.items() if s != "cpu"} == {TICKS - 1}
    assert max(by_signal["app.orders.rate"]) <= 1.2
    assert by_signal["request_rate"] == pytest.approx([19.3] * (TICKS - 1))
    assert by_signal["error_rate"] == pytest.approx([3 / 193] * (TICKS - 1))
    normal = sorted(by_signal["latency_p95"][: FAULT[0]])
    assert 50 < normal[len(normal) // 2] < 100  # milliseconds
    assert not [d for d in fault_run if isinstance(d, DeadLetter)]


def test_without_a_fault_nothing_alerts_though_the_counter_keeps_growing() -> None:
    out = _run(otlp_messages(factor=1.0))
    assert [a for a in out if isinstance(a, Alert)] == []


def test_unkeyed_export_requests_read_from_four_partitions_give_the_same_points_and_alerts(
    fault_run: list, kafka_bootstrap: str, kafka_topic
) -> None:
    # Against a real broker. The Collector's Kafka exporter does not key its messages by
    # default, so one service's cumulative histograms and counters land on every partition,
    # and a flow catching up reads them minutes out of order (here 20 messages of a partition
    # per poll). Rates and percentiles need each series in order (an aggregate older than the
    # last one is refused), so the flow first aligns the partitions (issue 13).
    from airis.app.kafka_producer import produce

    topic = kafka_topic("otlp", 4)
    produce(((1, [(topic, None, m)]) for m in otlp_messages()), kafka_bootstrap)
    _assert_same_as_in_process(_run_kafka(kafka_bootstrap, kafka_topic, topic), fault_run)


@pytest.mark.slow
def test_through_a_real_collector_nothing_is_late_and_the_histogram_latency_fault_alerts(
    fault_run: list, kafka_bootstrap: str, kafka_topic, tmp_path: Path
) -> None:
    # Issue 13: a real OpenTelemetry Collector (deploy/otelcol, built from the Go module
    # proxy) with its default Kafka exporter settings, the export requests posted to its OTLP
    # receiver as an SDK would. Its exporter sends from a queue with several consumers and a
    # sticky partitioner, so the service's requests arrive unkeyed, spread over the four
    # partitions and out of order: none may be counted late, and the latency fault carried
    # only by the cumulative histogram must alert, exactly as without the Collector.
    topic = kafka_topic("otlp", 4)
    with _collector(tmp_path, kafka_bootstrap, topic) as endpoint:
        for message in otlp_messages():
            _post(endpoint, message)
    assert sum(n > 0 for n in _messages_per_partition(kafka_bootstrap, topic)) >= 2
    out = _run_kafka(kafka_bootstrap, kafka_topic, topic)
    stored = [e for _key, batch in out for e in batch]
    assert sum(len(b) for b in stored if isinstance(b, MetricBatch)) > 0
    _assert_same_as_in_process(out, fault_run)
    assert {a.signal for a in stored if isinstance(a, Alert)} & {"latency_p95", "latency_p99"}


def _run_kafka(bootstrap: str, kafka_topic, topic: str) -> list:
    """The Kafka metrics flow over ``topic`` from its start: what it stored."""
    from airis.flows import kafka_metrics

    settings = Settings(
        kafka_bootstrap=bootstrap,
        kafka_metrics_topic=topic,
        kafka_logs_topic=kafka_topic("logs"),
        kafka_traces_topic=kafka_topic("traces"),
        kafka_alerts_topic=kafka_topic("alerts"),
        kafka_anomalies_topic=kafka_topic("anomalies"),
        kafka_incidents_topic=kafka_topic("incidents"),
        kafka_dead_letter_topic=kafka_topic("dlq"),
        kafka_tail=False,
        kafka_batch_size=20,
    )
    stored: list = []
    flow = kafka_metrics.build_flow(
        settings, store_sink=TestingSink(stored), memory_sink=TestingSink([])
    )
    run_main(flow)
    return stored


def _assert_same_as_in_process(stored: list, fault_run: list) -> None:
    """No dead letter (nothing late), and the points and alerts of the in-process run."""
    events = [e for _key, batch in stored for e in batch]
    points = [p for e in events if isinstance(e, MetricBatch) for p in e.points()]

    def series(out) -> list:
        return sorted((p.signal, p.ts, round(p.value, 9)) for p in out)

    assert [e for e in events if isinstance(e, DeadLetter)] == []
    assert series(points) == series(p for p in fault_run if isinstance(p, MetricPoint))
    alerts = {a.id for a in events if isinstance(a, Alert)}
    assert alerts == {a.id for a in fault_run if isinstance(a, Alert)} != set()


def _messages_per_partition(bootstrap: str, topic: str) -> list[int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "airis-test-count"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        counts = []
        for p in sorted(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            counts.append(high - low)
        print("messages per partition", counts)
        return counts
    finally:
        consumer.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _collector(tmp_path: Path, bootstrap: str, topic: str) -> Iterator[str]:
    """A Collector from OTLP/HTTP to ``topic``, default exporter settings; yields its
    endpoint. Leaving the block stops it the graceful way, which drains its sending queue."""
    build = subprocess.run(
        ["bash", str(REPO / "deploy/otelcol/build.sh")], capture_output=True, text=True
    )
    if build.returncode != 0:
        pytest.fail(f"deploy/otelcol/build.sh failed:\n{build.stderr}")
    port = _free_port()
    config = tmp_path / "otelcol.yaml"
    config.write_text(
        COLLECTOR_CONFIG.format(port=port, bootstrap=bootstrap, topic=topic), encoding="utf-8"
    )
    log = (tmp_path / "otelcol.log").open("wb")
    process = subprocess.Popen(
        [build.stdout.strip(), "--config", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        endpoint = f"http://127.0.0.1:{port}/v1/metrics"
        deadline = time.monotonic() + 60
        while not _accepts(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"the Collector did not start: {(tmp_path / 'otelcol.log').read_text()}"
                )
            time.sleep(0.2)
        yield endpoint
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        finally:
            process.kill()
            log.close()
    assert process.returncode == 0, (tmp_path / "otelcol.log").read_text()


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def _post(endpoint: str, message: bytes) -> None:
    request = urllib.request.Request(
        endpoint, data=message, headers={"Content-Type": "application/x-protobuf"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


#: OTLP/HTTP in, Kafka out; everything else as the Collector ships it. Its own metrics are
#: off so that their port cannot clash with another test's.
COLLECTOR_CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
exporters:
  kafka:
    brokers: ["{bootstrap}"]
    metrics:
      topic: {topic}
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [kafka]
"""
