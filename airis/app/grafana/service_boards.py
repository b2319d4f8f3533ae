"""The dashboards of services: overview, topology, forecasts and capacity, logs and traces.

Every query filters on its table's ``ORDER BY`` prefix (service, then time) so that a month of
data reads only the granules of the chosen services and range.
"""

from __future__ import annotations

from airis.app.grafana.panels import Annotation, Dashboard, Panel, Query, Variable

__all__ = ["capacity", "logs_and_traces", "service_overview", "topology"]

SERVICE = Variable(
    "service",
    "Service",
    "SELECT DISTINCT service FROM metrics WHERE $__timeFilter(ts) ORDER BY service",
)
SERVICES = Variable(
    "services",
    "Services",
    "SELECT DISTINCT service FROM metrics WHERE $__timeFilter(ts) ORDER BY service",
    multi=True,
    include_all=True,
)
SIGNALS = Variable(
    "signal",
    "Signal",
    "SELECT DISTINCT signal FROM metrics WHERE service = '${service}' AND $__timeFilter(ts) "
    "ORDER BY signal",
    multi=True,
    include_all=True,
)
#: Alerts of the chosen service as annotations: fired at ``time``, resolved at ``timeEnd``.
ALERTS = Annotation(
    "Alerts",
    """
    SELECT starts_at AS time, ifNull(ends_at, starts_at) AS timeEnd,
           concat(signal, ' ', kind, ' (', severity, '): ', summary) AS text,
           [service, signal, severity] AS tags
    FROM alerts FINAL
    WHERE service = '${service}' AND $__timeFilter(starts_at) AND status = 'firing'
    """,
)


def _band(high: str, low: str, opacity: int, colour: str) -> tuple[dict, dict]:
    """Overrides that fill from series ``high`` down to ``low``, neither drawn as a line."""
    fixed = {"id": "color", "value": {"mode": "fixed", "fixedColor": colour}}
    return (
        {
            "matcher": {"id": "byName", "options": high},
            "properties": [
                {"id": "custom.fillBelowTo", "value": low},
                {"id": "custom.lineWidth", "value": 0},
                {"id": "custom.fillOpacity", "value": opacity},
                fixed,
            ],
        },
        {
            "matcher": {"id": "byName", "options": low},
            "properties": [{"id": "custom.lineWidth", "value": 0}, fixed],
        },
    )


