"""The metrics dataflow: validate → detect and window per service → alert → store.

Run it with ``python -m bytewax.run "airis.flows.metrics_anomaly:build_flow()"`` (the built-in
simulator into the ClickHouse store of ``AIRIS_*`` settings); tests, ``airis demo`` and
``airis run`` pass their own source and sink.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink

from airis import telemetry
from airis.batches import MetricBatch
from airis.events import AggregatePoint, DeadLetter, DependencyEdge, LogTemplate
from airis.flows.detection import SOURCE, detect_and_alert, detection_configs, remember
from airis.flows.signals import log_signals, otlp_points, trace_signals
from airis.runtime import tune_gc
from airis.settings import Settings
from airis.sinks.clickhouse_sink import ClickHouseSink
from airis.sinks.incident_memory_sink import IncidentMemorySink
from airis.sources import iterable_source as simulated
from airis.sources.decode import decode_metrics
from airis.sources.simulator import recent_simulation

#: Without a source the flow reads the built-in simulator: the last 24 h, seed 7.
DEFAULT_SIMULATED_HOURS = 24.0
DEFAULT_SIMULATOR_SEED = 7


def build_flow(
    source: Source | None = None,
    sink: Sink | None = None,
    settings: Settings | None = None,
    topology: Mapping[str, Iterable[str]] | None = None,
    changes: Sequence[tuple[str, datetime]] = (),
    logs: Source | None = None,
    traces: Source | None = None,
    memory: Sink | None = None,
    simulated_hours: float = DEFAULT_SIMULATED_HOURS,
) -> Dataflow:
    r"""The metrics anomaly dataflow; defaults come from ``AIRIS_*`` settings.

    ``topology`` and ``changes``: see `detect_and_alert` (the built-in simulator's are used
    when the source is the default one). ``logs``: a source of `LogRecord`\ s (or `LogBatch`
    columns) whose per-window log signals (`log_signals`) join the metric points. ``traces``:
    a source of `Span`\ s (or `SpanBatch` columns) whose per-window RED signals
    (`trace_signals`) join them too, and whose dependency edges are stored. ``memory``: where
    resolved incidents are remembered (`IncidentMemorySink`; by default there when the sink
    is the default store, else nowhere).
    ``simulated_hours``: how much the built-in simulator replays when there is no source (at
    least 4: its fault schedule needs them).
    """
    settings = settings or Settings()
    tune_gc()  # a flow's process holds long-lived state: see airis.runtime
    if source is None:
        sim = recent_simulation(simulated_hours, DEFAULT_SIMULATOR_SEED)
        source = simulated.simulator_source(sim)
        logs = logs or simulated.simulated_logs_source(sim)
        traces = traces or simulated.simulated_traces_source(sim)
        topology = topology or sim.topology.call_graph()
        changes = changes or [(d.service, d.ts) for d in sim.deploys]
    if sink is None:
        sink = ClickHouseSink(settings.store)
        memory = memory or IncidentMemorySink(settings.memory)
    flow = Dataflow("airis_metrics")

    raw = op.input("read", flow, source)  # dict | bytes | AggregatePoint
    decoded = op.flat_map_batch("validate", raw, _validate)  # valid events as columns
    aggregate = op.branch("split_aggregates", decoded, lambda e: isinstance(e, AggregatePoint))
    valid = op.branch("split_invalid", aggregate.falses, lambda e: not isinstance(e, DeadLetter))
    invalid = op.inspect("count_invalid", valid.falses, _count_dead("invalid"))  # DeadLetter
    derived = otlp_points("otlp", aggregate.trues, settings.event_time)
    points = op.merge("with_otlp_points", valid.trues, derived.points)  # MetricBatch | Point

    extra: list[Stream[Any]] = [derived.refused]
    edges: Stream[DependencyEdge] | None = None
    templates: Stream[LogTemplate] | None = None
    if logs is not None:
        records = op.input("read_logs", flow, logs)  # LogRecord | LogBatch
        signals = log_signals("logs", records, settings.event_time)
        points = op.merge("with_log_signals", points, signals.points)
        templates = signals.templates
        extra += [records, signals.templates, signals.late]
    if traces is not None:
        spans = op.input("read_traces", flow, traces)  # Span | SpanBatch
        red = trace_signals("traces", spans, settings.event_time)
        points = op.merge("with_trace_signals", points, red.points)
        edges = red.edges
        extra += [spans, red.edges, red.late]
    detected = detect_and_alert(
        "detect", points, **detection_configs(settings), topology=topology, changes=changes,
        edges=edges, templates=templates,
    )  # fmt: skip
    stored = op.merge(
        "collect", *extra, detected.store_only, detected.batches, detected.anomalies,
        detected.alerts, invalid, detected.late, detected.incidents, detected.candidates
    )  # fmt: skip
    op.output("store", stored, sink)
    if memory is not None:
        remember("remember", detected.incidents, memory)
    return flow


def _validate(items: list[Any]) -> list[Any]:  # MetricBatch | MetricPoint | DeadLetter | …
    """What a source decoded already (OTLP aggregates, the simulator's batches and dead
    letters) passes as it is."""
    return decode_metrics(items, SOURCE, passthrough=(AggregatePoint, MetricBatch, DeadLetter))


def _count_dead(kind: str):
    counter = telemetry.DEAD_LETTERS.labels(source=SOURCE, reason=kind)
    return lambda _step, _item: counter.inc()
