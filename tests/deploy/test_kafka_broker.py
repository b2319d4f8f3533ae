"""The local Kafka broker (deploy/kafka/kafka.sh) against confluent_kafka clients.

Bulk produce/consume over several partitions, a 5 MiB record, and a consumer group that
commits and resumes, with both group protocols (classic, and KIP-848 "consumer").
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

pytestmark = pytest.mark.kafka

MiB = 1024 * 1024


def produce_all(producer: Producer, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    """Produce every (key, value) and fail on any delivery error."""
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: serve delivery reports and retry
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0, "messages still in flight after 60 s"
    assert not errors, errors[:5]


def consume_n(consumer: Consumer, n: int, timeout: float = 60) -> list[Message]:
    """Exactly n messages (fewer only when the deadline passes), failing on consumer errors."""
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=min(1000, n - len(out)), timeout=0.5):
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"consumer error: {msg.error()}")
            out.append(msg)
    return out


def test_ten_thousand_messages_round_trip(
    kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic("bulk", partitions=3)
    n = 10_000
    records = [(f"k{i}".encode(), f"message {i}".encode()) for i in range(n)]
    # Idempotence keeps the per-partition order even when a request is retried (without it a
    # retry right after topic creation, e.g. on NOT_LEADER_OR_FOLLOWER, may reorder records).
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "linger.ms": 5, "enable.idempotence": True}
    )
    produce_all(producer, topic, records)

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"{topic}-reader",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(3)])
        got = consume_n(consumer, n)
        extra = consumer.consume(num_messages=10, timeout=0.5)
    finally:
        consumer.close()

    assert len(got) == n
    assert not extra
    assert sorted((m.key(), m.value()) for m in got) == sorted(records)
    by_partition: dict[int, list[tuple[int, int]]] = {}
    for m in got:
        by_partition.setdefault(m.partition(), []).append((m.offset(), int(m.key()[1:])))
    assert sorted(by_partition) == [0, 1, 2]  # the key hash spreads records over all three
    for p, seq in by_partition.items():
        bad = [j for j in range(1, len(seq)) if seq[j] <= seq[j - 1]]
        assert not bad, (p, len(bad), [seq[j - 2 : j + 2] for j in bad[:3]])


def test_five_mib_message_round_trip(kafka_bootstrap: str, kafka_topic: Callable[..., str]) -> None:
    topic = kafka_topic("large")
    value = os.urandom(5 * MiB)
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "message.max.bytes": 16 * MiB,
            "compression.type": "none",
        }
    )
    produce_all(producer, topic, [(b"big", value)])

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"{topic}-reader",
            "enable.auto.commit": False,
            "max.partition.fetch.bytes": 16 * MiB,
            "fetch.max.bytes": 32 * MiB,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = consume_n(consumer, 1)
    finally:
        consumer.close()

    assert len(got) == 1
    assert got[0].key() == b"big"
    assert len(got[0].value()) == 5 * MiB
    assert hashlib.sha256(got[0].value()).digest() == hashlib.sha256(value).digest()


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_consumer_group_commits_and_resumes(
    kafka_bootstrap: str, kafka_topic: Callable[..., str], protocol: str
) -> None:
    topic = kafka_topic("group", partitions=2)
    group = f"{topic}-group"
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    produce_all(producer, topic, [(f"k{i}".encode(), f"first {i}".encode()) for i in range(100)])

    def member() -> Consumer:
        c = Consumer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "group.id": group,
                "group.protocol": protocol,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        c.subscribe([topic])
        return c

    first = member()
    try:
        got = consume_n(first, 100)
        assert len(got) == 100
        assert {m.value() for m in got} == {f"first {i}".encode() for i in range(100)}
        first.commit(asynchronous=False)
        committed = first.committed([TopicPartition(topic, p) for p in range(2)], timeout=10)
        assert sum(tp.offset for tp in committed) == 100
    finally:
        first.close()

    produce_all(producer, topic, [(f"k{i}".encode(), f"second {i}".encode()) for i in range(20)])
    second = member()
    try:
        got = consume_n(second, 20)
        extra = second.consume(num_messages=10, timeout=1)
    finally:
        second.close()
    # Resumes from the committed offsets: only the records produced after the commit.
    assert sorted(m.value() for m in got) == sorted(f"second {i}".encode() for i in range(20))
    assert not extra
