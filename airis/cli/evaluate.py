"""``airis eval BENCHMARK``: quality on public data or simulated faults.

Every module of `airis.evals` with a ``register(benchmarks)`` function is a benchmark: it adds
its own subcommand, so a new evaluation is one module there. They are imported only when
``airis eval`` runs (together they take seconds to import), so the rest of the command line
reaches ``airis eval``'s arguments unparsed and hands them to `build_parser`.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from types import ModuleType


def register(commands: argparse._SubParsersAction) -> None:
    # prefix_chars="+" (never used): every argument after "eval", -h included, is left for
    # the benchmark parser.
    evaluate = commands.add_parser(
        "eval",
        help="quality on public data or simulated faults (airis eval -h lists them)",
        add_help=False,
        prefix_chars="+",
    )
    evaluate.add_argument("arguments", nargs=argparse.REMAINDER)
    evaluate.set_defaults(run=_evaluate)


def benchmarks() -> list[ModuleType]:
    """The modules of `airis.evals` that register a benchmark, by name."""
    from airis import evals

    modules = [
        importlib.import_module(f"{evals.__name__}.{info.name}")
        for info in pkgutil.iter_modules(evals.__path__)
    ]
    return [m for m in modules if hasattr(m, "register")]


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``airis eval``'s arguments, every benchmark registered."""
    parser = argparse.ArgumentParser(
        prog="airis eval", description="quality on public data or simulated faults"
    )
    benchmarks_ = parser.add_subparsers(metavar="BENCHMARK")
    for module in benchmarks():
        module.register(benchmarks_)
    return parser


def _evaluate(args: argparse.Namespace) -> int:
    parser = build_parser()
    chosen = parser.parse_args(args.arguments)
    if not hasattr(chosen, "run"):
        parser.print_help()
        return 2
    return chosen.run(chosen) or 0
