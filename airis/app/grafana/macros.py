"""A panel's SQL as Grafana and its ClickHouse plugin send it to ClickHouse.

Grafana first replaces the dashboard's variables; then the plugin (v4, ``pkg/macros``)
expands its macros for the panel's time range and interval. `expand` does both, the way they
do, for the variable forms our dashboards use: ``${name}`` (one value, as is) and
``${name:singlequote}`` (every selected value quoted, comma-separated). Anything else that
looks like a variable or a macro is refused, so a dashboard cannot rely on a form the checks
never ran.

>>> from datetime import UTC, datetime
>>> day = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
>>> expand("SELECT $__timeInterval(ts) AS time", *day, 60)
'SELECT toStartOfInterval(toDateTime(ts), INTERVAL 60 second) AS time'
>>> expand("WHERE $__timeFilter(ts)", *day, 60)
'WHERE ts >= toDateTime(1767225600) AND ts <= toDateTime(1767312000)'
>>> expand("service IN (${service:singlequote})", *day, 60, {"service": ["api", "db"]})
"service IN ('api','db')"
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

__all__ = ["expand"]

_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")
_MACRO = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")


def expand(
    sql: str,
    start: datetime,
    end: datetime,
    interval_seconds: float,
    variables: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """``sql`` with its variables replaced and its macros expanded (see the module doc)."""
    values = variables or {}

    def variable(match: re.Match[str]) -> str:
        name, form = match.group(1) or match.group(3), match.group(2)
        if name not in values:
            raise ValueError(f"unknown variable ${name} in {sql!r}")
        chosen = list(values[name])
        if form == "singlequote":
            return ",".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in chosen)
        if form is not None or match.group(3) is not None or len(chosen) != 1:
            raise ValueError(f"use ${{{name}}} for one value, ${{{name}:singlequote}} for many")
        return chosen[0]

    macros = _macros(start, end, interval_seconds)

    def macro(match: re.Match[str]) -> str:
        name, args = match.group(1), match.group(2)
        if name not in macros:
            raise ValueError(f"unknown macro $__{name} in {sql!r}")
        return macros[name]([a.strip() for a in args.split(",")] if args else [])

    return _MACRO.sub(macro, _VARIABLE.sub(variable, sql))


def _macros(start: datetime, end: datetime, interval: float) -> dict[str, Callable[..., str]]:
    seconds = max(int(interval), 1)
    millis = max(int(interval * 1000), 1)
    t0, t1 = f"toDateTime({int(start.timestamp())})", f"toDateTime({int(end.timestamp())})"
    m0 = f"fromUnixTimestamp64Milli({int(start.timestamp() * 1000)})"
    m1 = f"fromUnixTimestamp64Milli({int(end.timestamp() * 1000)})"
    d0, d1 = f"toDate('{start:%Y-%m-%d}')", f"toDate('{end:%Y-%m-%d}')"

    def one(build: Callable[[str], str]) -> Callable[[list[str]], str]:
        def apply(args: list[str]) -> str:
            if len(args) != 1:
                raise ValueError(f"expected 1 argument, received {len(args)}")
            return build(args[0])

        return apply

    def date_time(args: list[str]) -> str:
        if len(args) != 2:
            raise ValueError(f"expected 2 arguments, received {len(args)}")
        date, time = args
        return f"({date} >= {d0} AND {date} <= {d1}) AND ({time} >= {t0} AND {time} <= {t1})"

    return {
        "fromTime": lambda _: t0,
        "toTime": lambda _: t1,
        "fromTime_ms": lambda _: m0,
        "toTime_ms": lambda _: m1,
        "timeFilter": one(lambda c: f"{c} >= {t0} AND {c} <= {t1}"),
        "timeFilter_ms": one(lambda c: f"{c} >= {m0} AND {c} <= {m1}"),
        "dateFilter": one(lambda c: f"{c} >= {d0} AND {c} <= {d1}"),
        "dateTimeFilter": date_time,
        "dt": date_time,
        "timeInterval": one(
            lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {seconds} second)"
        ),
        "timeInterval_ms": one(
            lambda c: f"toStartOfInterval(toDateTime64({c}, 3), INTERVAL {millis} millisecond)"
        ),
        "interval_s": lambda _: str(seconds),
    }
