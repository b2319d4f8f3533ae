"""Dead letters that are too large for their topic are cut to fit, against the real broker.

Issue 13: one message with a 5 MiB key stopped the flow for good (its dead-letter copy was
larger than the producer takes, the batch failed, and every restart replayed and failed it).
"""

from __future__ import annotations

import os
import time

import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from confluent_kafka import Consumer

from airis.sinks.kafka_output import KafkaTopicsSink
from airis.sources.kafka_input import (
    DEAD_LETTER_KEY_LIMIT,
    decode_messages,
    to_dead_letter_message,
)

pytestmark = pytest.mark.kafka

# Values are random bytes: the producer compresses (lz4), and a repeated byte would fit anyway.

MiB = 1024 * 1024


def _read_all(bootstrap: str, topic: str, n: int) -> list:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    out, deadline = [], time.monotonic() + 30
    while len(out) < n and time.monotonic() < deadline:
        out += [m for m in consumer.consume(10, 0.5) if m.error() is None]
    consumer.close()
    return out


def _dead_letter(key: bytes, value: bytes, topic: str):
    (dead,) = decode_messages(
        [KafkaSourceMessage(key, value, "in", offset=3, partition=0)], "metrics"
    )
    return to_dead_letter_message(dead, topic)


@pytest.mark.parametrize("acknowledged", [True, False], ids=["each_batch", "queued"])
def test_a_5_mib_key_and_a_topic_smaller_than_the_copy_are_published_cut(
    acknowledged: bool, kafka_bootstrap: str, kafka_topic
) -> None:
    small = kafka_topic("dlq-small", config={"max.message.bytes": str(64 * 1024)})
    partition = KafkaTopicsSink(kafka_bootstrap, acknowledged=acknowledged).build("out", 0, 1)
    huge_key = _dead_letter(b"k" * (5 * MiB), b"not json", small)
    big_value = _dead_letter(b"key", b"{" + os.urandom(300 * 1024), small)
    try:
        partition.write_batch([huge_key, big_value])  # neither raises any more
    finally:
        partition.close()
    got = sorted(_read_all(kafka_bootstrap, small, 2), key=lambda m: len(m.value()))
    assert len(got) == 2
    short, cut = (dict(m.headers()) for m in got)
    assert len(got[0].key()) == DEAD_LETTER_KEY_LIMIT
    assert short["airis.key.truncated.from"] == str(5 * MiB).encode()
    assert got[0].value() == b"not json"
    assert len(got[1].value()) < 64 * 1024
    assert cut["airis.truncated.from"] == str(300 * 1024 + 1).encode()
    assert cut["airis.reason"] and cut["airis.source.offset"] == b"3"


def test_an_oversized_message_that_is_not_a_dead_letter_still_fails_the_batch(
    kafka_bootstrap: str, kafka_topic
) -> None:
    from bytewax.connectors.kafka import KafkaSinkMessage

    small = kafka_topic("alerts-small", config={"max.message.bytes": str(64 * 1024)})
    partition = KafkaTopicsSink(kafka_bootstrap).build("out", 0, 1)
    try:
        with pytest.raises(RuntimeError, match="did not acknowledge 1 of 1"):
            partition.write_batch([KafkaSinkMessage(b"k", os.urandom(200 * 1024), small)])
    finally:
        partition.close()
