"""Kafka topics in: Bytewax's Kafka source, and bulk decoding of its messages into events.

Every message is decoded on its own terms (``AIRIS_KAFKA_INPUT_FORMAT=auto`` sniffs each one)
by its format's decoder (`airis.sources.formats`): our JSON events (one event per message),
or OTLP as the OpenTelemetry Collector's Kafka exporter writes it (``otlp_proto``, its
default, or ``otlp_json``; many points per message). Our JSON metric events, the common
case, are decoded inline, without a call per message.
Whatever cannot be used becomes a `KafkaDeadLetter`: the whole message when it cannot be
decoded (original bytes kept), or the offending item of a batch whose other items were fine.
Nothing is dropped silently, and everything is counted.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from bytewax.connectors.kafka import KafkaError, KafkaSinkMessage, KafkaSourceMessage
from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_NOT_AVAILABLE

from airis import telemetry
from airis.batches import MetricBatch, PointRow
from airis.events import MAX_TEXT, DeadLetter, Span
from airis.settings import KafkaConfig
from airis.sources import otlp
from airis.sources.fast_point import (
    PointColumns,
    batches_from_json,
    fields_from_json,
    point_from_json,
)
from airis.sources.formats import (
    MAX_JSON_EVENT_BYTES,
    FormatError,
    Signal,
    decoder_for,
    sniff_format,
)
from airis.sources.kafka_polls import KafkaPollSource, Poll, RawMessage

__all__ = [
    "DEAD_LETTER_KEY_LIMIT",
    "DEAD_LETTER_VALUE_LIMIT",
    "DEFAULT_MAX_AHEAD_SECONDS",
    "KafkaDeadLetter",
    "PartitionEvents",
    "decode_messages",
    "decode_partitions",
    "event_time",
    "kafka_source",
    "produced_at",
    "to_dead_letter_message",
]

#: What a decoder reads: our source's `RawMessage`, or Bytewax's own message type.
Message = RawMessage | KafkaSourceMessage

#: How far past its arrival (wall clock) an event's timestamp may lie. Further ahead is a
#: broken clock or a typo (2099), not telemetry: accepted, it would move its service's
#: watermark there and make every later event of it late.
DEFAULT_MAX_AHEAD_SECONDS = 600.0

#: Largest value re-published on the dead-letter topic; longer ones are cut (and say so).
DEAD_LETTER_VALUE_LIMIT = 900 * 1024
#: Largest key re-published on the dead-letter topic. A key is for partitioning, not data: a
#: huge one (measured: a 5 MiB key) would make the copy larger than the topic takes, fail the
#: batch and, after every restart, fail it again.
DEAD_LETTER_KEY_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class KafkaDeadLetter:
    """A message (or one item of it) that could not be used, with where it came from.

    ``value`` is what goes to the dead-letter topic: the original message bytes, or the JSON
    of the rejected item when the rest of its batch was fine (``scope="item"``).
    """

    letter: DeadLetter
    key: bytes | None
    value: bytes
    topic: str
    partition: int
    offset: int
    scope: Literal["message", "item"]


@dataclass(frozen=True, slots=True)
class PartitionEvents:
    """What one poll decoded from one partition: ``(event time, event)`` pairs, in order.

    ``keyed``: every message had a key. A producer that keys its messages by service (ours,
    or the Collector's exporter with ``partition_metrics_by_resource_attributes``) keeps a
    service in one partition; an unkeyed producer spreads it over all of them.
    ``produced``: for an unkeyed partition, when each event's message was produced (seconds
    since the epoch, None if unknown), which bounds how far out of order it may be written.
    """

    partition: str
    keyed: bool
    events: list[tuple[datetime, Any]]
    produced: list[float | None] | None = None


def event_time(event: Any) -> datetime:
    """An event's timestamp: a span's start, any other event's ``ts``."""
    return event.start if isinstance(event, Span) else event.ts


def decode_partitions(
    messages: Sequence[Poll | Message | KafkaError], signal: Signal, **kw: Any
) -> list:
    """`decode_messages` per poll of a partition (a `Poll` item, or the messages of one
    partition in a list of them): a `PartitionEvents` per partition with events, and the
    `KafkaDeadLetter` items (``kw``: `decode_messages`' options).

    >>> from bytewax.connectors.kafka import KafkaSourceMessage
    >>> good = b'{"ts": "2026-01-01T00:00:00Z", "service": "api", "signal": "cpu", "value": 1}'
    >>> out = decode_partitions([KafkaSourceMessage(b"api", good, "m", offset=0, partition=2),
    ...                          KafkaSourceMessage(None, b"?", "m", offset=1, partition=2)],
    ...                         "metrics")
    >>> [type(e).__name__ for e in out], out[1].partition, out[1].keyed
    (['KafkaDeadLetter', 'PartitionEvents'], '2', False)
    """
    out: list[Any] = []
    groups: dict[int, list[Message | KafkaError]] = {}
    for item in messages:
        if type(item) is Poll:
            keyed = not item.errors and None not in item.keys
            out += _partition_events(item, str(item.partition), keyed, signal, kw)
            continue
        origin = item.msg if isinstance(item, KafkaError) else item
        partition = origin.partition if origin.partition is not None else -1
        groups.setdefault(partition, []).append(item)
    for partition, group in groups.items():
        keyed = all(getattr(m, "key", None) is not None for m in group)
        out += _partition_events(group, str(partition), keyed, signal, kw)
    return out


