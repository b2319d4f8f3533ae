"""`airis simulate --kafka` and `airis run --kafka`: the command-line ends of the Kafka path."""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import orjson
from rich.console import Console

from airis.cluster import ClusterPlan, init_recovery, run_cluster
from airis.kafka_admin import ensure_topics, flow_topics
from airis.kafka_producer import produce_ticks
from airis.settings import Settings, redact
from airis.sources.simulator import recent_simulation

logger = logging.getLogger(__name__)

__all__ = ["run_kafka", "simulate_to_kafka"]

DEFAULT_TRUTH = Path("simulation-truth.json")
#: Partitions of the topics `airis run --kafka` creates when they are missing.
DEFAULT_PARTITIONS = 4


def simulate_to_kafka(args: argparse.Namespace, console: Console) -> int:
    """Produce a simulation onto the metrics topic; write its ground truth to a file."""
    settings = Settings()
    sim = recent_simulation(args.hours, args.seed)
    truth_path = args.truth or settings.data_dir / DEFAULT_TRUTH
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_bytes(orjson.dumps(sim.ground_truth(), option=orjson.OPT_INDENT_2))
    topic = settings.kafka_metrics_topic
    ensure_topics(settings.kafka_bootstrap, flow_topics(settings), args.partitions)
    total = sim.n_ticks * len(sim.services) * 8
    pace = "as fast as possible" if args.rate is None else f"at {args.rate:,.0f} points/s"
    console.print(
        f"simulate: {total:,} points ({args.hours:g} h, seed {args.seed}, "
        f"{len(sim.faults)} faults) as {args.format} onto {topic} at "
        f"{redact(settings.kafka_bootstrap)}, {pace}; ground truth → {truth_path}"
    )
    started = time.perf_counter()

    def progress(points: int, messages: int) -> None:
        console.print(f"simulate: {points:,}/{total:,} points in {messages:,} messages")

    points, messages = produce_ticks(
        sim.ticks(), settings.kafka_bootstrap, topic, args.format, args.rate, progress
    )
    elapsed = time.perf_counter() - started
    console.print(
        f"simulate: produced {points:,} points in {messages:,} messages in {elapsed:.1f} s "
        f"({points / max(elapsed, 1e-9):,.0f} points/s)"
    )
    return 0


def run_kafka(args: argparse.Namespace, console: Console) -> int:
    """Start the Kafka metrics flow as ``args.processes`` processes; wait for them."""
    if args.no_tail:  # the dataflow processes read their settings from the environment
        os.environ["AIRIS_KAFKA_TAIL"] = "false"
    settings = Settings()
    if args.processes < 1 or args.workers < 1:
        raise ValueError("--processes and --workers must be at least 1")
    ensure_topics(settings.kafka_bootstrap, flow_topics(settings), DEFAULT_PARTITIONS)
    workers = args.processes * args.workers
    embedded = settings.clickhouse_url is None
    if args.recovery_dir is not None and init_recovery(args.recovery_dir, max(workers, 1)):
        console.print(f"run: created {workers} recovery partitions in {args.recovery_dir}")
    plan = ClusterPlan(
        processes=args.processes,
        workers=args.workers,
        recovery_dir=args.recovery_dir,
        snapshot_seconds=args.snapshot_seconds,
        metrics_port=settings.metrics_port,
        store_partitions=1 if embedded else workers,
        data_dir=settings.data_dir,
    )
    store = f"embedded chdb at {settings.resolved_chdb_path}" if embedded else "ClickHouse server"
    ports = (
        "off"
        if settings.metrics_port is None
        else f":{settings.metrics_port}–{settings.metrics_port + args.processes - 1}/metrics"
    )
    console.print(
        f"run: {args.processes} process(es) × {args.workers} worker(s) reading "
        f"{settings.kafka_metrics_topic} at {redact(settings.kafka_bootstrap)} → alerts on "
        f"{settings.kafka_alerts_topic}, {store}; metrics {ports}; recovery "
        f"{args.recovery_dir or 'off (every start replays the topic)'}"
    )
    code = run_cluster(plan)
    console.print(f"run: dataflow exited with status {code}")
    return code
