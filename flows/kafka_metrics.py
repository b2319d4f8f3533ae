"""The metrics dataflow on Kafka: topics in → decode → detect → alert → topics and ClickHouse out.

Run it with ``airis run --kafka`` (processes, recovery) or directly:
``python -m bytewax.run "airis.flows.kafka_metrics:build_flow()" -r DIR -s 5 -b 0``.

Reads ``AIRIS_KAFKA_METRICS_TOPIC``, ``AIRIS_KAFKA_LOGS_TOPIC`` and ``AIRIS_KAFKA_TRACES_TOPIC``
(JSON events or OTLP batches), each service's events in event-time order (`read_topic`); log
lines and spans become per-window signals beside the metrics. Publishes alerts, anomalies,
resolved incidents (with ranked root causes) and dead letters (`publish`), remembers resolved
incidents (`IncidentMemorySink`) and stores everything in ClickHouse through one sink
partition (one process owns the embedded store: `PartitionedClickHouseSink`). Items cross
processes once per service (or store partition) and batch; Kafka offsets live in Bytewax's
recovery snapshots."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from airis.batches import PickledOnce
from airis.events import AggregatePoint
from airis.flows.batching import group_by, one_item
from airis.flows.detection import detect_and_alert, detection_configs, remember
from airis.flows.kafka_ingest import read_topic
from airis.flows.publish import publish
from airis.flows.signals import log_signals, otlp_points, trace_signals
from airis.flows.snapshots import kept
from airis.flows.warm_up import warm_up
from airis.runtime import tune_gc
from airis.settings import Settings
from airis.sinks.clickhouse_sink import PartitionedClickHouseSink
from airis.sinks.incident_memory_sink import IncidentMemorySink

#: Items bound for ClickHouse all carry this key: one sink partition (see module docstring).
STORE_KEY = "store"


def build_flow(
    settings: Settings | None = None,
    *,
    store_partitions: int = 1,
    store_sink: Sink | None = None,
    topics_sink: Sink | None = None,
    memory_sink: Sink | None = None,
    sources: Mapping[str, Source] | None = None,
    snapshots: bool = True,
) -> Dataflow:
    """The Kafka metrics dataflow; everything not given comes from ``AIRIS_*`` settings.

    ``sources``: what to read instead of the ``"metrics"``, ``"logs"`` and ``"traces"``
    topics (`read_topic`), so that the flow runs without a broker too. ``snapshots=False``
    (`airis run` without a recovery directory): no snapshots, no store flush at epochs' ends."""
    settings = settings or Settings()
    store_sink = store_sink or PartitionedClickHouseSink(
        settings.store, partitions=store_partitions, flush_at_snapshots=snapshots
    )
    with kept(snapshots):
        sinks = (store_sink, topics_sink, memory_sink)
        return _flow(settings, store_partitions, sinks, sources or {})


def _flow(
    settings: Settings, store_partitions: int, sinks: tuple, sources: Mapping[str, Source]
) -> Dataflow:
    store_sink, topics_sink, memory_sink = sinks
    tune_gc()  # a flow's process holds long-lived state: see airis.runtime
    warm_up(settings)  # before the sources open: see airis.flows.warm_up
    flow = Dataflow("airis_kafka_metrics")

    kafka, event_time = settings.kafka, settings.event_time
    metrics, logs_in, traces_in = (
        read_topic(f"{kind}_topic", flow, kind, topic, kafka, event_time, sources.get(kind))
        for kind, topic in kafka.input_topics.items()
    )
    is_aggregate = lambda e: isinstance(e, AggregatePoint)  # noqa: E731
    aggregate = op.branch("split_aggregates", metrics.events, is_aggregate)
    derived = otlp_points("otlp", aggregate.trues, event_time)  # Sums, Histograms → rates, p95…
    points = op.merge("with_otlp_points", aggregate.falses, derived.points)  # MetricPoint
    dead = op.merge("dead_letters", metrics.dead, logs_in.dead, traces_in.dead)
    logs = log_signals("logs", logs_in.events, event_time)
    traces = trace_signals("traces", traces_in.events, event_time)
    signals = op.merge("with_log_and_trace_signals", points, logs.points, traces.points)

    detected = detect_and_alert(
        "detect", signals, **detection_configs(settings), edges=traces.edges,
        templates=logs.templates,
    )  # fmt: skip
    publish(
        "publish", detected.alerts, detected.anomalies, detected.incidents, dead, kafka,
        settings.alerting, topics_sink,
    )  # fmt: skip

    letters = op.map("dead_letter_rows", dead, lambda d: d.letter)
    stored = op.merge(
        "collect", detected.batches, logs_in.events, logs.templates, logs.late, traces_in.events,
        traces.edges, traces.late, detected.anomalies, detected.alerts, letters, detected.late,
        detected.incidents, detected.candidates, derived.refused, detected.store_only,
    )  # fmt: skip
    keyed = op.flat_map_batch("route_to_store", stored, _store_batches(store_partitions))
    op.output("store", keyed, store_sink)
    remember("remember", detected.incidents, memory_sink or IncidentMemorySink(settings.memory))
    return flow


def _store_batches(partitions: int) -> Callable[[list[Any]], list[tuple[str, list[Any]]]]:
    """``(partition key, events)``: one item per partition and batch crosses to the store."""
    if partitions == 1:
        return one_item(STORE_KEY)
    # Spread by service so one series stays in one partition (inserts stay ordered per key).
    return lambda events: [(k, PickledOnce(g)) for k, g in group_by(events, _store_key).items()]


def _store_key(event: Any) -> str:
    return getattr(event, "service", STORE_KEY)
