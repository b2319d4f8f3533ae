"""`airis simulate --kafka`: the simulator's telemetry onto the metrics topic.

``json`` writes one event per message; ``otlp`` writes one OTLP ``ExportMetricsServiceRequest``
per service and tick (protobuf, as the Collector's Kafka exporter does by default). Messages
are keyed by service, so each service's points stay in order on one partition (the flow's
event-time windows rely on it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

import orjson
from confluent_kafka import Producer

from airis.events import MetricPoint
from airis.sources import otlp

__all__ = ["WireFormat", "encode_tick", "produce_ticks"]

WireFormat = Literal["json", "otlp", "otlp_json"]


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


def produce_ticks(
    ticks: Iterable[list[dict[str, Any]]],
    bootstrap: str,
    topic: str,
    wire: WireFormat = "json",
    rate: float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[int, int]:
    """Produce every tick's events; return ``(points, messages)``.

    ``rate`` caps points per second (None: as fast as the broker takes them).
    ``on_progress(points, messages)`` is called about once a second.
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
    for tick in ticks:
        for key, value in encode_tick(tick, wire):
            _produce(producer, topic, key, value)
            messages += 1
        points += len(tick)
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