def _partition_events(
    messages: Sequence[Message | KafkaError] | Poll,
    partition: str,
    keyed: bool,
    signal: Signal,
    kw: dict[str, Any],
) -> list[Any]:
    """One partition's decoded events as a `PartitionEvents`, after its dead letters."""
    out: list[Any] = []
    events = []
    # A keyed partition's events go on as they are, so its metric points may stay columns;
    # an unkeyed one's are put in time order one by one (`PartitionAligner`), which needs
    # when each event's message was produced.
    stamps: list[float | None] | None = None if keyed else []
    produced: list[float | None] | None = None if keyed else []
    items = decode_messages(messages, signal, columns=keyed, produced=stamps, rows=not keyed, **kw)
    for i, item in enumerate(items):
        if isinstance(item, KafkaDeadLetter):
            out.append(item)
            continue
        if isinstance(item, MetricBatch):
            events.append((item.ts[0], item))
        else:
            events.append((event_time(item), item))
        if produced is not None and stamps is not None:
            produced.append(stamps[i])
    if events:
        out.append(PartitionEvents(partition, keyed, events, produced))
    return out


def produced_at(message: Message) -> float | None:
    """When ``message`` was produced, in seconds since the epoch (None: it does not say)."""
    stamp = message.timestamp
    if isinstance(stamp, tuple):  # Bytewax's message: (timestamp type, milliseconds)
        kind, millis = stamp
        return None if kind == TIMESTAMP_NOT_AVAILABLE else millis / 1000
    return stamp


def kafka_source(kafka: KafkaConfig, topic: str) -> KafkaPollSource:
    """A Kafka source over ``topic`` (`KafkaPollSource`): one input partition per topic
    partition, `RawMessage` items.

    Errors come into the stream as ``KafkaError`` items, so `decode_messages` turns them
    into dead letters instead of stopping the flow. Without a recovery directory every start
    reads from the beginning of the topic.
    """
    return KafkaPollSource(
        brokers=kafka.brokers,
        topics=[topic],
        tail=kafka.tail,
        starting_offset=OFFSET_BEGINNING,
        batch_size=kafka.batch_size,
        max_poll_bytes=kafka.poll_max_bytes,
    )


#: What OTLP JSON holds near its start (``"resourceMetrics"``, ``"resourceSpans"``…).
_OTLP_JSON_MARK = b'"resource'


