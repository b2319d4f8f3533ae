"""The metrics dataflow on Kafka: topic in → decode → detect → alert → topics and ClickHouse out.

Run it with ``airis run --kafka`` (processes, recovery) or directly:
``python -m bytewax.run "airis.flows.kafka_metrics:build_flow()" -r DIR -s 5 -b 0``.

Reads ``AIRIS_KAFKA_METRICS_TOPIC`` (JSON events or OTLP batches, many points per message);
writes alerts (Alertmanager's shape, keyed by fingerprint), anomalies and resolved incidents
(with their ranked root-cause candidates; grouped by time alone, as the flow knows no call
graph yet) to their topics,
undecodable or invalid input to the dead-letter topic with the reason and the original bytes,
and everything to ClickHouse through one sink partition (one process owns the embedded store;
see `PartitionedClickHouseSink`). Kafka offsets live in Bytewax's recovery snapshots, so a
restart resumes where the last snapshot was taken instead of replaying the topic.
"""

from __future__ import annotations

import logging
from functools import partial

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.outputs import Sink

from airis.events import MetricPoint
from airis.flows.metrics_anomaly import detect_and_alert
from airis.settings import Settings
from airis.sinks.clickhouse_sink import PartitionedClickHouseSink
from airis.sinks.kafka_output import (
    KafkaTopicsSink,
    alert_message,
    anomaly_message,
    incident_message,
)
from airis.sources.kafka_input import decode_messages, kafka_source, to_dead_letter_message

logger = logging.getLogger(__name__)

#: Items bound for ClickHouse all carry this key: one sink partition (see module docstring).
STORE_KEY = "store"


def build_flow(
    settings: Settings | None = None,
    *,
    store_partitions: int = 1,
    store_sink: Sink | None = None,
    topics_sink: Sink | None = None,
) -> Dataflow:
    """The Kafka metrics dataflow; everything not given comes from ``AIRIS_*`` settings."""
    settings = settings or Settings()
    flow = Dataflow("airis_kafka_metrics")

    messages = op.input("read", flow, kafka_source(settings, settings.kafka_metrics_topic))
    decode = partial(decode_messages, signal="metrics", input_format=settings.kafka_input_format)
    decoded = op.flat_map_batch("decode", messages, decode)  # MetricPoint | KafkaDeadLetter
    split = op.branch("split_dead_letters", decoded, lambda e: isinstance(e, MetricPoint))
    points, dead = split.trues, split.falses

    detected = detect_and_alert(points, settings)

    alerts_out = op.map(
        "alert_messages",
        detected.alerts,
        lambda a: alert_message(a, settings.kafka_alerts_topic, settings.generator_url),
    )
    anomalies_out = op.map(
        "anomaly_messages",
        detected.anomalies,
        lambda a: anomaly_message(a, settings.kafka_anomalies_topic),
    )
    dead_out = op.map(
        "dead_letter_messages",
        dead,
        lambda d: to_dead_letter_message(d, settings.kafka_dead_letter_topic),
    )
    incidents_out = op.map(
        "incident_messages",
        detected.incidents,
        lambda i: incident_message(i, settings.kafka_incidents_topic),
    )
    published = op.merge("publish", alerts_out, anomalies_out, incidents_out, dead_out)
    op.output("kafka_out", published, topics_sink or KafkaTopicsSink(settings.kafka_bootstrap))

    letters = op.map("dead_letter_rows", dead, lambda d: d.letter)
    stored = op.merge(
        "collect",
        points,
        detected.anomalies,
        detected.alerts,
        letters,
        detected.late,
        detected.incidents,
        detected.candidates,
    )
    keyed = op.map("route_to_store", stored, _store_key(store_partitions))
    sink = store_sink or PartitionedClickHouseSink(settings, partitions=store_partitions)
    op.output("store", keyed, sink)
    return flow


def _store_key(partitions: int):
    if partitions == 1:
        return lambda event: (STORE_KEY, event)
    # Spread by service so one series stays in one partition (inserts stay ordered per key).
    return lambda event: (getattr(event, "service", STORE_KEY), event)
