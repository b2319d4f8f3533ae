"""Kafka topic administration: make sure the topics a run reads and writes exist."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from airis.settings import KafkaConfig

logger = logging.getLogger(__name__)

__all__ = ["ensure_topics", "flow_topics"]


def flow_topics(kafka: KafkaConfig) -> list[str]:
    """Every topic the metrics flow reads or writes."""
    return [
        *kafka.input_topics.values(),
        kafka.alerts_topic,
        kafka.anomalies_topic,
        kafka.incidents_topic,
        kafka.dead_letter_topic,
    ]


def ensure_topics(
    bootstrap: str, topics: list[str], partitions: int = 1, timeout: float = 30.0
) -> list[str]:
    """Create the missing ``topics`` with ``partitions`` partitions; return those created.

    Existing topics keep their partition count. Raises RuntimeError, naming the broker,
    when it cannot be reached within ``timeout``.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise RuntimeError(f"Kafka broker {bootstrap} unreachable: {exc}") from exc
    missing = [t for t in dict.fromkeys(topics) if t not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing],
        operation_timeout=timeout,
    )
    created = []
    for topic, future in futures.items():
        try:
            future.result(timeout)
            created.append(topic)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise RuntimeError(f"cannot create Kafka topic {topic}: {exc}") from exc
    logger.info("created topics %s with %d partitions", created, partitions)
    return created
