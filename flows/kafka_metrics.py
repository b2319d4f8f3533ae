"""The metrics dataflow on Kafka: topics in → decode → detect → alert → topics and ClickHouse out.

Run it with ``airis run --kafka`` (processes, recovery) or directly:
``python -m bytewax.run "airis.flows.kafka_metrics:build_flow()" -r DIR -s 5 -b 0``.

Reads ``AIRIS_KAFKA_METRICS_TOPIC``, ``AIRIS_KAFKA_LOGS_TOPIC`` and ``AIRIS_KAFKA_TRACES_TOPIC``
(JSON events or OTLP batches, many per message), each service's events put in event-time
order across the partitions that carry them (`PartitionAligner`): log lines and spans become
per-window log and trace signals beside the metrics (`log_signals`, `trace_signals`), and
are stored with their templates and dependency edges. Writes alerts (Alertmanager's shape, keyed by
fingerprint), anomalies and resolved incidents (with their ranked root-cause candidates;
grouped by time and by the call graph learned from the traces' dependency edges, by time
alone until traces have shown some) to their topics, undecodable or invalid input to the
dead-letter topic with the reason and the original bytes, resolved incidents to the incident
memory (`IncidentMemorySink`), and everything to ClickHouse through one sink partition (one
process owns the embedded store; see `PartitionedClickHouseSink`). Metric points travel as
per-service `MetricBatch` items and the store receives lists of events: items cross between
processes once per service (or store partition) and batch of input, not once per point.
Kafka offsets live in Bytewax's recovery snapshots, so a restart resumes where the last
snapshot was taken instead of replaying the topic.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import Sink

from airis.events import AggregatePoint
from airis.flows.metrics_anomaly import (
    detect_and_alert,
    log_signals,
    otlp_points,
    remember,
    trace_signals,
)
from airis.operators.partition_aligner import PartitionAligner
from airis.settings import Settings
from airis.sinks.clickhouse_sink import PartitionedClickHouseSink
from airis.sinks.incident_memory_sink import IncidentMemorySink
from airis.sinks.kafka_output import (
    KafkaTopicsSink,
    alert_message,
    anomaly_message,
    incident_message,
)
from airis.sources.kafka_input import (
    PartitionEvents,
    decode_partitions,
    kafka_source,
    partition_count,
    to_dead_letter_message,
)

logger = logging.getLogger(__name__)

#: Items bound for ClickHouse all carry this key: one sink partition (see module docstring).
STORE_KEY = "store"


def build_flow(
    settings: Settings | None = None,
    *,
    store_partitions: int = 1,
    store_sink: Sink | None = None,
    topics_sink: Sink | None = None,
    memory_sink: Sink | None = None,
) -> Dataflow:
    """The Kafka metrics dataflow; everything not given comes from ``AIRIS_*`` settings."""
    settings = settings or Settings()
    flow = Dataflow("airis_kafka_metrics")

    decoded, dead_metrics = _read(flow, "metrics", settings.kafka_metrics_topic, settings)
    aggregate = op.branch("split_aggregates", decoded, lambda e: isinstance(e, AggregatePoint))
    derived = otlp_points(aggregate.trues, settings)  # OTLP Sums, Histograms → rates, p95…
    points = op.merge("with_otlp_points", aggregate.falses, derived.points)  # MetricPoint
    records, dead_logs = _read(flow, "logs", settings.kafka_logs_topic, settings)
    spans, dead_spans = _read(flow, "traces", settings.kafka_traces_topic, settings)
    dead = op.merge("dead_letters", dead_metrics, dead_logs, dead_spans)  # KafkaDeadLetter
    logs = log_signals(records, settings)
    traces = trace_signals(spans, settings)
    signals = op.merge("with_log_and_trace_signals", points, logs.points, traces.points)

    detected = detect_and_alert(signals, settings, edges=traces.edges, templates=logs.templates)

    alerts_out = op.map(
        "alert_messages",
        detected.alerts,
        lambda a: alert_message(a, settings.kafka_alerts_topic, settings.generator_url),
    )
    anomalies_out = op.map(
        "anomaly_messages",
        detected.anomalies,
        lambda a: anomaly_message(a, settings.kafka_anomalies_topic),
    )
    dead_out = op.map(
        "dead_letter_messages",
        dead,
        lambda d: to_dead_letter_message(d, settings.kafka_dead_letter_topic),
    )
    incidents_out = op.map(
        "incident_messages",
        detected.incidents,
        lambda i: incident_message(i, settings.kafka_incidents_topic),
    )
    published = op.merge("publish", alerts_out, anomalies_out, incidents_out, dead_out)
    op.output("kafka_out", published, topics_sink or KafkaTopicsSink(settings.kafka_bootstrap))

    letters = op.map("dead_letter_rows", dead, lambda d: d.letter)
    stored = op.merge(
        "collect",
        detected.batches,
        records,
        logs.templates,
        logs.late,
        spans,
        traces.edges,
        traces.late,
        detected.anomalies,
        detected.alerts,
        letters,
        detected.late,
        detected.incidents,
        detected.candidates,
        derived.refused,
        *detected.store_only,
    )
    keyed = op.flat_map_batch("route_to_store", stored, _store_batches(store_partitions))
    sink = store_sink or PartitionedClickHouseSink(settings, partitions=store_partitions)
    op.output("store", keyed, sink)
    remember(detected.incidents, memory_sink or IncidentMemorySink(settings))
    return flow


def _read(flow: Dataflow, signal: str, topic: str, settings: Settings) -> tuple[Stream, Stream]:
    """One topic's events, each service's in event-time order across the topic's partitions
    (`PartitionAligner`), and its dead letters (`KafkaDeadLetter`)."""
    messages = op.input(f"read_{signal}", flow, kafka_source(settings, topic))
    decode = partial(
        decode_partitions,
        signal=signal,
        input_format=settings.kafka_input_format,
        max_ahead_seconds=settings.max_ahead_seconds,
    )
    decoded = op.flat_map_batch(f"decode_{signal}", messages, decode)
    split = op.branch(f"split_{signal}", decoded, lambda e: isinstance(e, PartitionEvents))
    by_service = op.flat_map(f"{signal}_by_service", split.trues, _by_service)
    spread = partition_count(settings, topic)
    align = partial(AlignPartitions, spread=spread, idle_grace=settings.idle_grace_seconds)
    aligned = op.stateful_batch(f"align_{signal}_partitions", by_service, align)
    return op.flat_map(f"{signal}_in_time_order", aligned, lambda kv: kv[1]), split.falses


def _by_service(polled: PartitionEvents) -> list[tuple[str, PartitionEvents]]:
    """The poll's events of each service (one `PartitionEvents` per service)."""
    groups: dict[str, list[tuple[datetime, Any]]] = {}
    for pair in polled.events:
        groups.setdefault(pair[1].service, []).append(pair)
    return [
        (service, PartitionEvents(polled.partition, polled.keyed, events))
        for service, events in groups.items()
    ]


class AlignPartitions(StatefulBatchLogic[PartitionEvents, list[Any], PartitionAligner]):
    """Bytewax's side of `PartitionAligner`: one service's polls in, its events out in
    event-time order (one list per activation). Unkeyed messages may spread a service over
    all ``spread`` partitions of the topic; keyed ones keep it in one."""

    def __init__(self, resume: PartitionAligner | None, spread: int, idle_grace: float) -> None:
        self.spread = spread
        self.aligner = resume or PartitionAligner(1, idle_grace)
        if resume is not None:
            resume.resume(time.monotonic())

    def on_batch(self, values: list[PartitionEvents]) -> tuple[list[list[Any]], bool]:
        now = time.monotonic()
        out: list[Any] = []
        for polled in values:
            if not polled.keyed:
                self.aligner.spread = max(self.aligner.spread, self.spread)
            out += self.aligner.update(polled.partition, polled.events, now)
        return ([out] if out else []), self.RETAIN

    def on_notify(self) -> tuple[list[list[Any]], bool]:
        out = self.aligner.release(time.monotonic())
        return ([out] if out else []), self.RETAIN

    def notify_at(self) -> datetime | None:
        wait = self.aligner.next_release_in(time.monotonic())
        return None if wait is None else datetime.now(UTC) + timedelta(seconds=wait)

    def on_eof(self) -> tuple[list[list[Any]], bool]:
        out = self.aligner.close_all()
        return ([out] if out else []), self.RETAIN

    def snapshot(self) -> PartitionAligner:
        return copy.deepcopy(self.aligner)


def _store_batches(partitions: int) -> Callable[[list[Any]], list[tuple[str, list[Any]]]]:
    """``(partition key, events)``: one item per partition and batch crosses to the store."""
    if partitions == 1:
        return lambda events: [(STORE_KEY, events)]

    def by_service(events: list[Any]) -> list[tuple[str, list[Any]]]:
        # Spread by service so one series stays in one partition (inserts stay ordered per key).
        groups: dict[str, list[Any]] = {}
        for event in events:
            groups.setdefault(getattr(event, "service", STORE_KEY), []).append(event)
        return list(groups.items())

    return by_service
