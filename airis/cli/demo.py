"""``airis demo``: simulate faults, detect them, store and score the results."""

from __future__ import annotations

import argparse
from pathlib import Path

from airis.cli.common import console, recent_utc


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo", help="simulate faults, detect them, store and score the results"
    )
    demo.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    demo.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    demo.add_argument("--json", type=Path, help="also write the summary as JSON here")
    demo.add_argument(
        "--data-dir", type=Path, help="embedded store directory (default $AIRIS_DATA_DIR/demo)"
    )
    demo.add_argument(
        "--end",
        type=recent_utc,
        help="end of the simulated hours, ISO 8601 (default: the last whole hour); what the "
        "detectors see depends on the hour of day and the day of the week, so a fixed end "
        "repeats a run exactly",
    )
    demo.set_defaults(run=_demo)


def _demo(args: argparse.Namespace) -> int:
    from airis.app.demo_rows import TrainingRows
    from airis.settings import Settings

    # Before the imports below (about 2 s): the model's rows are simulated meanwhile.
    rows = TrainingRows.start(args.hours, args.seed, args.end) if Settings().onnx_model else None
    from airis.app.demo import run_demo

    return run_demo(
        args.hours, args.seed, args.json, args.data_dir, console, end=args.end, training_rows=rows
    )
