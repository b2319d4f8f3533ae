"""``airis report incident ID | demo``: a self-contained HTML page to look at."""

from __future__ import annotations

import argparse
from pathlib import Path

from airis.cli.common import console


def register(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help="an HTML page of an incident or of the demo")
    actions = report.add_subparsers(metavar="WHAT")
    incident = actions.add_parser("incident", help="one incident of the configured store")
    incident.add_argument("incident_id", metavar="ID")
    incident.add_argument("--out", type=Path, help="default: $AIRIS_DATA_DIR/reports/ID.html")
    incident.set_defaults(run=_incident)
    demo = actions.add_parser("demo", help="the whole run `airis demo` stored last")
    demo.add_argument(
        "--data-dir", type=Path, help="the demo's store (default $AIRIS_DATA_DIR/demo)"
    )
    demo.add_argument("--out", type=Path, help="default: DATA_DIR/report.html")
    demo.set_defaults(run=_demo)


def _incident(args: argparse.Namespace) -> int:
    from airis.app.html_report.write import write_incident_report
    from airis.settings import Settings

    settings = Settings()
    out = args.out or settings.data_dir / "reports" / f"{args.incident_id}.html"
    write_incident_report(settings, args.incident_id, out)
    console.print(f"report: incident {args.incident_id} → {out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from airis.app.html_report.write import write_demo_report
    from airis.settings import Settings

    base = Settings()
    data_dir = args.data_dir or base.data_dir / "demo"
    if not data_dir.exists():
        raise FileNotFoundError(f"no demo store in {data_dir}: run `airis demo` first")
    settings = base.model_copy(update={"data_dir": data_dir, "chdb_path": data_dir / "chdb",
                                       "qdrant_path": None, "clickhouse_url": None})  # fmt: skip
    out = args.out or data_dir / "report.html"
    write_demo_report(settings, out)
    console.print(f"report: the demo → {out}")
    return 0
