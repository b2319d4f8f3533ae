"""The ``airis`` command line (argparse only).

Each command is a module of this package whose ``register(commands)`` adds its parser and
sets ``run`` to its handler; `COMMANDS` lists them in the order ``airis --help`` shows them.
The evaluations register themselves under ``airis eval``, one module each in `airis.evals`
(see `airis.cli.evaluate`). Handlers import what they run when they run, so that a command
starts without loading every other command's dependencies.
"""

from __future__ import annotations

import argparse
import gc
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

__all__ = ["COMMANDS", "build_parser", "entry", "main"]

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


def entry() -> int:
    """The ``airis`` program: `main`, then an exit without a collection of the garbage.

    The interpreter's teardown would have the collector walk every object of every module
    loaded (0.3-0.5 s once scikit-learn and Qdrant's client are: a tenth of a short command);
    the process ends anyway, so they are frozen out of its collections (`gc.freeze`).
    Objects are still freed as their references go, and exit handlers still run.
    """
    code = main()
    gc.freeze()
    return code


def build_parser() -> argparse.ArgumentParser:
    """The ``airis`` parser, every command registered."""
    parser = argparse.ArgumentParser(prog="airis", description="AIRIS-MON streaming AIOps engine")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser
