"""Every query of every dashboard run against a store, as Grafana would send it.

For a time range, `check_dashboards` fills each dashboard's variables from their own queries
(every value of a multi-value variable; the first of a single-value one; a repeated panel once
per value, as Grafana repeats it), expands the macros (`airis.app.grafana.macros`) and runs
the panel, variable and annotation queries. Each `QueryCheck` says how long the query took,
what it returned and whether that is what its panel needs to draw (`Panel.needs`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from airis.app.grafana.macros import expand
from airis.app.grafana.panels import Dashboard, Panel, Query
from airis.sinks.clickhouse_store import ClickHouseStore

__all__ = ["QueryCheck", "check_dashboards", "data_range", "interval_for"]

_NUMBER = re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+|Decimal)")
_TIME = re.compile(r"^(Nullable\()?(DateTime|Date)")
#: Grafana's interval choices (seconds): the range over about 1,000 points, rounded up.
_NICE = (1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 10800, 21600, 43200, 86400)


@dataclass
class QueryCheck:
    """One query as run: where it comes from, its SQL, result and verdict."""

    dashboard: str
    panel: str
    ref_id: str
    sql: str
    ms: float = 0.0
    rows: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    problem: str | None = None


def data_range(
    store: ClickHouseStore, start: datetime | None = None, end: datetime | None = None
) -> tuple[datetime, datetime]:
    """``start`` and ``end``, each defaulting to the bounds of the stored metric points (the
    last day before now when there are none)."""
    if start is None or end is None:
        row = store.query("SELECT count() AS n, toUnixTimestamp(min(ts)) AS a, "
                          "toUnixTimestamp(max(ts)) + 1 AS b FROM metrics")[0]  # fmt: skip
        now = datetime.now(UTC)
        first = datetime.fromtimestamp(row["a"], UTC) if row["n"] else now - timedelta(days=1)
        last = datetime.fromtimestamp(row["b"], UTC) if row["n"] else now
        start, end = start or first, end or last
    if end <= start:
        raise ValueError(f"the range ends ({end.isoformat()}) before it starts")
    return start, end


def interval_for(start: datetime, end: datetime, points: int = 1000) -> int:
    """The interval Grafana would pick for ``points`` points over the range (seconds)."""
    wanted = (end - start).total_seconds() / points
    return next((n for n in _NICE if n >= wanted), _NICE[-1])


def check_dashboards(
    store: ClickHouseStore,
    dashboards: Mapping[str, Dashboard],
    start: datetime,
    end: datetime,
) -> list[QueryCheck]:
    """Run every query of ``dashboards`` over ``[start, end]`` (see the module docstring)."""
    interval = interval_for(start, end)
    out: list[QueryCheck] = []
    for name, board in dashboards.items():
        values: dict[str, list[str]] = {}
        for variable in board.variables:
            query = Query(variable.sql)
            check, rows = _run(
                store, name, f"${variable.name}", query, start, end, interval, values
            )
            out.append(check)
            found = [str(next(iter(row.values()))) for row in rows if row]
            values[variable.name] = found if variable.multi else found[:1]
        for annotation in board.annotations:
            query = Query(annotation.sql)
            out.append(_run(store, name, annotation.name, query, start, end, interval, values)[0])
        for panel in board.panels:
            for chosen in _repeats(panel, values):
                checks = [
                    _run(store, name, panel.title, q, start, end, interval, chosen)[0]
                    for q in panel.queries
                ]
                _judge(panel, checks)
                out += checks
    return out


def _repeats(panel: Panel, values: dict[str, list[str]]) -> Iterator[dict[str, list[str]]]:
    if panel.repeat is None:
        yield values
        return
    for value in values.get(panel.repeat, []):
        yield {**values, panel.repeat: [value]}


def _run(
    store: ClickHouseStore,
    dashboard: str,
    panel: str,
    query: Query,
    start: datetime,
    end: datetime,
    interval: int,
    values: Mapping[str, Sequence[str]],
) -> tuple[QueryCheck, list[dict[str, Any]]]:
    check = QueryCheck(dashboard, panel, query.ref_id, "")
    rows: list[dict[str, Any]] = []
    try:
        check.sql = expand(query.sql, start, end, interval, values)
        began = time.perf_counter()
        rows = store.query(check.sql)
        check.ms = (time.perf_counter() - began) * 1000
        check.rows = len(rows)
        described = store.query(f"DESCRIBE TABLE ({check.sql})")
        check.columns = {row["name"]: row["type"] for row in described}
    except Exception as exc:  # a check reports every failure instead of stopping at one
        check.problem = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    return check, rows


def _judge(panel: Panel, checks: list[QueryCheck]) -> None:
    """Set ``problem`` where a query's columns cannot draw ``panel`` (see `Panel.needs`)."""
    for check in checks:
        if check.problem is not None:
            continue
        types = list(check.columns.values())
        numbers = any(_NUMBER.match(t) for t in types)
        times = any(_TIME.match(t) for t in types)
        if panel.needs == "time" and not (times and numbers):
            check.problem = f"a time series needs a time and a number column, got {types}"
        elif panel.needs == "number" and not numbers:
            check.problem = f"needs a number column, got {types}"
        elif panel.needs == "logs" and not (times and "body" in check.columns):
            check.problem = "a logs panel needs a time and a body column"
        elif panel.needs == "graph":
            wanted = {"nodes": {"id", "title"}, "edges": {"id", "source", "target"}}
            missing = wanted.get(check.ref_id, {"id"}) - set(check.columns)
            if missing:
                check.problem = f"the node graph's {check.ref_id} frame lacks {sorted(missing)}"
