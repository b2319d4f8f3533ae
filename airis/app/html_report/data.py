"""What a report shows, read from the store (and the incident memory) as plain JSON values.

`incident_view` gathers one incident: its row, its ranked root-cause candidates with their
evidence, the signals it involved around it (observed values, the expected band where the
detector or the forecaster gave one, the anomalous windows), the call graph among its services
and their neighbours, the alerts of that time, and similar past incidents. `demo_view` gathers
the whole store: its totals, the alert timeline, the service graph, and every incident's view.
Times are epoch seconds (what the page's charts take).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from airis.models.model_events import MODEL_SIGNAL_PREFIX
from airis.sinks.clickhouse_store import ClickHouseStore, quote_literal

__all__ = ["MARGIN", "MAX_INCIDENTS", "MAX_SIGNALS", "demo_view", "incident_view"]

#: How long before and after an incident its signals are drawn.
MARGIN = timedelta(minutes=30)
#: The incident's signals drawn at most (the most anomalous first).
MAX_SIGNALS = 6
#: Incidents a whole-store page shows at most (the latest): each adds its charts' points.
MAX_INCIDENTS = 50

Similar = Callable[[str], list[dict[str, Any]]]


def incident_view(
    store: ClickHouseStore, incident_id: str, similar: Similar | None = None
) -> dict[str, Any]:
    """One incident's view (see the module docstring); ValueError if it is not stored."""
    rows = store.query(
        "SELECT id, status, toUnixTimestamp64Milli(started_at) / 1000 AS start, "
        "toUnixTimestamp64Milli(ifNull(ended_at, updated_at)) / 1000 AS end, services, "
        "signals, anomaly_count, root_cause, summary, log_templates "
        f"FROM incidents FINAL WHERE id = {quote_literal(incident_id)}"
    )
    if not rows:
        raise ValueError(f"no incident {incident_id!r} in the store")
    incident = rows[0]
    margin = MARGIN.total_seconds()
    start, end = incident["start"] - margin, incident["end"] + margin
    services = list(incident["services"])
    return {
        "incident": incident,
        "candidates": store.query(
            "SELECT rank, service, score, evidence, features FROM rca_candidates FINAL "
            f"WHERE incident_id = {quote_literal(incident_id)} ORDER BY rank"
        ),
        "signals": _signals(store, incident["signals"], start, end),
        "graph": _graph(store, start, end, focus=services, root=incident["root_cause"]),
        "alerts": _alerts(store, start, end, services),
        "similar": _similar(similar, incident_id),
        "range": [start, end],
    }


def demo_view(store: ClickHouseStore, similar: Similar | None = None) -> dict[str, Any]:
    """The whole store's view: totals, alerts, the service graph, every incident."""
    bounds = store.query(
        "SELECT count() AS n, toUnixTimestamp(min(ts)) AS start, "
        "toUnixTimestamp(max(ts)) AS end FROM metrics"
    )[0]
    if not bounds["n"]:
        raise ValueError("the store holds no metric points: run `airis demo` first")
    start, end = float(bounds["start"]), float(bounds["end"])
    totals = {
        table: store.query(f"SELECT count() AS n FROM {table}")[0]["n"]
        for table in ("metrics", "otel_logs", "otel_traces", "anomalies")
    }
    # An incident is rewritten as it grows: count each once.
    totals["incidents"] = store.query("SELECT uniqExact(id) AS n FROM incidents")[0]["n"]
    totals["alerts"] = store.query("SELECT count() AS n FROM alerts WHERE status = 'firing'")[0][
        "n"
    ]
    latest = store.query(
        f"SELECT id FROM incidents FINAL ORDER BY started_at DESC LIMIT {MAX_INCIDENTS}"
    )
    ids = [r["id"] for r in reversed(latest)]
    return {
        "range": [start, end],
        "totals": totals,
        "incidents_left_out": max(0, totals["incidents"] - len(ids)),
        "alerts": _alerts(store, start, end, None),
        "graph": _graph(store, start, end, focus=None, root=None),
        "incidents": [incident_view(store, i, similar) for i in ids],
    }


def _signals(
    store: ClickHouseStore, names: Sequence[str], start: float, end: float
) -> list[dict[str, Any]]:
    """The incident's ``service/signal`` series, most anomalous first (at most MAX_SIGNALS)."""
    # A model's anomalies (``service/model_<name>``) have a score, not a series to draw.
    pairs = [tuple(n.split("/", 1)) for n in names if "/" in n]
    pairs = [(s, g) for s, g in pairs if not g.startswith(MODEL_SIGNAL_PREFIX)]
    if not pairs:
        return []
    wanted = ", ".join(f"({quote_literal(s)}, {quote_literal(g)})" for s, g in pairs)
    window = _between("window_start", start, end)
    ranked = store.query(
        "SELECT service, signal, max(score) AS score, count() AS windows FROM anomalies "
        f"WHERE (service, signal) IN ({wanted}) AND {window} "
        "GROUP BY service, signal ORDER BY score DESC, windows DESC, service, signal "
        f"LIMIT {MAX_SIGNALS}"
    )
    if not ranked:
        return []
    # Three queries for all the drawn signals (not three per signal): each grouped by signal.
    drawn = ", ".join(
        f"({quote_literal(r['service'])}, {quote_literal(r['signal'])})" for r in ranked
    )
    which = f"(service, signal) IN ({drawn})"
    points = _by_signal(
        store.query(
            "SELECT service, signal, toUnixTimestamp64Milli(ts) / 1000 AS t, avg(value) AS v "
            f"FROM metrics WHERE {which} AND {_between('ts', start, end)} "
            "GROUP BY service, signal, t ORDER BY service, signal, t"
        )
    )
    flagged = _by_signal(
        store.query(
            "SELECT service, signal, toUnixTimestamp64Milli(window_start) / 1000 AS t, "
            "max(observed) AS v, min(lower) AS lo, max(upper) AS hi, max(score) AS score "
            f"FROM anomalies WHERE {which} AND {window} "
            "GROUP BY service, signal, t ORDER BY service, signal, t"
        )
    )
    forecast = _by_signal(
        store.query(
            "SELECT service, signal, (toUnixTimestamp64Milli(ts) / 1000) + horizon_seconds AS t, "
            f"avg(lower) AS lo, avg(upper) AS hi FROM forecasts WHERE {which} AND "
            f"{_between('ts', start, end)} AND (service, signal, horizon_seconds) IN ("
            f"SELECT service, signal, min(horizon_seconds) FROM forecasts WHERE {which} "
            "GROUP BY service, signal) GROUP BY service, signal, t ORDER BY service, signal, t"
        )
    )
    out = []
    for row in ranked:
        key = (row["service"], row["signal"])
        out.append({
            "service": row["service"],
            "signal": row["signal"],
            "score": row["score"],
            "points": [[p["t"], p["v"]] for p in points.get(key, ())],
            "anomalies": [[a["t"], a["v"], a["lo"], a["hi"]] for a in flagged.get(key, ())],
            "forecast": [[f["t"], f["lo"], f["hi"]] for f in forecast.get(key, ())],
        })  # fmt: skip
    return out


def _by_signal(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Rows grouped by their ``(service, signal)``, in order."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault((row["service"], row["signal"]), []).append(row)
    return out


def _graph(
    store: ClickHouseStore, start: float, end: float, focus: list[str] | None, root: str | None
) -> dict[str, Any]:
    """Call edges in the range (those touching ``focus`` only, when given), nodes laid out in
    layers by call depth, each marked anomalous if it had anomalous windows in the range."""
    where = _between("window_start", start, end)
    if focus:
        names = ", ".join(quote_literal(s) for s in focus)
        where += f" AND (caller IN ({names}) OR callee IN ({names}))"
    edges = store.query(
        "SELECT caller, callee, sum(calls) AS calls, sum(errors) AS errors, "
        f"max(p95_ms) AS p95_ms FROM service_edges WHERE {where} "
        "GROUP BY caller, callee ORDER BY caller, callee"
    )
    anomalous = {
        r["service"]: r["n"]
        for r in store.query(
            "SELECT service, count() AS n FROM anomalies "
            f"WHERE {_between('window_start', start, end)} GROUP BY service"
        )
    }
    nodes = sorted({e["caller"] for e in edges} | {e["callee"] for e in edges} | set(focus or ()))
    depth = _depths(nodes, [(e["caller"], e["callee"]) for e in edges])
    return {
        "nodes": [
            {
                "id": n,
                "depth": depth[n],
                "anomalous_windows": anomalous.get(n, 0),
                "involved": focus is None or n in focus,
                "root_cause": n == root,
            }
            for n in nodes
        ],
        "edges": edges,
    }


def _depths(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each node's layer: the longest call path reaching it from a node nobody calls (cycles
    are cut where they close)."""
    callers: dict[str, list[str]] = {n: [] for n in nodes}
    for caller, callee in edges:
        if caller != callee:
            callers[callee].append(caller)
    depth: dict[str, int] = {}

    def visit(node: str, path: frozenset[str]) -> int:
        if node not in depth:
            above = [visit(c, path | {node}) for c in callers[node] if c not in path]
            depth[node] = 1 + max(above) if above else 0
        return depth[node]

    for node in nodes:
        visit(node, frozenset())
    return depth


def _alerts(
    store: ClickHouseStore, start: float, end: float, services: list[str] | None
) -> list[dict[str, Any]]:
    where = f"status = 'firing' AND {_between('starts_at', start, end)}"
    if services:
        where += f" AND service IN ({', '.join(quote_literal(s) for s in services)})"
    return store.query(
        "SELECT service, signal, kind, severity, score, summary, "
        "toUnixTimestamp64Milli(starts_at) / 1000 AS start, "
        "toUnixTimestamp64Milli(ifNull(ends_at, starts_at)) / 1000 AS end "
        f"FROM alerts FINAL WHERE {where} ORDER BY starts_at"
    )


def _similar(similar: Similar | None, incident_id: str) -> dict[str, Any]:
    if similar is None:
        return {"error": "no incident memory was opened", "incidents": []}
    try:
        return {"error": None, "incidents": similar(incident_id)}
    except Exception as exc:  # the page says why instead of failing the whole report
        return {"error": f"{type(exc).__name__}: {exc}", "incidents": []}


def _between(column: str, start: float, end: float) -> str:
    return (
        f"{column} >= fromUnixTimestamp64Milli({int(start * 1000)}) "
        f"AND {column} <= fromUnixTimestamp64Milli({int(end * 1000)})"
    )


def similar_from(memory: Any, k: int = 5) -> Similar:
    """`Similar` over an `IncidentMemory`: up to ``k`` past incidents as JSON values."""

    def similar(incident_id: str) -> list[dict[str, Any]]:
        return [
            {
                "id": s.incident_id,
                "similarity": s.similarity,
                "services": s.services,
                "root_cause": s.root_cause,
                "start": s.started_at.timestamp() if isinstance(s.started_at, datetime) else None,
                "summary": s.summary,
            }
            for s in memory.similar(incident_id, k=k)
        ]

    return similar
