"""What the Kafka flow publishes: alerts, anomalies, resolved incidents and dead letters, each
onto its topic, through one sink (`KafkaTopicsSink` by default: it waits for the broker's
acknowledgement of each batch only in a flow that keeps snapshots)."""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.outputs import Sink

from airis.events import Alert, Anomaly, Incident
from airis.flows.snapshots import keeps_snapshots
from airis.settings import AlertingConfig, KafkaConfig
from airis.sinks.kafka_output import (
    KafkaTopicsSink,
    alert_message,
    anomaly_message,
    incident_message,
)
from airis.sources.kafka_input import KafkaDeadLetter, to_dead_letter_message


@operator
def publish(
    step_id: str,
    alerts: Stream[Alert],
    anomalies: Stream[Anomaly],
    incidents: Stream[Incident],
    dead: Stream[KafkaDeadLetter],
    kafka: KafkaConfig,
    alerting: AlertingConfig,
    sink: Sink | None = None,
) -> None:
    """Alerts (Alertmanager's shape, keyed by fingerprint), anomalies, resolved incidents
    and dead letters (original key and bytes, why and where in headers) to their topics."""
    alert_messages = op.map(
        "alert_messages",
        alerts,
        lambda a: alert_message(a, kafka.alerts_topic, alerting.generator_url),
    )
    anomaly_messages = op.map(
        "anomaly_messages",
        anomalies,
        lambda a: anomaly_message(a, kafka.anomalies_topic),
    )
    incident_messages = op.map(
        "incident_messages",
        incidents,
        lambda i: incident_message(i, kafka.incidents_topic),
    )
    letter_messages = op.map(
        "dead_letter_messages",
        dead,
        lambda d: to_dead_letter_message(d, kafka.dead_letter_topic),
    )
    messages = op.merge(
        "publish", alert_messages, anomaly_messages, incident_messages, letter_messages
    )
    sink = sink or KafkaTopicsSink(kafka.bootstrap, acknowledged=keeps_snapshots())
    op.output("kafka_out", messages, sink)
