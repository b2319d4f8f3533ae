"""``airis detect``: score a NAB-style ``timestamp,value`` CSV online."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from airis.cli.common import console


def register(commands: argparse._SubParsersAction) -> None:
    detect = commands.add_parser("detect", help="score a NAB-style timestamp,value CSV online")
    detect.add_argument("--input", type=Path, required=True)
    detect.add_argument("--output", type=Path, required=True)
    detect.set_defaults(run=_detect)


def _detect(args: argparse.Namespace) -> int:
    from airis.app.detect import detect_csv

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
