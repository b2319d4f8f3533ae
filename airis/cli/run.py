"""``airis run``: the metrics dataflow over a JSONL file, or over Kafka topics."""

from __future__ import annotations

import argparse
from pathlib import Path

from airis.cli.common import console


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run the metrics dataflow: a JSONL file, or Kafka topics")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, help="JSONL metric events")
    source.add_argument(
        "--kafka", action="store_true", help="read the $AIRIS_KAFKA_{METRICS,LOGS,TRACES}_TOPIC"
    )
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


def _run(args: argparse.Namespace) -> int:
    if args.kafka:
        from airis.app.kafka_commands import run_kafka

        return run_kafka(args, console)
    from airis.app.demo import run_file

    return run_file(args.input, console)