def decode_messages(
    messages: Sequence[Message | KafkaError] | Poll,
    signal: Signal,
    input_format: str = "auto",
    max_ahead_seconds: float = DEFAULT_MAX_AHEAD_SECONDS,
    now: Callable[[], float] = time.time,
    columns: bool = False,
    produced: list[float | None] | None = None,
    rows: bool = False,
) -> list[Any]:
    """Decode a batch of messages (a `Poll`, or a list) into events and `KafkaDeadLetter`
    items, in order.

    An event stamped more than ``max_ahead_seconds`` after ``now()`` (its arrival, seconds
    since the epoch) becomes an item dead letter instead (reason ``ts: … ahead of arrival``).
    With ``columns``, metric points (our JSON events, and OTLP gauges and what else is not an
    aggregate) come as `MetricBatch` items per service (keyed by the service) without a
    `MetricPoint` each: one per run of JSON events between other items, one per OTLP message.
    A ``produced`` list (not with ``columns``) gets, for each item returned, when its message
    was produced (`produced_at`). With ``rows`` (not with ``columns``), our JSON metric
    events come as `PointRow` tuples instead of `MetricPoint` models.

    >>> from bytewax.connectors.kafka import KafkaSourceMessage
    >>> good = b'{"ts": "2026-01-01T00:00:00Z", "service": "api", "signal": "cpu", "value": 1}'
    >>> out = decode_messages([KafkaSourceMessage(None, good, "m", offset=0, partition=0),
    ...                        KafkaSourceMessage(b"k", b"\\xff", "m", offset=1, partition=0)],
    ...                       "metrics")
    >>> [type(e).__name__ for e in out]
    ['MetricPoint', 'KafkaDeadLetter']
    >>> out[1].letter.origin, out[1].scope
    ('m/0@1', 'message')
    """
    out: list[Any] = []
    events_in: dict[str, int] = {}
    arrival = datetime.fromtimestamp(now(), UTC)  # one poll arrives at once
    limit = arrival + timedelta(seconds=max_ahead_seconds)
    # Our JSON metric event, the common case, goes the general way's steps inline: a poll
    # holds thousands of them, and the calls between those steps cost as much as the steps.
    fast = signal == "metrics" and input_format in ("auto", "json")
    sniff = input_format == "auto"
    if columns and produced is not None:
        raise ValueError("produced times are per item: not with columns")
    values, topics, message_at, errors = _columns(messages)
    if fast and columns and not errors and values:
        # What may be OTLP JSON (when sniffing) goes the general way, as below.
        otlp_like = _OTLP_JSON_MARK if sniff else b""
        batches = batches_from_json(values, limit, MAX_JSON_EVENT_BYTES, otlp_like)
        if batches is not None:  # every message one of our events: no loop over them
            for topic, count in _topic_counts(topics).items():
                telemetry.EVENTS_IN.labels(source=topic).inc(count)
            return batches
    times = _produced_times(messages) if produced is not None else []
    pending = PointColumns() if columns else None
    for i, value in enumerate(values):
        if produced is not None and i:  # the previous message's items
            produced.extend([times[i - 1]] * (len(out) - len(produced)))
        if errors and i in errors:
            if pending:
                pending.flush(out)
            failed = message_at(i)
            out.append(_dead(failed.msg, signal, f"kafka error: {failed.err}"))
            continue
        if (
            fast
            and type(value) is bytes
            and value[:1] == b"{"
            and len(value) <= MAX_JSON_EVENT_BYTES
            and not (sniff and value.find(_OTLP_JSON_MARK, 0, otlp.SNIFF_BYTES) >= 0)
        ):
            # Else (None, or too far ahead) the general way says why.
            if pending is not None:
                fields = fields_from_json(value)
                if accepted := fields is not None and fields[0] <= limit:
                    pending.add(*fields[:5])
            elif rows:
                fields = fields_from_json(value)
                if accepted := fields is not None and fields[0] <= limit:
                    out.append(PointRow(*fields[:5]))
            else:
                point = point_from_json(value)
                if accepted := point is not None and point.ts <= limit:
                    out.append(point)
            if accepted:
                topic = topics[i]
                events_in[topic] = events_in.get(topic, 0) + 1
                continue
        if pending:
            pending.flush(out)
        message = message_at(i)
        first = len(out)
        decoded = _decode_one(message, signal, input_format, out, columns)
        decoded -= _reject_ahead(message, signal, out, first, arrival, limit)
        events_in[topics[i]] = events_in.get(topics[i], 0) + decoded
    if pending:
        pending.flush(out)
    if produced is not None and values:
        produced.extend([times[-1]] * (len(out) - len(produced)))
    for topic, count in events_in.items():
        telemetry.EVENTS_IN.labels(source=topic).inc(count)
    return out


def _columns(
    messages: Sequence[Message | KafkaError] | Poll,
) -> tuple[Sequence[bytes | None], Sequence[str], Callable[[int], Any], dict[int, Any]]:
    """``(values, topics, message i, failed positions)`` of a poll or a list of messages."""
    if type(messages) is Poll:
        return messages.values, [messages.topic] * len(messages), messages.message, messages.errors
    values: list[bytes | None] = []
    topics: list[str] = []
    errors: dict[int, Any] = {}
    for i, message in enumerate(messages):
        if isinstance(message, KafkaError):
            errors[i] = message.err
            values.append(None)
            topics.append(message.msg.topic or "")
        else:
            values.append(message.value)
            topics.append(message.topic or "")
    return values, topics, messages.__getitem__, errors


def _topic_counts(topics: Sequence[str]) -> dict[str, int]:
    """How many messages each topic gave. A poll's are all of one topic, which one count by
    identity finds: 4-8 µs for 5,000 messages, where hashing each (`Counter`) took 180-320 µs
    (`benchmarks/bench_per_call.py`)."""
    first = topics[0]
    if topics.count(first) == len(topics):
        return {first: len(topics)}
    return Counter(topics)


def _produced_times(messages: Sequence[Message | KafkaError] | Poll) -> Sequence[float | None]:
    """When each message was produced (`produced_at`)."""
    if type(messages) is Poll:
        return messages.produced
    return [produced_at(m.msg if isinstance(m, KafkaError) else m) for m in messages]


