"""`check_dashboards` runs each query as Grafana would and says when a panel could not draw
its result (against the embedded ClickHouse)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airis.app.grafana.check import check_dashboards, data_range, interval_for
from airis.app.grafana.panels import Dashboard, Panel, Query, Variable

DAY = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
# (the metrics table keeps 30 days: rows the tests insert are recent)


def _board(*panels: Panel, variables: tuple[Variable, ...] = ()) -> dict[str, Dashboard]:
    return {"b": Dashboard("b", "B", "", panels, variables)}


def test_a_panel_whose_result_it_cannot_draw_is_flagged(migrated_store):
    checks = check_dashboards(
        migrated_store,
        _board(
            Panel("timeseries", "good", (Query("SELECT now() AS time, 1.5 AS v"),)),
            Panel("timeseries", "no time", (Query("SELECT 1.5 AS v"),)),
            Panel("stat", "no number", (Query("SELECT 'x' AS s"),)),
            Panel("logs", "no body", (Query("SELECT now() AS time"),)),
            Panel("table", "broken", (Query("SELECT * FROM no_such_table"),)),
            Panel("nodeGraph", "graph", (Query("SELECT 'a' AS id", ref_id="edges"),)),
        ),
        *DAY,
    )
    problems = {c.panel: c.problem for c in checks}
    assert problems["good"] is None and checks[0].rows == 1
    assert "time and a number" in problems["no time"]
    assert "number column" in problems["no number"]
    assert "body" in problems["no body"]
    assert "UNKNOWN_TABLE" in problems["broken"] or "no_such_table" in problems["broken"]
    assert "['source', 'target']" in problems["graph"]


def test_variables_come_from_their_queries_and_a_repeated_panel_runs_per_value(migrated_store):
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    rows = [(at, "api", "cpu", 1.0), (at, "db", "cpu", 2.0), (at, "db", "disk", 3.0)]
    migrated_store.insert_columns(
        "metrics", ["ts", "service", "signal", "value"], list(zip(*rows, strict=True))
    )
    service = Variable("service", "S", "SELECT DISTINCT service FROM metrics ORDER BY service")
    signal = Variable(
        "signal",
        "Sig",
        "SELECT DISTINCT signal FROM metrics WHERE service = '${service}' ORDER BY signal",
        multi=True,
    )
    panel = Panel(
        "stat",
        "${signal}",
        (
            Query(
                "SELECT sum(value) AS v FROM metrics WHERE service = '${service}' "
                "AND signal = '${signal}' AND $__timeFilter(ts)"
            ),
        ),
        repeat="signal",
    )
    day = at - timedelta(hours=12), at + timedelta(hours=12)
    checks = check_dashboards(migrated_store, _board(panel, variables=(service, signal)), *day)
    panels = [c for c in checks if c.panel == "${signal}"]
    assert [c.problem for c in checks] == [None] * len(checks)
    # the single-value variable takes its first value, api; api has one signal, cpu
    assert len(panels) == 1 and "service = 'api' AND signal = 'cpu'" in panels[0].sql
    assert panels[0].rows == 1
    assert data_range(migrated_store) == (at, at + timedelta(seconds=1))


def test_the_interval_follows_the_range_as_grafana_picks_it():
    assert interval_for(*DAY) == 300  # 86.4 s wanted: the next nice step
    assert interval_for(DAY[0], DAY[0].replace(hour=1)) == 5
