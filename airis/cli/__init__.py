"""The ``airis`` command line (argparse only).

Each command is a module of this package whose ``register(commands)`` adds its parser and
sets ``run`` to its handler; `COMMANDS` lists them in the order ``airis --help`` shows them.
The evaluations register themselves under ``airis eval``, one module each in `airis.evals`
(see `airis.cli.evaluate`). Handlers import what they run when they run, so that a command
starts without loading every other command's dependencies.
"""

from __future__ import annotations

import argparse
import logging

from airis.cli import (
    alerts,
    dashboards,
    db,
    demo,
    detect,
    evaluate,
    incidents,
    logs,
    models,
    report,
    run,
    simulate,
)
from airis.cli.common import console

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS = (
    demo,
    detect,
    simulate,
    run,
    alerts,
    logs,
    evaluate,
    incidents,
    report,
    models,
    dashboards,
    db,
)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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


def build_parser() -> argparse.ArgumentParser:
    """The ``airis`` parser, every command registered."""
    parser = argparse.ArgumentParser(prog="airis", description="AIRIS-MON streaming AIOps engine")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser
