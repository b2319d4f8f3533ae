"""What the Kafka flow publishes: alerts, anomalies, resolved incidents and dead letters, each
onto its topic, through one sink (`KafkaTopicsSink` by default)."""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Stream
from bytewax.outputs import Sink

from airis.flows.detection import Detected
from airis.settings import Settings
from airis.sinks.kafka_output import alert_message, anomaly_message, incident_message
from airis.sources.kafka_input import KafkaDeadLetter, to_dead_letter_message


def publish(
    detected: Detected, dead: Stream[KafkaDeadLetter], settings: Settings, sink: Sink
) -> None:
    """Alerts (Alertmanager's shape, keyed by fingerprint), anomalies, resolved incidents
    and dead letters (original key and bytes, why and where in headers) to their topics."""
    alerts = op.map(
        "alert_messages",
        detected.alerts,
        lambda a: alert_message(a, settings.kafka_alerts_topic, settings.generator_url),
    )
    anomalies = op.map(
        "anomaly_messages",
        detected.anomalies,
        lambda a: anomaly_message(a, settings.kafka_anomalies_topic),
    )
    incidents = op.map(
        "incident_messages",
        detected.incidents,
        lambda i: incident_message(i, settings.kafka_incidents_topic),
    )
    letters = op.map(
        "dead_letter_messages",
        dead,
        lambda d: to_dead_letter_message(d, settings.kafka_dead_letter_topic),
    )
    op.output("kafka_out", op.merge("publish", alerts, anomalies, incidents, letters), sink)
