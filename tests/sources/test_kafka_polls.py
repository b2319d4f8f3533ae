"""`KafkaPollSource` against the real broker: every message once, where it came from, in one
`Poll` of columns per poll, and a resume from a snapshot's offset (the state Bytewax's own
Kafka source keeps)."""

from __future__ import annotations

import time
from collections.abc import Callable

from bytewax.connectors.kafka import BYTEWAX_CONSUMER_LAG_GAUGE, KafkaError
from confluent_kafka import OFFSET_BEGINNING, Producer

from airis.sources.kafka_polls import KafkaPollSource, Poll, RawMessage


def _produce(bootstrap: str, topic: str, partitions: int, per_partition: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for p in range(partitions):
        for i in range(per_partition):
            key = None if i % 3 == 0 else f"k{i}".encode()
            producer.produce(topic, value=f"{p}:{i}".encode(), key=key, partition=p)
    assert producer.flush(30) == 0


def _drain(source: KafkaPollSource, part: str, resume: int | None = None) -> tuple[list, int]:
    partition = source.build_part("read", part, resume)
    items: list[RawMessage | KafkaError] = []
    try:
        while True:
            for poll in partition.next_batch():
                assert isinstance(poll, Poll) and len(poll) > 0
                items += poll.messages()
    except StopIteration:
        pass
    state = partition.snapshot()
    partition.close()
    return items, state


def test_every_message_once_with_its_partition_key_and_offset(
    kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic("polls", partitions=2)
    _produce(kafka_bootstrap, topic, partitions=2, per_partition=250)
    source = KafkaPollSource([kafka_bootstrap], [topic], tail=False, batch_size=64)
    assert sorted(source.list_parts()) == [f"0-{topic}", f"1-{topic}"]
    for p in (0, 1):
        items, state = _drain(source, f"{p}-{topic}")
        assert all(isinstance(m, RawMessage) for m in items)
        assert [m.value for m in items] == [f"{p}:{i}".encode() for i in range(250)]
        assert [m.offset for m in items] == list(range(250))
        assert {m.partition for m in items} == {p} and {m.topic for m in items} == {topic}
        assert [m.key for m in items[:3]] == [None, b"k1", b"k2"]
        assert state == 250  # the next offset to read


def test_a_resume_reads_from_the_snapshot_offset(
    kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic("polls", partitions=1)
    _produce(kafka_bootstrap, topic, partitions=1, per_partition=100)
    source = KafkaPollSource(
        [kafka_bootstrap], [topic], tail=False, starting_offset=OFFSET_BEGINNING
    )
    items, state = _drain(source, f"0-{topic}", resume=60)
    assert [m.offset for m in items] == list(range(60, 100))
    assert state == 100


def test_the_consumer_lag_gauge_follows_the_partition(
    kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic("polls", partitions=1)
    _produce(kafka_bootstrap, topic, partitions=1, per_partition=100)
    source = KafkaPollSource([kafka_bootstrap], [topic], tail=True, batch_size=1)
    partition = source.build_part("read_lag", f"0-{topic}", 60)
    gauge = BYTEWAX_CONSUMER_LAG_GAUGE.labels(step_id="read_lag", topic=topic, partition=0)
    try:
        deadline = time.monotonic() + 20
        while gauge._value.get() == 0 and time.monotonic() < deadline:
            partition.next_batch()  # one message at a time: librdkafka's stats come every second
            time.sleep(0.2)
        assert 0 < gauge._value.get() <= 40  # the broker's end (100) less where we are
    finally:
        partition.close()


def test_large_messages_make_smaller_polls_and_every_message_still_comes_once(
    kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    # 5,000 OTLP batches of 1,000 points would be 100 MB in one poll: a poll holds about
    # max_poll_bytes at the mean size of the partition's messages so far (issue 13).
    topic = kafka_topic("polls", partitions=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    values = [bytes([i % 251]) * 20_000 for i in range(300)]
    for value in values:
        producer.produce(topic, value=value, partition=0)
    assert producer.flush(30) == 0
    source = KafkaPollSource(
        [kafka_bootstrap], [topic], tail=False, batch_size=5_000, max_poll_bytes=200_000
    )
    partition = source.build_part("read", f"0-{topic}", None)
    polls: list[list] = []
    try:
        while True:
            polls += [poll.messages() for poll in partition.next_batch()]
    except StopIteration:
        pass
    partition.close()
    assert [m.value for poll in polls for m in poll] == values
    assert max(len(poll) for poll in polls[1:]) <= 10  # 200 kB of 20-kB messages
    assert all(m.timestamp and m.timestamp > 1.7e9 for poll in polls for m in poll)


def test_a_partition_starts_while_its_broker_is_down() -> None:
    """The metadata looked up before a logical offset is assigned is only a head start: a
    broker that does not answer leaves librdkafka to retry, as it would without it."""
    source = KafkaPollSource(
        ["127.0.0.1:1"], ["absent"], tail=False, starting_offset=OFFSET_BEGINNING
    )
    partition = source.build_part("read", "0-absent", None)
    try:
        assert partition.next_batch() == []  # nothing yet, and no error raised
        assert partition.snapshot() == OFFSET_BEGINNING
    finally:
        partition.close()
