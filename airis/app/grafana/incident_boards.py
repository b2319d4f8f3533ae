"""The dashboards of what went wrong: alerts and incidents, one incident in detail, and the
health of the models and of the pipeline itself.

An alert belongs to an incident when its service/signal is one of the incident's signals and
it fired between the incident's start and end (the store keeps no other link).
"""

from __future__ import annotations

from airis.app.grafana.panels import Dashboard, Panel, Query, Variable

__all__ = ["alerts_and_incidents", "incident_detail", "pipeline_health"]

# Each incident's latest row and the alerts that fired inside it (joined on each of its
# services: ClickHouse joins on equalities).
_INCIDENT_ALERTS = """
SELECT i.id AS id, any(i.started_at) AS started_at, any(i.status) AS status,
       any(i.root_cause) AS root_cause, any(length(i.services)) AS services,
       any(i.anomaly_count) AS anomalous_windows,
       countIf(a.id != '' AND has(i.signals, concat(a.service, '/', a.signal))
               AND a.starts_at >= i.started_at
               AND a.starts_at <= ifNull(i.ended_at, i.updated_at)) AS alerts
FROM (
    SELECT *, arrayJoin(services) AS service FROM incidents FINAL
    WHERE $__timeFilter(started_at)
) AS i
LEFT JOIN (
    SELECT id, service, signal, starts_at FROM alerts FINAL
    WHERE status = 'firing' AND $__timeFilter(starts_at)
) AS a ON a.service = i.service
GROUP BY id
ORDER BY started_at DESC
"""


# An incident as a person names it: when it started and what most likely caused it.
_INCIDENT_NAME = "concat(formatDateTime(started_at, '%m-%d %H:%i'), ' ', root_cause)"


def _count(title: str, sql: str, width: int = 6) -> Panel:
    return Panel("stat", title, (Query(sql),), width=width, height=4)


def alerts_and_incidents() -> Dashboard:
    return Dashboard(
        "airis-alerts-incidents",
        "AIRIS-MON · Alerts and incidents",
        "Alerts over time, open and resolved, and how many alerts each incident groups "
        "(the noise an operator is spared).",
        (
            _count(
                "Alerts fired",
                "SELECT count() AS alerts FROM alerts FINAL "
                "WHERE status = 'firing' AND $__timeFilter(starts_at)",
            ),
            _count(
                "Still open",
                "SELECT uniqExactIf((fingerprint, starts_at), status = 'firing') "
                "- uniqExactIf((fingerprint, starts_at), status = 'resolved') AS open_alerts "
                "FROM alerts FINAL WHERE $__timeFilter(starts_at)",
            ),
            _count(
                "Incidents",
                "SELECT count() AS incidents FROM incidents FINAL WHERE $__timeFilter(started_at)",
            ),
            _count(
                "Alerts per incident",
                f"SELECT round(sum(alerts) / greatest(count(), 1), 1) AS alerts_per_incident "
                f"FROM ({_INCIDENT_ALERTS})",
            ),
            Panel(
                "timeseries",
                "Alerts fired by severity",
                (
                    Query(
                        """
                        SELECT $__timeInterval(starts_at) AS time,
                               countIf(severity = 'critical') AS critical,
                               countIf(severity = 'warning') AS warning,
                               countIf(severity NOT IN ('critical', 'warning')) AS other
                        FROM alerts FINAL
                        WHERE status = 'firing' AND $__timeFilter(starts_at)
                        GROUP BY time ORDER BY time
                        """,
                    ),
                ),
                width=24,
                custom={"drawStyle": "bars", "stacking": {"mode": "normal", "group": "A"}},
            ),
            Panel(
                "state-timeline",
                "Incidents: open → resolved",
                (
                    Query(
                        f"""
                        SELECT time, incident, state FROM (
                            SELECT started_at AS time, {_INCIDENT_NAME} AS incident, 1 AS state
                            FROM incidents FINAL WHERE $__timeFilter(started_at)
                            UNION ALL
                            SELECT assumeNotNull(ended_at) AS time, {_INCIDENT_NAME} AS incident,
                                   0 AS state
                            FROM incidents FINAL
                            WHERE $__timeFilter(started_at) AND ended_at IS NOT NULL
                        ) ORDER BY time
                        """,
                    ),
                ),
                width=24,
                mappings=(
                    {
                        "type": "value",
                        "options": {
                            "1": {"text": "open", "color": "red"},
                            "0": {"text": "resolved", "color": "green"},
                        },
                    },
                ),
            ),
            Panel(
                "barchart",
                "Alerts per incident",
                (
                    Query(
                        f"""
                        SELECT {_INCIDENT_NAME} AS incident, alerts
                        FROM ({_INCIDENT_ALERTS}) ORDER BY started_at
                        """
                    ),
                ),
            ),
            Panel("table", "Incidents", (Query(_INCIDENT_ALERTS),)),
            Panel(
                "table",
                "Alert timeline",
                (
                    Query(
                        """
                        SELECT starts_at AS fired, ends_at AS resolved, service, signal, kind,
                               severity, round(score, 3) AS score, summary
                        FROM alerts FINAL
                        WHERE status = 'firing' AND $__timeFilter(starts_at)
                        ORDER BY starts_at DESC LIMIT 500
                        """
                    ),
                ),
                width=24,
                height=10,
            ),
        ),
    )


_INCIDENT = "(SELECT * FROM incidents FINAL WHERE id = '${incident}')"


def incident_detail() -> Dashboard:
    incident = Variable(
        "incident",
        "Incident",
        "SELECT id FROM incidents FINAL WHERE $__timeFilter(started_at) ORDER BY started_at DESC",
    )
    return Dashboard(
        "airis-incident",
        "AIRIS-MON · Incident",
        "One incident: what it touched, the ranked root-cause candidates with their evidence, "
        "new log templates, and past incidents that look like it.",
        (
            Panel(
                "table",
                "Incident",
                (
                    Query(
                        f"""
                        SELECT status, started_at, ended_at, root_cause, anomaly_count,
                               arrayStringConcat(services, ', ') AS services, summary
                        FROM {_INCIDENT}
                        """
                    ),
                ),
                width=24,
                height=4,
            ),
            Panel(
                "table",
                "Root-cause candidates",
                (
                    Query(
                        """
                        SELECT rank, service, round(score, 3) AS score,
                               arrayStringConcat(evidence, ' · ') AS evidence
                        FROM rca_candidates FINAL
                        WHERE incident_id = '${incident}' ORDER BY rank
                        """
                    ),
                ),
                width=24,
                description="Ranked by the RCA's features (topology, onset, magnitude, "
                "correlation, change, persistence); the evidence says why.",
            ),
            Panel(
                "timeseries",
                "Anomaly scores of the incident's services",
                (
                    Query(
                        f"""
                        SELECT $__timeInterval(window_start) AS time, service,
                               max(score) AS score
                        FROM anomalies
                        WHERE service IN (SELECT arrayJoin(services) FROM {_INCIDENT})
                          AND window_start >= (SELECT started_at - INTERVAL 30 MINUTE
                                               FROM {_INCIDENT})
                          AND window_start <= (SELECT ifNull(ended_at, updated_at)
                                                      + INTERVAL 30 MINUTE FROM {_INCIDENT})
                        GROUP BY time, service ORDER BY time
                        """,
                    ),
                ),
            ),
            Panel(
                "table",
                "Signals involved",
                (
                    Query(
                        f"""
                        SELECT splitByChar('/', s)[1] AS service,
                               arrayStringConcat(arraySlice(splitByChar('/', s), 2), '/')
                                 AS signal
                        FROM {_INCIDENT} ARRAY JOIN signals AS s ORDER BY service, signal
                        """
                    ),
                ),
            ),
            Panel(
                "table",
                "Log templates new around it",
                (Query(f"SELECT template FROM {_INCIDENT} ARRAY JOIN log_templates AS template"),),
            ),
            Panel(
                "table",
                "Past incidents with overlapping signals",
                (
                    Query(
                        f"""
                        SELECT p.id AS id, p.started_at AS started_at, p.root_cause AS root_cause,
                               round(length(arrayIntersect(p.signals, c.signals))
                                     / length(arrayDistinct(arrayConcat(p.signals, c.signals))),
                                     3) AS jaccard
                        FROM (SELECT * FROM incidents FINAL) AS p CROSS JOIN {_INCIDENT} AS c
                        WHERE p.id != c.id AND p.started_at < c.started_at AND jaccard > 0
                        ORDER BY jaccard DESC LIMIT 10
                        """
                    ),
                ),
                description="Shared service/signal pairs over all pairs (Jaccard). "
                "`airis incidents similar ID` ranks by the incident memory's embeddings.",
            ),
        ),
        variables=(incident,),
        time_from="now-7d",
    )


def pipeline_health() -> Dashboard:
    return Dashboard(
        "airis-pipeline",
        "AIRIS-MON · Models and pipeline health",
        "The ONNX model's scores and versions, feature drift, dead letters by reason, and how "
        "fresh the stored data is. The flow's consumer lag, buffered rows and spill size are "
        "Prometheus metrics on its /metrics endpoint, not in ClickHouse.",
        (
            Panel(
                "timeseries",
                "Model score by service",
                (
                    Query(
                        """
                        SELECT $__timeInterval(window_start) AS time, service, max(score) AS score
                        FROM model_scores WHERE $__timeFilter(window_start)
                        GROUP BY time, service ORDER BY time
                        """,
                    ),
                ),
            ),
            Panel(
                "table",
                "Model versions",
                (
                    Query(
                        """
                        SELECT model, version, count() AS windows, min(window_start) AS first,
                               max(window_start) AS last,
                               arrayStringConcat(any(providers), ', ') AS providers
                        FROM model_scores WHERE $__timeFilter(window_start)
                        GROUP BY model, version ORDER BY model, version
                        """
                    ),
                ),
            ),
            Panel(
                "timeseries",
                "Features drifted per test",
                (
                    Query(
                        """
                        SELECT $__timeInterval(ts) AS time, sum(drifted) AS drifted,
                               count() AS tested
                        FROM drift_events WHERE $__timeFilter(ts)
                        GROUP BY time ORDER BY time
                        """,
                    ),
                ),
                custom={"drawStyle": "bars"},
            ),
            Panel(
                "table",
                "Dead letters by reason",
                (
                    Query(
                        """
                        SELECT source, reason, count() AS letters, max(received_at) AS latest,
                               sum(truncated) AS truncated
                        FROM dead_letters WHERE $__timeFilter(received_at)
                        GROUP BY source, reason ORDER BY letters DESC LIMIT 100
                        """
                    ),
                ),
            ),
            Panel(
                "timeseries",
                "Points stored",
                (
                    Query(
                        """
                        SELECT $__timeInterval(ts) AS time, count() / $__interval_s AS points_per_s
                        FROM metrics WHERE $__timeFilter(ts)
                        GROUP BY time ORDER BY time
                        """,
                    ),
                ),
            ),
            Panel(
                "table",
                "Newest point per service",
                (
                    Query(
                        """
                        SELECT service, max(ts) AS newest,
                               dateDiff('second', max(ts), now()) AS age_s
                        FROM metrics WHERE $__timeFilter(ts)
                        GROUP BY service ORDER BY age_s DESC
                        """
                    ),
                ),
            ),
        ),
    )