def _reject_ahead(
    message: Message, signal: Signal, out: list[Any], first: int, arrival: datetime, limit: datetime
) -> int:
    """Replace the events of ``out[first:]`` stamped after ``limit``; count them (a batch's
    points one by one: the rest of the batch stays)."""
    if not any(_after(event, limit) for event in out[first:]):
        return 0
    kept: list[Any] = []
    rejected = 0
    for event in out[first:]:
        if not _after(event, limit):
            kept.append(event)
            continue
        ahead_events = [event]
        if isinstance(event, MetricBatch):  # the batch's points on time stay a batch
            points = list(event.points())
            if on_time := [p for p in points if p.ts <= limit]:
                kept.append(MetricBatch.from_points(event.key, on_time))
            ahead_events = [p for p in points if p.ts > limit]
        for ahead_event in ahead_events:
            ts = event_time(ahead_event)
            ahead = (ts - arrival).total_seconds()
            allowed = (limit - arrival).total_seconds()
            payload = orjson.dumps(ahead_event.model_dump(mode="json"))
            reason = (
                f"ts: {ts.isoformat()} is {ahead:,.0f} s ahead of its arrival "
                f"(at most {allowed:g} s allowed)"
            )
            kept.append(_dead(message, signal, reason, value=payload, scope="item"))
            rejected += 1
    out[first:] = kept
    return rejected


def _after(event: Any, limit: datetime) -> bool:
    if isinstance(event, KafkaDeadLetter):
        return False
    if isinstance(event, MetricBatch):
        return max(event.ts) > limit
    return event_time(event) > limit


def _decode_one(
    message: Message, signal: Signal, input_format: str, out: list[Any], columns: bool = False
) -> int:
    """Decode ``message`` into ``out`` with its format's decoder (`airis.sources.formats`);
    the number of events (a batch's points each)."""
    value = message.value
    if not value:
        out.append(_dead(message, signal, "empty message"))
        return 0
    name = sniff_format(value) if input_format == "auto" else input_format
    try:
        decoded = decoder_for(name)(value, signal, columns=columns)
    except FormatError as exc:
        out.append(_dead(message, signal, str(exc)))
        return 0
    out.extend(decoded.events)
    for rejected in decoded.rejected:
        item = orjson.dumps(rejected.item, default=str, option=orjson.OPT_NON_STR_KEYS)
        out.append(_dead(message, signal, rejected.reason, value=item, scope="item"))
    return sum(len(e) if isinstance(e, MetricBatch) else 1 for e in decoded.events)


def _dead(
    message: Message,
    signal: Signal,
    reason: str,
    *,
    value: bytes | None = None,
    scope: Literal["message", "item"] = "message",
) -> KafkaDeadLetter:
    raw = (message.value or b"") if value is None else value
    origin = f"{message.topic}/{message.partition}@{message.offset}"
    head = raw[: MAX_TEXT * 4]
    letter = DeadLetter(
        received_at=datetime.now(UTC),
        source=f"kafka:{signal}",
        reason=reason[:MAX_TEXT],
        payload=head.decode("utf-8", errors="backslashreplace")[:MAX_TEXT],
        truncated=len(raw) > len(head) or len(head) > MAX_TEXT,
        origin=origin,
    )
    telemetry.DEAD_LETTERS.labels(source=message.topic or "", reason=_reason_class(reason)).inc()
    return KafkaDeadLetter(
        letter=letter,
        key=message.key,
        value=raw,
        topic=message.topic or "",
        partition=message.partition if message.partition is not None else -1,
        offset=message.offset if message.offset is not None else -1,
        scope=scope,
    )


def _reason_class(reason: str) -> str:
    """A low-cardinality label for a reason: its first word or field name."""
    head = reason.split(":", 1)[0].split(" ", 1)[0]
    return head[:40] or "unknown"


def to_dead_letter_message(dead: KafkaDeadLetter, topic: str) -> KafkaSinkMessage:
    """The dead-letter topic's record: original key and bytes, why and where in headers.

    Key and value are cut to `DEAD_LETTER_KEY_LIMIT` and `DEAD_LETTER_VALUE_LIMIT`, so that
    the record stays under Kafka's default 1 MiB limit; headers give the original lengths.
    (`KafkaTopicsSink` cuts further if a topic takes less.)
    """
    value = dead.value[:DEAD_LETTER_VALUE_LIMIT]
    key = dead.key[:DEAD_LETTER_KEY_LIMIT] if dead.key is not None else None
    headers = [
        ("airis.reason", dead.letter.reason.encode()[:4096]),
        ("airis.source.topic", dead.topic.encode()),
        ("airis.source.partition", str(dead.partition).encode()),
        ("airis.source.offset", str(dead.offset).encode()),
        ("airis.scope", dead.scope.encode()),
    ]
    if len(dead.value) > len(value):
        headers.append(("airis.truncated.from", str(len(dead.value)).encode()))
    if dead.key is not None and key is not None and len(dead.key) > len(key):
        headers.append(("airis.key.truncated.from", str(len(dead.key)).encode()))
    return KafkaSinkMessage(key=key, value=value, topic=topic, headers=headers)
