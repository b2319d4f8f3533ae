"""``airis alerts tail``: print the alerts of the alerts topic as they come."""

from __future__ import annotations

import argparse
import contextlib


def register(commands: argparse._SubParsersAction) -> None:
    alerts = commands.add_parser("alerts", help="alerts on Kafka")
    actions = alerts.add_subparsers(metavar="ACTION")
    tail = actions.add_parser("tail", help="print alerts from $AIRIS_KAFKA_ALERTS_TOPIC")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest alert")
    tail.add_argument("--group", help="consumer group (default airis-tail-$USER)")
    tail.add_argument("--max", type=int, help="stop after this many alerts")
    tail.add_argument("--idle-timeout", type=float, help="stop after this many quiet seconds")
    tail.set_defaults(run=_tail)


def _tail(args: argparse.Namespace) -> int:
    from rich.console import Console

    from airis.app.alerts_tail import tail_alerts
    from airis.settings import Settings

    with contextlib.suppress(KeyboardInterrupt):
        tail_alerts(
            Settings().kafka,
            Console(),
            from_beginning=args.from_beginning,
            group=args.group,
            max_alerts=args.max,
            idle_timeout=args.idle_timeout,
        )
    return 0
