"""Grafana dashboard JSON for the ClickHouse data source, built from a few typed pieces.

A `Panel` is one visualisation with its ClickHouse queries (raw SQL that may use the plugin's
macros, `airis.app.grafana.macros`); a `Dashboard` lays its panels out in rows of 24 grid
columns and adds its variables and annotations. `Dashboard.model` is the JSON model Grafana
provisions: every panel type's required options are filled in, so the Grafana Foundation
SDK's strict unmarshalling accepts it (``deploy/grafana/checker``, run by the tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DATASOURCE",
    "Annotation",
    "Dashboard",
    "Panel",
    "Query",
    "Variable",
]

#: The provisioned ClickHouse data source (deploy/grafana/provisioning/datasources).
DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": "airis-clickhouse"}

#: How the plugin shapes a query's result: its ``queryType`` and ``format`` (0 time series,
#: 1 table, 2 logs, 3 traces).
QueryType = Literal["timeSeries", "table", "logs", "traces"]
_FORMATS: dict[str, int] = {"timeSeries": 0, "table": 1, "logs": 2, "traces": 3}

PanelType = Literal[
    "timeseries", "table", "stat", "barchart", "logs", "state-timeline", "text", "nodeGraph"
]
Needs = Literal["time", "number", "rows", "graph", "logs", ""]

#: What each panel type asks its queries for (their ``queryType``), and what its result must
#: hold to draw (`Panel.needs`).
_DRAWS: dict[str, tuple[QueryType, Needs]] = {
    "timeseries": ("timeSeries", "time"),
    "state-timeline": ("timeSeries", "time"),
    "stat": ("table", "number"),
    "barchart": ("table", "number"),
    "logs": ("logs", "logs"),
    "nodeGraph": ("table", "graph"),
    "table": ("table", "rows"),
    "text": ("table", ""),
}

_LEGEND = {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []}
_TOOLTIP = {"mode": "multi", "sort": "desc"}
_REDUCE = {"values": False, "calcs": ["lastNotNull"], "fields": ""}

#: Each panel type's options with every field the schema requires.
_OPTIONS: dict[str, dict[str, Any]] = {
    "timeseries": {"legend": _LEGEND, "tooltip": _TOOLTIP},
    "table": {"frameIndex": 0, "showHeader": True, "cellHeight": "sm"},
    "stat": {
        "graphMode": "area",
        "colorMode": "value",
        "justifyMode": "auto",
        "textMode": "auto",
        "wideLayout": True,
        "showPercentChange": False,
        "reduceOptions": _REDUCE,
        "percentChangeColorMode": "standard",
        "orientation": "auto",
    },
    "barchart": {
        "orientation": "auto",
        "xTickLabelRotation": 0,
        "xTickLabelMaxLength": 24,
        "stacking": "normal",
        "showValue": "auto",
        "barWidth": 0.9,
        "groupWidth": 0.7,
        "legend": _LEGEND,
        "tooltip": _TOOLTIP,
        "fullHighlight": False,
    },
    "logs": {
        "showLabels": False,
        "showCommonLabels": False,
        "showTime": True,
        "showLogContextToggle": False,
        "wrapLogMessage": True,
        "prettifyLogMessage": False,
        "enableLogDetails": True,
        "sortOrder": "Descending",
        "dedupStrategy": "none",
    },
    "state-timeline": {
        "showValue": "never",
        "rowHeight": 0.8,
        "mergeValues": True,
        "legend": _LEGEND,
        "tooltip": _TOOLTIP,
    },
    "text": {"mode": "markdown"},
    "nodeGraph": {},
}


@dataclass(frozen=True)
class Query:
    """One ClickHouse query of a panel: raw SQL (macros and ``${variables}`` allowed)."""

    sql: str
    ref_id: str = "A"

    def model(self, query_type: QueryType = "table") -> dict[str, Any]:
        """The query's JSON, shaped as ``query_type`` (what its panel type asks for)."""
        return {
            "refId": self.ref_id,
            "datasource": DATASOURCE,
            "editorType": "sql",
            "queryType": query_type,
            "format": _FORMATS[query_type],
            "rawSql": " ".join(self.sql.split()),
        }


