"""`airis simulate --kafka`: the simulator's telemetry onto the metrics, logs and traces topics.

``json`` writes one event per message; ``otlp`` writes one OTLP export request (metrics, logs
or traces) per service and tick (protobuf, as the Collector's Kafka exporter does by default).
Messages are keyed by service, so each service's events stay in order on one partition (the
flow's event-time windows rely on it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal

import orjson
from confluent_kafka import Producer

from airis.events import LogRecord, MetricPoint, Span
from airis.sources import otlp

__all__ = ["Message", "WireFormat", "encode_records", "encode_tick", "produce", "produce_ticks"]

WireFormat = Literal["json", "otlp", "otlp_json"]
#: ``(topic, key, value)`` of one message to produce.
Message = tuple[str, bytes, bytes]


def encode_tick(tick: list[dict[str, Any]], wire: WireFormat) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` messages for one tick of simulator events.

    >>> from datetime import UTC, datetime
    >>> tick = [{"ts": datetime(2026, 1, 1, tzinfo=UTC), "service": "api", "signal": "cpu",
    ...          "value": 1.5}]
    >>> next(encode_tick(tick, "json"))
    (b'api', b'{"ts":"2026-01-01T00:00:00+00:00","service":"api","signal":"cpu","value":1.5}')
    """
    if wire == "json":
        for event in tick:
            yield event["service"].encode(), orjson.dumps(event)
        return
    encoding = "otlp_proto" if wire == "otlp" else "otlp_json"
    by_service: dict[str, list[MetricPoint]] = {}
    for event in tick:
        by_service.setdefault(event["service"], []).append(MetricPoint.model_construct(**event))
    for service, points in by_service.items():
        yield service.encode(), otlp.encode_metrics(points, encoding)


def encode_records(
    records: Sequence[LogRecord] | Sequence[Span], wire: WireFormat
) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` messages for one tick of log records or spans (not mixed).

    >>> from datetime import UTC, datetime
    >>> line = LogRecord(ts=datetime(2026, 1, 1, tzinfo=UTC), service="api", body="ok")
    >>> next(encode_records([line], "json"))
    (b'api', b'{"ts":"2026-01-01T00:00:00Z","service":"api","body":"ok"}')
    """
    if wire == "json":
        for record in records:
            yield record.service.encode(), record.model_dump_json(exclude_defaults=True).encode()
        return
    encoding = "otlp_proto" if wire == "otlp" else "otlp_json"
    encode = otlp.encode_logs if isinstance(records[0], LogRecord) else otlp.encode_traces
    by_service: dict[str, list[Any]] = {}
    for record in records:
        by_service.setdefault(record.service, []).append(record)
    for service, group in by_service.items():
        yield service.encode(), encode(group, encoding)


def produce_ticks(
    ticks: Iterable[list[dict[str, Any]]],
    bootstrap: str,
    topic: str,
    wire: WireFormat = "json",
    rate: float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[int, int]:
    """Produce every tick's metric events onto ``topic``; return ``(points, messages)``.

    ``rate`` caps points per second (None: as fast as the broker takes them).
    ``on_progress(points, messages)`` is called about once a second.
    """
    batches = (
        (len(tick), [(topic, key, value) for key, value in encode_tick(tick, wire)])
        for tick in ticks
    )
    return produce(batches, bootstrap, rate, on_progress, clock)


def produce(
    batches: Iterable[tuple[int, list[Message]]],
    bootstrap: str,
    rate: float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[int, int]:
    """Produce ``(points, messages)`` batches (one per tick); return the totals.

    ``rate`` caps points per second: the messages of a batch go out together, so logs and
    spans keep pace with the metric points of their tick.
    """
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
            "enable.idempotence": True,
        }
    )
    points = messages = 0
    started = last_report = clock()
    for count, batch in batches:
        for topic, key, value in batch:
            _produce(producer, topic, key, value)
        messages += len(batch)
        points += count
        producer.poll(0)
        if rate is not None:
            ahead = points / rate - (clock() - started)
            if ahead > 0:
                time.sleep(ahead)
        if on_progress is not None and clock() - last_report >= 1.0:
            last_report = clock()
            on_progress(points, messages)
    remaining = producer.flush(60)
    if remaining:
        raise RuntimeError(f"{remaining} messages were not acknowledged by {bootstrap}")
    return points, messages


def _produce(producer: Producer, topic: str, key: bytes, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key)
            return
        except BufferError:  # local queue full: wait for deliveries
            producer.poll(0.05)
