"""``airis incidents similar``: past incidents most like one, from the incident memory."""

from __future__ import annotations

import argparse
from datetime import datetime


def register(commands: argparse._SubParsersAction) -> None:
    incidents = commands.add_parser("incidents", help="the incident memory (Qdrant)")
    actions = incidents.add_subparsers(metavar="ACTION")
    similar = actions.add_parser("similar", help="past incidents most like incident ID")
    similar.add_argument("incident_id", metavar="ID")
    similar.add_argument("-k", type=int, default=5, help="how many (default 5)")
    similar.add_argument("--service", help="only incidents involving this service")
    similar.add_argument(
        "--since", type=datetime.fromisoformat, help="only incidents started since (ISO 8601)"
    )
    similar.add_argument("--min-score", type=float, help="drop matches scoring below this")
    similar.set_defaults(run=_similar)


def _similar(args: argparse.Namespace) -> int:
    from rich.console import Console

    from airis.settings import Settings
    from airis.sinks.incident_memory import IncidentMemory, format_similar

    memory = IncidentMemory(Settings().memory)
    try:
        found = memory.similar(
            args.incident_id,
            k=args.k,
            service=args.service,
            since=args.since,
            score_threshold=args.min_score,
        )
    except KeyError as exc:
        raise ValueError(str(exc).strip("'\"")) from None
    finally:
        memory.close()
    format_similar(found, Console())
    return 0
