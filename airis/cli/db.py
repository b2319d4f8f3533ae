"""``airis db migrate``: apply pending ClickHouse migrations."""

from __future__ import annotations

import argparse

from airis.cli.common import console


def register(commands: argparse._SubParsersAction) -> None:
    db = commands.add_parser("db", help="database administration")
    actions = db.add_subparsers(metavar="ACTION")
    migrate = actions.add_parser("migrate", help="apply pending ClickHouse migrations")
    migrate.set_defaults(run=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    from airis.settings import Settings
    from airis.sinks.clickhouse_store import open_store
    from airis.sinks.migrations import migrate

    store = open_store(Settings().store)
    try:
        applied = migrate(store)
    finally:
        store.close()
    console.print(f"db migrate: applied {applied}" if applied else "db migrate: up to date")
    return 0
