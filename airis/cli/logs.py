"""``airis logs templates``: mine the templates of a Loghub-style CSV's lines."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from airis.cli.common import console


def register(commands: argparse._SubParsersAction) -> None:
    logs = commands.add_parser("logs", help="log template mining")
    actions = logs.add_subparsers(metavar="ACTION")
    templates = actions.add_parser(
        "templates", help="mine templates of a CSV's Content column → LineId,EventTemplate"
    )
    templates.add_argument("--input", type=Path, required=True, help="CSV with LineId,Content")
    templates.add_argument("--output", type=Path, required=True)
    templates.set_defaults(run=_log_templates)


def _log_templates(args: argparse.Namespace) -> int:
    from airis.evals.logs import templates_csv

    started = time.perf_counter()
    lines = templates_csv(args.input, args.output)
    elapsed = time.perf_counter() - started
    console.print(f"logs templates: {lines:,} lines in {elapsed:.2f} s → {args.output}")
    return 0
