"""`airis simulate --kafka` and `airis run --kafka`: the command-line ends of the Kafka path."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from airis.app.cluster import ClusterPlan, init_recovery, run_cluster
from airis.app.kafka_admin import ensure_topics, flow_topics
from airis.app.kafka_producer import Message, WireFormat, encode_records, encode_tick, produce
from airis.settings import Settings, redact
from airis.sources.simulator import Simulator, recent_simulation
from airis.sources.simulator.logs import LogSimulator
from airis.sources.simulator.traces import TraceSimulator

__all__ = ["SIGNALS", "parse_signals", "run_kafka", "simulate_to_kafka"]

DEFAULT_TRUTH = Path("simulation-truth.json")
#: Partitions of the topics `airis run --kafka` creates when they are missing.
DEFAULT_PARTITIONS = 4


def simulate_to_kafka(args: argparse.Namespace, console: Console) -> int:
    """Produce a simulation onto the metrics, logs and traces topics (those of ``--signals``);
    write its ground truth to a file."""
    settings = Settings()
    signals = parse_signals(args.signals)
    sim = recent_simulation(args.hours, args.seed)
    truth_path = args.truth or settings.data_dir / DEFAULT_TRUTH
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_bytes(orjson.dumps(sim.ground_truth(), option=orjson.OPT_INDENT_2))
    ensure_topics(settings.kafka_bootstrap, flow_topics(settings.kafka), args.partitions)
    total = sim.n_ticks * len(sim.services) * 8
    pace = "as fast as possible" if args.rate is None else f"at {args.rate:,.0f} points/s"
    topics = ", ".join(_topic(settings, s) for s in signals)
    console.print(
        f"simulate: {total:,} points ({args.hours:g} h, seed {args.seed}, "
        f"{len(sim.faults)} faults) and their {', '.join(signals[1:]) or 'nothing else'} as "
        f"{args.format} onto {topics} at {redact(settings.kafka_bootstrap)}, {pace}; ground "
        f"truth → {truth_path}"
    )
    started = time.perf_counter()
    counted = dict.fromkeys(signals, 0)

    def progress(points: int, messages: int) -> None:
        console.print(f"simulate: {points:,}/{total:,} points in {messages:,} messages")

    batches = _simulation_batches(sim, settings, signals, args.format, counted)
    points, messages = produce(batches, settings.kafka_bootstrap, args.rate, progress)
    elapsed = time.perf_counter() - started
    extra = "".join(f", {counted[s]:,} {_UNITS[s]}" for s in signals[1:])
    console.print(
        f"simulate: produced {points:,} points{extra} in {messages:,} messages in "
        f"{elapsed:.1f} s ({points / max(elapsed, 1e-9):,.0f} points/s)"
    )
    return 0


SIGNALS = ("metrics", "logs", "traces")
_UNITS = {"logs": "log lines", "traces": "spans"}


def parse_signals(text: str) -> list[str]:
    """``metrics,logs,traces`` (any subset that includes metrics) → the signals, in order.

    >>> parse_signals("traces, metrics")
    ['metrics', 'traces']
    """
    chosen = {s.strip() for s in text.split(",") if s.strip()}
    unknown = chosen - set(SIGNALS)
    if unknown or "metrics" not in chosen:
        raise ValueError(
            f"--signals: a comma-separated subset of {', '.join(SIGNALS)} that includes "
            f"metrics, got {text!r}"
        )
    return [s for s in SIGNALS if s in chosen]


def _topic(settings: Settings, signal: str) -> str:
    return getattr(settings, f"kafka_{signal}_topic")


def _simulation_batches(
    sim: Simulator, settings: Settings, signals: list[str], wire: WireFormat, counted: dict
) -> Iterator[tuple[int, list[Message]]]:
    """Per tick: its metric points' count and the messages of every chosen signal."""
    streams: list[Iterator[list[Any]]] = [sim.ticks()]
    if "logs" in signals:
        streams.append(LogSimulator(sim).ticks())
    if "traces" in signals:
        streams.append(TraceSimulator(sim).ticks())
    for tick, *others in zip(*streams, strict=True):
        batch = [(settings.kafka_metrics_topic, k, v) for k, v in encode_tick(tick, wire)]
        for signal, records in zip(signals[1:], others, strict=True):
            counted[signal] += len(records)
            if records:
                topic = _topic(settings, signal)
                batch += [(topic, k, v) for k, v in encode_records(records, wire)]
        yield len(tick), batch


def carry_over_snapshots(directory: Path) -> int:
    """Rename a recovery directory's snapshots of the Kafka flow's former step ids
    (`airis.app.recovery_steps`); the flow is built only for its step ids (nothing is read or
    written: inert sources and sinks)."""
    from bytewax.testing import TestingSink, TestingSource

    from airis.app.recovery_steps import carry_over, former_step_ids
    from airis.flows import kafka_metrics

    inert = {signal: TestingSource([]) for signal in ("metrics", "logs", "traces")}
    shape = kafka_metrics.build_flow(
        store_sink=TestingSink([]), topics_sink=TestingSink([]), memory_sink=TestingSink([]),
        sources=inert,
    )  # fmt: skip
    return carry_over(directory, former_step_ids(shape))


def run_kafka(args: argparse.Namespace, console: Console) -> int:
    """Start the Kafka metrics flow as ``args.processes`` processes; wait for them."""
    # The dataflow processes read their settings from the environment they are given.
    overrides = {"AIRIS_KAFKA_TAIL": "false"} if args.no_tail else {}
    settings = Settings()
    if args.processes < 1 or args.workers < 1:
        raise ValueError("--processes and --workers must be at least 1")
    ensure_topics(settings.kafka_bootstrap, flow_topics(settings.kafka), DEFAULT_PARTITIONS)
    workers = args.processes * args.workers
    embedded = settings.clickhouse_url is None
    if args.recovery_dir is not None and init_recovery(args.recovery_dir, max(workers, 1)):
        console.print(f"run: created {workers} recovery partitions in {args.recovery_dir}")
    elif args.recovery_dir is not None and (renamed := carry_over_snapshots(args.recovery_dir)):
        console.print(f"run: {renamed} snapshots in {args.recovery_dir} renamed to their steps")
    plan = ClusterPlan(
        processes=args.processes,
        workers=args.workers,
        recovery_dir=args.recovery_dir,
        snapshot_seconds=args.snapshot_seconds,
        metrics_port=settings.metrics_port,
        store_partitions=1 if embedded else workers,
        data_dir=settings.data_dir,
        settings_overrides=overrides,
    )
    store = f"embedded chdb at {settings.store.chdb_path}" if embedded else "ClickHouse server"
    ports = (
        "off"
        if settings.metrics_port is None
        else f":{settings.metrics_port}–{settings.metrics_port + args.processes - 1}/metrics"
    )
    console.print(
        f"run: {args.processes} process(es) × {args.workers} worker(s) reading "
        f"{settings.kafka_metrics_topic}, {settings.kafka_logs_topic} and "
        f"{settings.kafka_traces_topic} at {redact(settings.kafka_bootstrap)} → alerts on "
        f"{settings.kafka_alerts_topic}, {store}; metrics {ports}; recovery "
        f"{args.recovery_dir or 'off (every start replays the topic)'}"
    )
    code = run_cluster(plan)
    console.print(f"run: dataflow exited with status {code}")
    return code
