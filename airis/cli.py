"""The ``airis`` command line."""

from __future__ import annotations

import argparse
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

    simulate = sub.add_parser("simulate", help="write simulated telemetry as JSONL")
    simulate.add_argument("--hours", type=float, default=24.0)
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--output", type=Path, required=True, help="JSONL events")
    simulate.add_argument("--truth", type=Path, required=True, help="ground truth JSON")
    simulate.set_defaults(run=_simulate)

    run = sub.add_parser("run", help="run the metrics dataflow over a JSONL file into ClickHouse")
    run.add_argument("--input", type=Path, required=True, help="JSONL metric events")
    run.set_defaults(run=_run)

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
    from airis.demo import write_simulation

    count = write_simulation(args.hours, args.seed, args.output, args.truth, console)
    console.print(f"simulate: {count:,} events → {args.output}, ground truth → {args.truth}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from airis.demo import run_file

    return run_file(args.input, console)


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
