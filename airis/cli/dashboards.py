"""``airis dashboards write|check``: the Grafana dashboards, as files and against the store."""

from __future__ import annotations

import argparse
from pathlib import Path

from airis.cli.common import console, utc_time, write_json


def register(commands: argparse._SubParsersAction) -> None:
    dashboards = commands.add_parser("dashboards", help="the Grafana dashboards (ClickHouse)")
    actions = dashboards.add_subparsers(metavar="ACTION")
    write = actions.add_parser("write", help="render the dashboards' JSON files")
    write.add_argument("--out", type=Path, help="directory (default deploy/grafana/dashboards)")
    write.set_defaults(run=_write)
    check = actions.add_parser(
        "check", help="run every dashboard query against the store, as Grafana would"
    )
    check.add_argument("--from", dest="start", type=utc_time, help="default: the data's start")
    check.add_argument("--to", dest="end", type=utc_time, help="default: the data's end")
    check.add_argument("--json", type=Path, help="also write every query's result here")
    check.set_defaults(run=_check)


def _write(args: argparse.Namespace) -> int:
    from airis.app.grafana import DEFAULT_DIR, write

    paths = write(args.out or DEFAULT_DIR)
    console.print(f"dashboards write: {len(paths)} dashboards → {paths[0].parent}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rich.table import Table

    from airis.app.grafana import DASHBOARDS
    from airis.app.grafana.check import check_dashboards, data_range
    from airis.settings import Settings
    from airis.sinks.clickhouse_store import open_store

    store = open_store(Settings().store)
    try:
        start, end = data_range(store, args.start, args.end)
        boards = {name: build() for name, build in DASHBOARDS.items()}
        checks = check_dashboards(store, boards, start, end)
    finally:
        store.close()
    table = Table(title=f"dashboard queries, {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC")
    for column in ("dashboard", "panel", "query", "rows", "ms", "problem"):
        table.add_column(column, justify="right" if column in ("rows", "ms") else "left")
    for c in checks:
        table.add_row(c.dashboard, c.panel, c.ref_id, f"{c.rows:,}", f"{c.ms:.1f}", c.problem or "")
    from rich.console import Console

    Console().print(table)
    times = sorted(c.ms for c in checks if c.problem is None)
    failed = [c for c in checks if c.problem is not None]
    if times:
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        console.print(
            f"dashboards check: {len(checks)} queries, {len(failed)} with problems; "
            f"p50 {times[len(times) // 2]:.1f} ms, p95 {p95:.1f} ms, max {times[-1]:.1f} ms"
        )
    if args.json:
        write_json(args.json, {"start": start, "end": end, "queries": [asdict(c) for c in checks]})
    return 1 if failed else 0
