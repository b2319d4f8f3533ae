"""Bytewax's Kafka source with light messages: what a poll of ``consume(n)`` gave, and no more.

Bytewax's own partition builds a frozen `KafkaSourceMessage` of eight fields per message
(headers, latency and timestamp included, each a call into librdkafka): about a tenth of a
whole metrics flow's time. `KafkaPollSource` keeps its topic partitions, its offsets in the
recovery snapshots (the same state, so a flow resumes from snapshots taken with Bytewax's
source) and its ``bytewax_kafka_consumer_lag`` gauge, and yields one `Poll` item per poll:
the messages' keys, values, offsets and produced times as columns, which is all the decoders
and the partition alignment read, with no object per message (a message becomes a
`RawMessage` only where a decoder needs one: a dead letter, a format other than our JSON).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from bytewax.connectors.kafka import BYTEWAX_CONSUMER_LAG_GAUGE, KafkaError, KafkaSource
from bytewax.inputs import StatefulSourcePartition
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaException, TopicPartition
from confluent_kafka import KafkaError as ConfluentKafkaError

__all__ = ["DEFAULT_MAX_POLL_BYTES", "KafkaPollSource", "Poll", "RawMessage"]

#: Bytes of message values one poll of a partition may hold (about).
DEFAULT_MAX_POLL_BYTES = 8 * 1024 * 1024
#: Messages in a partition's first poll, before their size is known.
_FIRST_POLL = 100
#: ``fetch.wait.max.ms`` of a source that stops at the end of its partitions.
_EOF_FETCH_WAIT_MS = 10
#: Seconds to wait for the topic's metadata before a partition is assigned.
_METADATA_TIMEOUT_S = 2.0


@dataclass(slots=True)
class RawMessage:
    """One Kafka message as the decoders see it (the attributes of `KafkaSourceMessage` they
    use). Not frozen: its ``__init__`` runs once per message."""

    key: bytes | None
    value: bytes | None
    topic: str | None = None
    offset: int | None = None
    partition: int | None = None
    #: When the message was produced (its producer's create time, or the broker's append time
    #: if the topic says so), in seconds since the epoch; None when the message has none.
    timestamp: float | None = None


@dataclass(slots=True)
class Poll:
    """What one poll of one topic partition gave, as columns (position ``i`` is one message).

    ``errors``: the positions whose message failed, with librdkafka's error (its key and
    value are None unless the message carried them).
    """

    topic: str
    partition: int
    keys: list[bytes | None]
    values: list[bytes | None]
    offsets: list[int]
    produced: list[float | None]
    errors: dict[int, Any]

    def __len__(self) -> int:
        return len(self.values)

    def message(self, i: int) -> RawMessage | KafkaError:
        """Message ``i`` as an object (a `KafkaError` wrapping it where it failed)."""
        raw = RawMessage(
            self.keys[i], self.values[i], self.topic, self.offsets[i], self.partition,
            self.produced[i],
        )  # fmt: skip
        error = self.errors.get(i)
        return raw if error is None else KafkaError(error, raw)

    def messages(self) -> list[RawMessage | KafkaError]:
        """Every message as an object."""
        return [self.message(i) for i in range(len(self))]


class KafkaPollSource(KafkaSource):
    """`KafkaSource` (same arguments, partitions and snapshots) whose items are a `Poll` per
    poll of a partition; errors are always in them (``raise_on_errors`` is ignored).

    ``max_poll_bytes`` bounds a poll by the bytes of its values as well as by ``batch_size``
    messages: 5,000 single-point JSON events are 0.5 MB, 5,000 OTLP batches of 1,000 points
    100 MB, five million points decoded at once. A partition polls as many messages as
    ``max_poll_bytes`` holds at the mean size of its messages so far (at least one).
    """

    def __init__(self, *args: Any, max_poll_bytes: int = DEFAULT_MAX_POLL_BYTES, **kw: Any):
        super().__init__(*args, **kw)
        if max_poll_bytes < 1:
            raise ValueError(f"max_poll_bytes must be >= 1, got {max_poll_bytes}")
        self.max_poll_bytes = max_poll_bytes

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _PollPartition:
        idx, topic = for_part.split("-", 1)
        if topic not in self._topics:
            raise ValueError(f"can't resume partition {for_part!r}: not one of {self._topics}")
        config = {
            "group.id": "BYTEWAX_IGNORED",  # offsets live in the recovery snapshots
            "enable.auto.commit": "false",
            "bootstrap.servers": ",".join(self._brokers),
            "enable.partition.eof": str(not self._tail),
            "statistics.interval.ms": 1000,  # feeds bytewax_kafka_consumer_lag
            # The broker holds a fetch at the end of a partition this long (default 500 ms)
            # before it answers: a run that stops at the end need not wait for that.
            **({} if self._tail else {"fetch.wait.max.ms": _EOF_FETCH_WAIT_MS}),
            **self._add_config,
        }
        start = self._starting_offset if resume_state is None else resume_state
        return _PollPartition(
            step_id, config, topic, int(idx), start, self._batch_size, self.max_poll_bytes
        )


class _PollPartition(StatefulSourcePartition[Poll, int | None]):
    def __init__(
        self,
        step_id: str,
        config: dict,
        topic: str,
        index: int,
        offset: int,
        batch_size: int,
        max_poll_bytes: int = DEFAULT_MAX_POLL_BYTES,
    ) -> None:
        self._offset = offset
        self._topic = topic
        self._index = index
        self._batch_size = batch_size
        self._max_poll_bytes = max_poll_bytes
        self._mean_size: float | None = None  # of the values polled so far
        self._eof = False
        self._lag = BYTEWAX_CONSUMER_LAG_GAUGE.labels(step_id=step_id, topic=topic, partition=index)
        self._consumer = Consumer({**config, "stats_cb": self._stats})
        if offset < 0:
            # A logical offset (beginning, end) is looked up at the partition's leader; one
            # assigned before the consumer knows the leader waits for librdkafka's retry
            # timer (500 ms, measured) before the first fetch. Metadata first: no wait. A
            # broker that does not answer in time changes nothing: librdkafka keeps trying.
            with contextlib.suppress(KafkaException):
                self._consumer.list_topics(topic, timeout=_METADATA_TIMEOUT_S)
        self._consumer.assign([TopicPartition(topic, index, offset)])

    def _stats(self, stats: str) -> None:
        # Statistics sent before the consumer knows the partition (its broker down, the topic
        # absent) do not list it; an exception here would surface from the next poll.
        topic = json.loads(stats)["topics"].get(self._topic, {})
        partition = topic.get("partitions", {}).get(str(self._index))
        if partition is not None and self._offset > 0:  # not a logical offset
            self._lag.set(partition["ls_offset"] - self._offset)

    def next_batch(self) -> list[Poll]:
        if self._eof:
            raise StopIteration()
        poll = Poll(self._topic, self._index, [], [], [], [], {})
        keys, values, offsets, produced = poll.keys, poll.values, poll.offsets, poll.produced
        size = 0
        for msg in self._consumer.consume(self._poll_count(), 0.001):
            error = msg.error()
            if error is not None:
                if error.code() == ConfluentKafkaError._PARTITION_EOF:
                    self._eof = True  # stop at the next call, after this batch's messages
                    break
                poll.errors[len(values)] = error
            value = msg.value()
            size += len(value) if error is None and value is not None else 0
            kind, millis = msg.timestamp()
            keys.append(msg.key())
            values.append(value)
            offset = msg.offset()
            offsets.append(offset)
            produced.append(None if kind == TIMESTAMP_NOT_AVAILABLE else millis / 1000)
            if offset is not None and offset >= 0:  # an error may carry no real offset
                self._offset = offset + 1  # resume after it
        if not values:
            return []
        mean = size / len(values)
        self._mean_size = mean if self._mean_size is None else (self._mean_size + mean) / 2
        return [poll]

    def _poll_count(self) -> int:
        """Messages to ask for: ``batch_size``, or fewer if they would hold more bytes."""
        if self._mean_size is None:  # nothing seen yet: a small first poll learns the size
            return min(self._batch_size, _FIRST_POLL)
        fits = int(self._max_poll_bytes // max(self._mean_size, 1.0))
        return max(1, min(self._batch_size, fits))

    def snapshot(self) -> int | None:
        return self._offset

    def close(self) -> None:
        self._consumer.close()