@dataclass(frozen=True)
class Panel:
    """One panel: its type, title, queries and size (grid columns of 24, rows of 30 px).

    The panel type decides how its queries' results are shaped and what they must hold to
    draw (`needs`).
    """

    type: PanelType
    title: str
    queries: tuple[Query, ...] = ()
    width: int = 12
    height: int = 8
    description: str = ""
    unit: str | None = None
    text: str = ""
    repeat: str | None = None
    overrides: tuple[dict[str, Any], ...] = ()
    custom: dict[str, Any] = field(default_factory=dict)
    #: Value → text and colour (a state timeline's states).
    mappings: tuple[dict[str, Any], ...] = ()

    @property
    def needs(self) -> Needs:
        """What the panel's result must hold to draw, for the SQL checks
        (`airis.app.grafana.check`): ``time`` (a time column and a number), ``number``,
        ``rows``, ``graph`` (a node frame with ``id`` and an edge frame with ``id``,
        ``source``, ``target``), ``logs`` (a time and a body) or nothing (a text panel)."""
        return _DRAWS[self.type][1]

    def model(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        options = dict(_OPTIONS[self.type])
        if self.type == "text":
            options["content"] = self.text
        defaults: dict[str, Any] = {"custom": dict(self.custom)} if self.custom else {}
        if self.unit:
            defaults["unit"] = self.unit
        if self.mappings:
            defaults["mappings"] = list(self.mappings)
        out: dict[str, Any] = {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "options": options,
            "fieldConfig": {"defaults": defaults, "overrides": list(self.overrides)},
        }
        if self.description:
            out["description"] = self.description
        if self.queries:
            out["datasource"] = DATASOURCE
            out["targets"] = [q.model(_DRAWS[self.type][0]) for q in self.queries]
        if self.repeat:
            out.update(repeat=self.repeat, repeatDirection="h", maxPerRow=2)
        return out


@dataclass(frozen=True)
class Variable:
    """A dashboard variable filled by a ClickHouse query (its first column's values)."""

    name: str
    label: str
    sql: str
    multi: bool = False
    include_all: bool = False

    def model(self) -> dict[str, Any]:
        return {
            "type": "query",
            "name": self.name,
            "label": self.label,
            "datasource": DATASOURCE,
            "query": " ".join(self.sql.split()),
            "refresh": 2,  # on time range change: the values present in the range
            "multi": self.multi,
            "includeAll": self.include_all,
            "sort": 1,
            "options": [],
        }


@dataclass(frozen=True)
class Annotation:
    """Events drawn on every time series of the dashboard (a query with ``time``,
    ``timeEnd``, ``text`` and ``tags`` columns)."""

    name: str
    sql: str
    color: str = "red"

    def model(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "datasource": DATASOURCE,
            "enable": True,
            "iconColor": self.color,
            "target": Query(self.sql).model(),
        }


@dataclass(frozen=True)
class Dashboard:
    """A dashboard: its panels, laid out left to right in rows of 24 columns."""

    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = ()
    annotations: tuple[Annotation, ...] = ()
    time_from: str = "now-24h"
    tags: tuple[str, ...] = ("airis-mon",)

    def model(self) -> dict[str, Any]:
        """The dashboard's JSON model."""
        panels, x, y, row_height = [], 0, 0, 0
        for panel_id, panel in enumerate(self.panels, 1):
            if x + panel.width > 24:
                x, y, row_height = 0, y + row_height, 0
            panels.append(panel.model(panel_id, x, y))
            x += panel.width
            row_height = max(row_height, panel.height)
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "utc",
            "editable": True,
            "graphTooltip": 1,  # a shared crosshair
            "schemaVersion": 39,
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "refresh": "1m",
            "templating": {"list": [v.model() for v in self.variables]},
            "annotations": {"list": [a.model() for a in self.annotations]},
            "panels": panels,
        }
