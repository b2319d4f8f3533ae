"""Kafka topics into a flow: read, decode per partition, and put each service's events in
event-time order across the partitions that carry them (`read_topic`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.inputs import FixedPartitionedSource, Source
from bytewax.operators import StatefulBatchLogic

from airis.batches import MetricBatch, PointRow
from airis.events import MetricPoint
from airis.flows.batching import group_by
from airis.flows.snapshots import TakeSnapshot, frozen, snapshotter, thawed
from airis.operators.windowing.partition_aligner import PartitionAligner
from airis.settings import EventTimeConfig, KafkaConfig
from airis.sources.kafka_input import (
    KafkaDeadLetter,
    PartitionEvents,
    decode_partitions,
    kafka_source,
)


@dataclass(frozen=True)
class TopicEvents:
    """The streams `read_topic` adds to a flow."""

    events: Stream[Any]
    """Decoded events, each service's in event-time order."""
    dead: Stream[KafkaDeadLetter]


@operator
def read_topic(
    step_id: str,
    flow: Dataflow,
    signal: str,
    topic: str,
    kafka: KafkaConfig,
    event_time: EventTimeConfig,
    source: Source | None = None,
) -> TopicEvents:
    """One topic's events, each service's in event-time order across the topic's partitions
    (`PartitionAligner`), and its dead letters (`KafkaDeadLetter`).

    Keyed messages pass straight through: a producer that keys by service keeps each service
    in one partition, already in order (and its events cross no process boundary here).
    ``source``: what to read instead of the topic (items as our Kafka source gives them, a
    `Poll` per poll, or messages one by one: `RawMessage` or `KafkaError`), for a flow
    without a broker."""
    source = source or kafka_source(kafka, topic)
    messages = op.input(f"read_{signal}", flow, source)
    decode = partial(
        decode_partitions,
        signal=signal,
        input_format=kafka.input_format,
        max_ahead_seconds=event_time.max_ahead_seconds,
    )
    decoded = op.flat_map_batch(f"decode_{signal}", messages, decode)
    split = op.branch(f"split_{signal}", decoded, lambda e: isinstance(e, PartitionEvents))
    keyed = op.branch(f"split_keyed_{signal}", split.trues, lambda polled: polled.keyed)
    in_order = op.flat_map(f"keyed_{signal}", keyed.trues, lambda p: [e for _, e in p.events])
    by_service = op.flat_map(f"unkeyed_{signal}_by_service", keyed.falses, _by_service)
    align = partial(
        AlignPartitions,
        spread=_partitions(source),
        idle_grace=event_time.idle_grace_seconds,
        disorder=event_time.partition_disorder_seconds,
        take_snapshot=snapshotter(),
    )
    aligned = op.stateful_batch(f"align_{signal}_partitions", by_service, align)
    aligned = op.flat_map(f"{signal}_in_time_order", aligned, _released)
    return TopicEvents(op.merge(f"{signal}_events", in_order, aligned), split.falses)


def _released(service_events: tuple[str, list[Any]]) -> list[Any]:
    """A service's events as the aligner released them, each run of metric points (models or
    `PointRow` tuples) as one `MetricBatch`, what a keyed partition's decoder gives: one item,
    not one per point."""
    service, events = service_events
    out: list[Any] = []
    run: list[MetricPoint | PointRow] = []
    for event in events:
        if type(event) is PointRow or type(event) is MetricPoint:
            run.append(event)
            continue
        if run:
            out.append(MetricBatch.from_points(service, run))
            run = []
        out.append(event)
    if run:
        out.append(MetricBatch.from_points(service, run))
    return out


def _partitions(source: Source) -> int:
    """How many partitions ``source`` reads (a Kafka topic's: asked of the broker)."""
    if isinstance(source, FixedPartitionedSource):
        return max(len(source.list_parts()), 1)
    return 1


def _by_service(polled: PartitionEvents) -> list[tuple[str, PartitionEvents]]:
    """The poll's events of each service (one `PartitionEvents` per service)."""
    if polled.produced is None:
        groups = group_by(polled.events, _service_of_pair)
        return [
            (service, PartitionEvents(polled.partition, polled.keyed, events))
            for service, events in groups.items()
        ]
    out = []
    stamped = zip(polled.events, polled.produced, strict=True)
    for service, pairs in group_by(stamped, _service_of_item).items():
        events = [event for event, _ in pairs]
        produced = [stamp for _, stamp in pairs]
        out.append((service, PartitionEvents(polled.partition, polled.keyed, events, produced)))
    return out


def _service_of_pair(pair: tuple[datetime, Any]) -> str:
    return pair[1].service


def _service_of_item(item: tuple[tuple[datetime, Any], float | None]) -> str:
    return item[0][1].service


class AlignPartitions(StatefulBatchLogic[PartitionEvents, list[Any], bytes]):
    """Bytewax's side of `PartitionAligner`: one service's polls of unkeyed messages in (which
    may spread it over all ``spread`` partitions of the topic), its events out in event-time
    order (one list per activation). System time comes from ``clock`` (``time.monotonic``;
    tests inject their own)."""

    def __init__(
        self,
        snapshot: PartitionAligner | bytes | None,
        spread: int,
        idle_grace: float,
        disorder: float,
        clock: Callable[[], float] = time.monotonic,
        take_snapshot: TakeSnapshot = frozen,
    ) -> None:
        self.take_snapshot = take_snapshot
        resume = thawed(snapshot)
        self.aligner = resume or PartitionAligner(spread, idle_grace, disorder)
        self.clock = clock
        if resume is not None:
            resume.resume(clock())

    def on_batch(self, values: list[PartitionEvents]) -> tuple[list[list[Any]], bool]:
        now = self.clock()
        out: list[Any] = []
        for polled in values:
            out += self.aligner.update(polled.partition, polled.events, now, polled.produced)
        return ([out] if out else []), self.RETAIN

    def on_notify(self) -> tuple[list[list[Any]], bool]:
        out = self.aligner.release(self.clock())
        return ([out] if out else []), self.RETAIN

    def notify_at(self) -> datetime | None:
        wait = self.aligner.next_release_in(self.clock())
        return None if wait is None else datetime.now(UTC) + timedelta(seconds=wait)

    def on_eof(self) -> tuple[list[list[Any]], bool]:
        out = self.aligner.close_all()
        return ([out] if out else []), self.RETAIN

    def snapshot(self) -> bytes | None:
        return self.take_snapshot(self.aligner)
