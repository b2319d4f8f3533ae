"""`airis report`: a self-contained HTML page of an incident, or of a whole run.

`render_page` puts a view (`airis.app.html_report.data`) into one HTML file with everything it
needs inlined: the data as JSON, the vendored uPlot (``vendor/``, see
``deploy/vendor-uplot.sh``) and the page's own script and style. The page needs no network
and no server: open it in any browser.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from importlib.resources import files
from typing import Any, Literal

__all__ = ["render_page"]

_ASSETS = files(__name__)


def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


def render_page(kind: Literal["incident", "demo"], view: dict[str, Any], title: str) -> str:
    """The HTML page of ``view`` (an `incident_view` or a `demo_view`)."""
    # "</" inside a script element would end it: JSON allows "<\/" for the same text.
    data = json.dumps({"kind": kind, "view": view}, separators=(",", ":")).replace("</", "<\\/")
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{_asset("vendor/uPlot.min.css")}</style>
<style>{_asset("report.css")}</style>
</head>
<body>
<header><h1>{escape(title)}</h1><p>AIRIS-MON report, written {made}. Times in UTC.</p></header>
<main id="report"></main>
<pre id="report-errors" hidden></pre>
<script id="report-data" type="application/json">{data}</script>
<script>{_asset("vendor/uPlot.iife.min.js")}</script>
<script>{_asset("report.js")}</script>
</body>
</html>
"""