#: Series drawn as bands (the forecast's ``lower`` → ``upper``, the detector's
#: ``expected_low`` → ``expected_high``) and as red points (``anomaly``).
BAND = (
    *_band("upper", "lower", 20, "blue"),
    *_band("expected_high", "expected_low", 25, "orange"),
    {
        "matcher": {"id": "byName", "options": "anomaly"},
        "properties": [
            {"id": "custom.drawStyle", "value": "points"},
            {"id": "custom.pointSize", "value": 9},
            {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
        ],
    },
)

# One signal of one service per interval: the observed mean, the one-step-ahead forecast
# interval made for that time (the smallest horizon), the anomalous windows' values and the
# band the detector expected there.
_SIGNAL_WITH_BAND = """
SELECT time,
       avgOrNullIf(v, k = 'observed') AS observed,
       avgOrNullIf(v, k = 'lower') AS lower,
       avgOrNullIf(v, k = 'upper') AS upper,
       minOrNullIf(v, k = 'expected_low') AS expected_low,
       maxOrNullIf(v, k = 'expected_high') AS expected_high,
       maxOrNullIf(v, k = 'anomaly') AS anomaly
FROM (
    SELECT $__timeInterval(ts) AS time, 'observed' AS k, value AS v
    FROM metrics
    WHERE service = '${service}' AND signal = '${signal}' AND $__timeFilter(ts)
    UNION ALL
    SELECT $__timeInterval(at) AS time, bound.1 AS k, bound.2 AS v
    FROM (
        SELECT ts + toIntervalSecond(horizon_seconds) AS at,
               arrayJoin([('lower', lower), ('upper', upper)]) AS bound
        FROM forecasts
        WHERE service = '${service}' AND signal = '${signal}' AND $__timeFilter(ts)
          AND horizon_seconds = (
              SELECT min(horizon_seconds) FROM forecasts
              WHERE service = '${service}' AND signal = '${signal}')
    )
    UNION ALL
    SELECT $__timeInterval(window_start) AS time, value.1 AS k, value.2 AS v
    FROM anomalies
    ARRAY JOIN [('anomaly', observed), ('expected_low', lower), ('expected_high', upper)]
          AS value
    WHERE service = '${service}' AND signal = '${signal}' AND $__timeFilter(window_start)
)
GROUP BY time
ORDER BY time
"""


def _last(signal: str, title: str, unit: str) -> Panel:
    return Panel(
        "stat",
        title,
        (
            Query(
                f"""
                SELECT argMax(value, ts) AS {signal} FROM metrics
                WHERE service = '${{service}}' AND signal = '{signal}' AND $__timeFilter(ts)
                """
            ),
        ),
        width=4,
        height=4,
        unit=unit,
    )


def service_overview() -> Dashboard:
    return Dashboard(
        "airis-service-overview",
        "AIRIS-MON · Service overview",
        "One service's signals with the expected band and the anomalies drawn on them; "
        "its alerts as annotations.",
        (
            Panel(
                "stat",
                "Open alerts",
                (
                    Query(
                        """
                        SELECT uniqExactIf((fingerprint, starts_at), status = 'firing')
                             - uniqExactIf((fingerprint, starts_at), status = 'resolved')
                               AS open_alerts
                        FROM alerts FINAL
                        WHERE service = '${service}' AND $__timeFilter(starts_at)
                        """
                    ),
                ),
                width=4,
                height=4,
            ),
            Panel(
                "stat",
                "Anomalous windows",
                (
                    Query(
                        """
                        SELECT count() AS anomalous_windows FROM anomalies
                        WHERE service = '${service}' AND $__timeFilter(window_start)
                        """
                    ),
                ),
                width=4,
                height=4,
            ),
            _last("request_rate", "Requests (last)", "reqps"),
            _last("error_rate", "Errors (last)", "percentunit"),
            _last("latency_p99", "Latency p99 (last)", "ms"),
            _last("cpu", "CPU (last)", "percent"),
            Panel(
                "timeseries",
                "${signal}",
                (Query(_SIGNAL_WITH_BAND),),
                repeat="signal",
                description="Observed (mean per interval), the forecast interval for that time "
                "made one step earlier (blue), and the anomalous windows (red) with the band "
                "the detector expected there (orange).",
                overrides=BAND,
                custom={"spanNulls": True, "fillOpacity": 0},
            ),
        ),
        variables=(SERVICE, SIGNALS),
        annotations=(ALERTS,),
    )


def topology() -> Dashboard:
    return Dashboard(
        "airis-topology",
        "AIRIS-MON · Topology",
        "The service graph from the traces' caller → callee edges; a node's arc is red when "
        "the service had anomalous windows in the range.",
        (
            Panel(
                "nodeGraph",
                "Service graph",
                (
                    Query(
                        """
                        SELECT svc AS id, svc AS title,
                               ifNull(a.windows, 0) AS mainstat,
                               if(ifNull(a.windows, 0) > 0, 1, 0) AS arc__anomalous,
                               if(ifNull(a.windows, 0) > 0, 0, 1) AS arc__healthy
                        FROM (
                            SELECT DISTINCT arrayJoin([caller, callee]) AS svc
                            FROM service_edges WHERE $__timeFilter(window_start)
                        ) AS s
                        LEFT JOIN (
                            SELECT service, count() AS windows FROM anomalies
                            WHERE $__timeFilter(window_start) GROUP BY service
                        ) AS a ON a.service = s.svc
                        """,
                        ref_id="nodes",
                    ),
                    Query(
                        """
                        SELECT concat(caller, '->', callee) AS id, caller AS source,
                               callee AS target, sum(calls) AS mainstat,
                               round(max(p95_ms), 1) AS secondarystat
                        FROM service_edges WHERE $__timeFilter(window_start)
                        GROUP BY caller, callee
                        """,
                        ref_id="edges",
                    ),
                ),
                width=24,
                height=14,
                overrides=(
                    {
                        "matcher": {"id": "byName", "options": "arc__anomalous"},
                        "properties": [
                            {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}}
                        ],
                    },
                    {
                        "matcher": {"id": "byName", "options": "arc__healthy"},
                        "properties": [
                            {"id": "color", "value": {"mode": "fixed", "fixedColor": "green"}}
                        ],
                    },
                ),
            ),
            Panel(
                "table",
                "Dependencies",
                (
                    Query(
                        """
                        SELECT caller, callee, sum(calls) AS total_calls,
                               sum(errors) AS failed_calls,
                               round(failed_calls / greatest(total_calls, 1), 4) AS error_rate,
                               round(quantile(0.5)(p95_ms), 1) AS typical_p95_ms,
                               round(max(p99_ms), 1) AS worst_p99_ms
                        FROM service_edges WHERE $__timeFilter(window_start)
                        GROUP BY caller, callee ORDER BY total_calls DESC
                        """
                    ),
                ),
                width=12,
                height=10,
            ),
            Panel(
                "timeseries",
                "Edge error rate",
                (
                    Query(
                        """
                        SELECT $__timeInterval(window_start) AS time,
                               concat(caller, ' → ', callee) AS edge,
                               sum(errors) / greatest(sum(calls), 1) AS error_rate
                        FROM service_edges WHERE $__timeFilter(window_start)
                        GROUP BY time, edge ORDER BY time
                        """,
                    ),
                ),
                width=12,
                height=10,
                unit="percentunit",
            ),
        ),
    )


