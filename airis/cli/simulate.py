"""``airis simulate``: simulated telemetry with faults, to a JSONL file or onto Kafka."""

from __future__ import annotations

import argparse
from pathlib import Path

from airis.cli.common import console


def register(commands: argparse._SubParsersAction) -> None:
    simulate = commands.add_parser(
        "simulate", help="simulated telemetry with faults: to a JSONL file or onto Kafka"
    )
    simulate.add_argument("--hours", type=float, default=24.0)
    simulate.add_argument("--seed", type=int, default=7)
    target = simulate.add_mutually_exclusive_group(required=True)
    target.add_argument("--output", type=Path, help="JSONL events")
    target.add_argument(
        "--kafka",
        action="store_true",
        help="produce onto $AIRIS_KAFKA_METRICS_TOPIC (and the logs and traces topics)",
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
    simulate.add_argument(
        "--signals",
        default="metrics,logs,traces",
        help="what to produce (Kafka): metrics plus any of logs, traces (default all three)",
    )
    simulate.set_defaults(run=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    if args.kafka:
        from airis.app.kafka_commands import simulate_to_kafka

        return simulate_to_kafka(args, console)
    from airis.app.demo import write_simulation

    if args.truth is None:
        raise ValueError("simulate --output needs --truth FILE for the ground truth")
    count = write_simulation(args.hours, args.seed, args.output, args.truth, console)
    console.print(f"simulate: {count:,} events → {args.output}, ground truth → {args.truth}")
    return 0
