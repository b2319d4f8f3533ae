"""The ``airis`` command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from pathlib import Path

from rich.console import Console

logger = logging.getLogger(__name__)

console = Console(stderr=True)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airis", description="AIRIS-MON streaming AIOps engine")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(metavar="COMMAND")

    demo = sub.add_parser("demo", help="simulate faults, detect them, store and score the results")
    demo.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    demo.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    demo.add_argument("--json", type=Path, help="also write the summary as JSON here")
    demo.add_argument(
        "--data-dir", type=Path, help="embedded store directory (default $AIRIS_DATA_DIR/demo)"
    )
    demo.set_defaults(run=_demo)

    detect = sub.add_parser("detect", help="score a NAB-style timestamp,value CSV online")
    detect.add_argument("--input", type=Path, required=True)
    detect.add_argument("--output", type=Path, required=True)
    detect.set_defaults(run=_detect)

    simulate = sub.add_parser(
        "simulate", help="simulated telemetry with faults: to a JSONL file or onto Kafka"
    )
    simulate.add_argument("--hours", type=float, default=24.0)
    simulate.add_argument("--seed", type=int, default=7)
    target = simulate.add_mutually_exclusive_group(required=True)
    target.add_argument("--output", type=Path, help="JSONL events")
    target.add_argument(
        "--kafka", action="store_true", help="produce onto $AIRIS_KAFKA_METRICS_TOPIC"
    )
    simulate.add_argument("--truth", type=Path, help="ground truth JSON (required with --output)")
    pace = simulate.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="points per second (Kafka)")
    pace.add_argument("--max", action="store_true", help="as fast as possible (Kafka; default)")
    simulate.add_argument(
        "--format", choices=["json", "otlp", "otlp_json"], default="json", help="wire format"
    )
    simulate.add_argument(
        "--partitions", type=int, default=4, help="partitions of topics it creates (default 4)"
    )
    simulate.set_defaults(run=_simulate)

    run = sub.add_parser("run", help="run the metrics dataflow: a JSONL file, or Kafka topics")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, help="JSONL metric events")
    source.add_argument("--kafka", action="store_true", help="read $AIRIS_KAFKA_METRICS_TOPIC")
    run.add_argument("-p", "--processes", type=int, default=1, help="dataflow processes")
    run.add_argument("-w", "--workers", type=int, default=1, help="workers per process")
    run.add_argument("--recovery-dir", type=Path, help="resume from snapshots kept here")
    run.add_argument(
        "--snapshot-seconds", type=int, default=5, help="snapshot interval, whole s (default 5)"
    )
    run.add_argument(
        "--no-tail", action="store_true", help="stop at the end of the topic instead of waiting"
    )
    run.set_defaults(run=_run)

    alerts = sub.add_parser("alerts", help="alerts on Kafka")
    alerts_sub = alerts.add_subparsers(metavar="ACTION")
    tail = alerts_sub.add_parser("tail", help="print alerts from $AIRIS_KAFKA_ALERTS_TOPIC")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest alert")
    tail.add_argument("--group", help="consumer group (default airis-tail-$USER)")
    tail.add_argument("--max", type=int, help="stop after this many alerts")
    tail.add_argument("--idle-timeout", type=float, help="stop after this many quiet seconds")
    tail.set_defaults(run=_tail)

    db = sub.add_parser("db", help="database administration")
    db_sub = db.add_subparsers(metavar="ACTION")
    migrate = db_sub.add_parser("migrate", help="apply pending ClickHouse migrations")
    migrate.set_defaults(run=_migrate)
    return parser


def _demo(args: argparse.Namespace) -> int:
    from airis.demo import run_demo

    return run_demo(args.hours, args.seed, args.json, args.data_dir, console)


def _detect(args: argparse.Namespace) -> int:
    from airis.detect import detect_csv

    started = time.perf_counter()
    rows = detect_csv(
        args.input, args.output, progress=lambda n: console.print(f"detect: {n:,} rows")
    )
    elapsed = time.perf_counter() - started
    console.print(
        f"detect: scored {rows:,} rows in {elapsed:.2f} s ({rows / max(elapsed, 1e-9):,.0f} rows/s)"
        f" → {args.output}"
    )
    return 0


def _simulate(args: argparse.Namespace) -> int:
    if args.kafka:
        from airis.kafka_commands import simulate_to_kafka

        return simulate_to_kafka(args, console)
    from airis.demo import write_simulation

    if args.truth is None:
        raise ValueError("simulate --output needs --truth FILE for the ground truth")
    count = write_simulation(args.hours, args.seed, args.output, args.truth, console)
    console.print(f"simulate: {count:,} events → {args.output}, ground truth → {args.truth}")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.kafka:
        from airis.kafka_commands import run_kafka

        return run_kafka(args, console)
    from airis.demo import run_file

    return run_file(args.input, console)


def _tail(args: argparse.Namespace) -> int:
    from airis.alerts_tail import tail_alerts
    from airis.settings import Settings

    with contextlib.suppress(KeyboardInterrupt):
        tail_alerts(
            Settings(),
            Console(),
            from_beginning=args.from_beginning,
            group=args.group,
            max_alerts=args.max,
            idle_timeout=args.idle_timeout,
        )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from airis.settings import Settings
    from airis.sinks.clickhouse_store import open_store
    from airis.sinks.migrations import migrate

    store = open_store(Settings())
    try:
        applied = migrate(store)
    finally:
        store.close()
    console.print(f"db migrate: applied {applied}" if applied else "db migrate: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