def capacity() -> Dashboard:
    forecast_signals = Variable(
        "signal",
        "Signal",
        "SELECT DISTINCT signal FROM forecasts WHERE service = '${service}' "
        "AND $__timeFilter(ts) ORDER BY signal",
        multi=True,
        include_all=True,
    )
    return Dashboard(
        "airis-capacity",
        "AIRIS-MON · Forecasts and capacity",
        "Forecasts with their intervals, resource-exhaustion warnings and replica advice.",
        (
            Panel(
                "timeseries",
                "${signal}: observed and forecast",
                (Query(_SIGNAL_WITH_BAND),),
                repeat="signal",
                overrides=BAND,
                custom={"spanNulls": True, "fillOpacity": 0},
            ),
            Panel(
                "table",
                "Exhaustion warnings",
                (
                    Query(
                        """
                        SELECT ts, service, signal, round(value, 1) AS level,
                               threshold, round(eta_seconds / 60) AS eta_minutes,
                               round(eta_low_seconds / 60) AS eta_low_minutes,
                               round(confidence, 3) AS confidence
                        FROM capacity_warnings
                        WHERE $__timeFilter(ts) ORDER BY ts DESC
                        """
                    ),
                ),
                width=12,
                height=8,
            ),
            Panel(
                "table",
                "Replica advice",
                (
                    Query(
                        """
                        SELECT ts, service, signal, action, current_replicas,
                               desired_replicas, round(metric, 1) AS forecast_upper, target
                        FROM scaling_recommendations
                        WHERE $__timeFilter(ts) ORDER BY ts DESC
                        """
                    ),
                ),
                width=12,
                height=8,
            ),
        ),
        variables=(SERVICE, forecast_signals),
        annotations=(ALERTS,),
    )


def logs_and_traces() -> Dashboard:
    services = "${services:singlequote}"
    return Dashboard(
        "airis-logs-traces",
        "AIRIS-MON · Logs and traces",
        "Log volume and templates (new and rare ones), slow traces and span latency, from "
        "the OpenTelemetry-shaped otel_logs and otel_traces tables.",
        (
            Panel(
                "timeseries",
                "Log lines by severity",
                (
                    Query(
                        f"""
                        SELECT $__timeInterval(Timestamp) AS time, count() AS lines,
                               countIf(SeverityText IN ('WARN', 'WARNING')) AS warnings,
                               countIf(SeverityText IN ('ERROR', 'FATAL')) AS errors
                        FROM otel_logs
                        WHERE $__timeFilter(Timestamp) AND ServiceName IN ({services})
                        GROUP BY time ORDER BY time
                        """,
                    ),
                ),
            ),
            Panel(
                "timeseries",
                "Lines of new and rare templates",
                (
                    Query(
                        f"""
                        SELECT $__timeInterval(ts) AS time,
                               sumIf(value, signal = 'log_new_templates') AS new_template_lines,
                               sumIf(value, signal = 'log_rare_lines') AS rare_template_lines
                        FROM metrics
                        WHERE service IN ({services})
                          AND signal IN ('log_new_templates', 'log_rare_lines')
                          AND $__timeFilter(ts)
                        GROUP BY time ORDER BY time
                        """,
                    ),
                ),
            ),
            Panel(
                "table",
                "Templates first seen in the range",
                (
                    Query(
                        f"""
                        SELECT first_seen, service, template, count AS lines, last_seen
                        FROM log_templates FINAL
                        WHERE service IN ({services}) AND $__timeFilter(first_seen)
                        ORDER BY first_seen DESC LIMIT 200
                        """
                    ),
                ),
                width=24,
            ),
            Panel(
                "timeseries",
                "Span latency p95 by service",
                (
                    Query(
                        f"""
                        SELECT $__timeInterval(Timestamp) AS time, ServiceName AS service,
                               quantile(0.95)(Duration) / 1e6 AS p95_ms
                        FROM otel_traces
                        WHERE ServiceName IN ({services}) AND $__timeFilter(Timestamp)
                        GROUP BY time, service ORDER BY time
                        """,
                    ),
                ),
                unit="ms",
            ),
            Panel(
                "table",
                "Slowest traces",
                (
                    Query(
                        f"""
                        SELECT Timestamp AS started, TraceId, ServiceName AS service,
                               SpanName AS root_span, round(Duration / 1e6, 1) AS duration_ms,
                               StatusCode AS status
                        FROM otel_traces
                        WHERE ServiceName IN ({services}) AND $__timeFilter(Timestamp)
                          AND ParentSpanId = ''
                        ORDER BY Duration DESC LIMIT 25
                        """
                    ),
                ),
            ),
            Panel(
                "logs",
                "Error logs",
                (
                    Query(
                        f"""
                        SELECT Timestamp AS timestamp, Body AS body, SeverityText AS level,
                               ServiceName AS service
                        FROM otel_logs
                        WHERE $__timeFilter(Timestamp) AND ServiceName IN ({services})
                          AND SeverityText IN ('ERROR', 'FATAL')
                        ORDER BY Timestamp DESC LIMIT 500
                        """,
                    ),
                ),
                width=24,
                height=10,
            ),
        ),
        variables=(SERVICES,),
    )
