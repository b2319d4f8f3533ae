// AIRIS-MON report page: draws what #report-data holds (airis.app.html_report.data).
// Signals with uPlot (vendored in the page); the RCA ranking, the call graph and the alert
// timeline as SVG. When done, <body> says what it drew (data-charts, data-inked, data-svgs)
// and any error lands in #report-errors: what the headless-browser test reads.
(function () {
  "use strict";
  const errors = [];
  function note(message) {
    errors.push(String(message));
    const box = document.getElementById("report-errors");
    box.hidden = false;
    box.textContent = errors.join("\n");
    document.body.dataset.errors = String(errors.length);
  }
  window.addEventListener("error", (e) => note(e.message));
  const consoleError = console.error;
  console.error = function (...args) { note(args.join(" ")); consoleError.apply(console, args); };

  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = { critical: "#d62f2f", warning: "#e39b13", info: "#2f6fd6" };
  const charts = [];

  function el(tag, attrs, parent, text) {
    const node = tag.startsWith("svg:")
      ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  // An SVG of a natural size that shrinks to its container (never grows past that size).
  function svgBox(parent, width, height) {
    return el("svg:svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
                           style: `max-width: ${width}px`, preserveAspectRatio: "xMinYMin meet" }, parent);
  }
  function when(t) {
    return new Date(t * 1000).toISOString().slice(5, 16).replace("T", " ");
  }
  function fixed(x, digits) { return x === null || x === undefined ? "" : Number(x).toFixed(digits); }

  // ---- signals: observed, expected band, anomalous windows --------------------------------
  function signalChart(parent, s, range) {
    const box = el("div", { class: "chart" }, parent);
    el("h4", {}, box, `${s.service} · ${s.signal}  (max score ${fixed(s.score, 2)})`);
    // The band: the forecaster's interval where the signal is forecast (every step, so the
    // whole range has one), else the detector's expected band at its anomalous windows.
    const forecast = s.forecast.length > 0;
    const at = new Map();
    const row = (t) => { if (!at.has(t)) at.set(t, [null, null, null, null]); return at.get(t); };
    for (const [t, v] of s.points) row(t)[0] = v;
    for (const [t, lo, hi] of s.forecast) { const r = row(t); r[1] = lo; r[2] = hi; }
    for (const [t, v, lo, hi] of s.anomalies) {
      const r = row(t); r[3] = v;
      if (r[0] === null) r[0] = v;
      if (!forecast) { r[1] = lo; r[2] = hi; }
    }
    const xs = [...at.keys()].sort((a, b) => a - b);
    const cols = [0, 1, 2, 3].map((i) => xs.map((t) => at.get(t)[i]));
    const band = forecast ? "forecast interval" : "expected (detector)";
    const width = Math.max(parent.clientWidth / (parent.clientWidth > 1150 ? 2 : 1) - 16, 480);
    const plot = new uPlot({
      width, height: 210,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: { x: { time: true, min: range[0], max: range[1] } },
      legend: { live: false },
      series: [
        {},
        { label: "observed", stroke: "#1d2330", width: 1.4, spanGaps: true },
        { label: `${band}, low`, stroke: "rgba(47,111,214,.55)", width: 1, spanGaps: forecast },
        { label: `${band}, high`, stroke: "rgba(47,111,214,.55)", width: 1, spanGaps: forecast },
        { label: "anomalous window", stroke: "#d62f2f", width: 0, paths: () => null,
          points: { show: true, size: 6, fill: "#d62f2f", stroke: "#d62f2f" } },
      ],
      bands: [{ series: [3, 2], fill: "rgba(47,111,214,.14)" }],
    }, [xs, ...cols], box);
    charts.push(plot);
  }

  // ---- root-cause ranking ------------------------------------------------------------------
  function ranking(parent, candidates) {
    if (!candidates.length) { el("p", { class: "note" }, parent, "No candidates stored."); return; }
    const width = 520, bar = 22;
    const svg = svgBox(parent, width, candidates.length * (bar + 8) + 4);
    candidates.forEach((c, i) => {
      const y = i * (bar + 8) + 2;
      el("svg:text", { x: 0, y: y + 15 }, svg, `${c.rank}. ${c.service}`);
      el("svg:rect", { x: 190, y, width: Math.max(2, 280 * c.score), height: bar, rx: 3,
                       fill: i === 0 ? "#d62f2f" : "#e39b13" }, svg);
      el("svg:text", { x: 196 + 280 * c.score, y: y + 15 }, svg, fixed(c.score, 2));
    });
    const list = el("div", {}, parent);
    for (const c of candidates) {
      el("b", {}, list, `${c.rank}. ${c.service}`);
      const ul = el("ul", { class: "evidence" }, list);
      for (const e of c.evidence) el("li", {}, ul, e);
    }
  }

  // ---- call graph, layered by call depth -------------------------------------------------
  function graph(parent, g) {
    if (!g.nodes.length) { el("p", { class: "note" }, parent, "No calls recorded."); return; }
    const layers = new Map();
    for (const n of g.nodes) { if (!layers.has(n.depth)) layers.set(n.depth, []); layers.get(n.depth).push(n); }
    const depths = [...layers.keys()].sort((a, b) => a - b);
    const colW = 190, rowH = 54, tall = Math.max(...depths.map((d) => layers.get(d).length));
    const width = depths.length * colW + 20, height = tall * rowH + 20;
    const svg = svgBox(parent, width, height);
    const defs = el("svg:defs", {}, svg);
    const marker = el("svg:marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
                                      markerWidth: 7, markerHeight: 7, orient: "auto" }, defs);
    el("svg:path", { d: "M0,0 L10,5 L0,10 z", fill: "#8a93a6" }, marker);
    const pos = new Map();
    depths.forEach((d, i) => layers.get(d).forEach((n, j) => {
      pos.set(n.id, { x: 14 + i * colW, y: 14 + j * rowH + (tall - layers.get(d).length) * rowH / 2 });
    }));
    for (const e of g.edges) {
      const a = pos.get(e.caller), b = pos.get(e.callee);
      if (!a || !b || e.caller === e.callee) continue;
      const line = el("svg:line", { x1: a.x + 150, y1: a.y + 16, x2: b.x, y2: b.y + 16,
                                     stroke: e.errors > 0 ? "#e39b13" : "#8a93a6",
                                     "stroke-width": 1 + Math.log10(1 + e.calls) / 2,
                                     "marker-end": "url(#arrow)" }, svg);
      el("svg:title", {}, line, `${e.caller} → ${e.callee}: ${e.calls} calls, ${e.errors} errors, p95 ${fixed(e.p95_ms, 0)} ms`);
    }
    // Red: the root cause; shades by the share of anomalous windows (of the most anomalous).
    const most = Math.max(1, ...g.nodes.map((n) => n.anomalous_windows));
    const shade = (n) => {
      if (n.root_cause) return "#d62f2f";
      const share = n.anomalous_windows / most;
      return share === 0 ? "#9fd6b4" : share < 0.05 ? "#f5e3a8" : share < 0.3 ? "#f5c26b" : "#f08c8c";
    };
    for (const n of g.nodes) {
      const p = pos.get(n.id);
      const fill = shade(n);
      const group = el("svg:g", { opacity: n.involved ? 1 : 0.75 }, svg);
      el("svg:rect", { x: p.x, y: p.y, width: 150, height: 32, rx: 6, fill,
                       stroke: n.root_cause ? "#7a1010" : "#5b6475" }, group);
      el("svg:text", { x: p.x + 8, y: p.y + 20, fill: n.root_cause ? "#fff" : "#1d2330" }, group, n.id);
      el("svg:title", {}, group, `${n.id}: ${n.anomalous_windows} anomalous windows${n.root_cause ? " (most likely root cause)" : ""}`);
    }
  }

  // ---- alert timeline --------------------------------------------------------------------
  function timeline(parent, alerts, range) {
    if (!alerts.length) { el("p", { class: "note" }, parent, "No alerts in this range."); return; }
    const rows = [...new Set(alerts.map((a) => `${a.service} / ${a.signal}`))].sort();
    const left = 250, width = 1100, rowH = 16, top = 22;
    const svg = svgBox(parent, left + width + 10, top + rows.length * rowH + 8);
    const x = (t) => left + (t - range[0]) / Math.max(range[1] - range[0], 1) * width;
    for (let k = 0; k <= 6; k++) {
      const t = range[0] + k * (range[1] - range[0]) / 6;
      el("svg:line", { class: "axis", x1: x(t), x2: x(t), y1: top - 4, y2: top + rows.length * rowH }, svg);
      el("svg:text", { x: x(t) - 30, y: 12 }, svg, when(t));
    }
    rows.forEach((r, i) => el("svg:text", { x: 0, y: top + i * rowH + 12 }, svg, r));
    for (const a of alerts) {
      const i = rows.indexOf(`${a.service} / ${a.signal}`);
      const bar = el("svg:rect", { x: x(a.start), y: top + i * rowH + 2, height: rowH - 4, rx: 2,
                                   width: Math.max(3, x(a.end) - x(a.start)),
                                   fill: COLORS[a.severity] || "#5b6475" }, svg);
      el("svg:title", {}, bar, `${when(a.start)}–${when(a.end)} ${a.kind} ${a.severity}: ${a.summary}`);
    }
  }

  function similarTable(parent, similar) {
    if (similar.error) { el("p", { class: "note" }, parent, `Similar incidents unavailable: ${similar.error}`); return; }
    if (!similar.incidents.length) { el("p", { class: "note" }, parent, "No similar past incident."); return; }
    const table = el("table", {}, parent);
    const head = el("tr", {}, el("thead", {}, table));
    for (const h of ["similarity", "started (UTC)", "root cause", "services", "summary"]) el("th", {}, head, h);
    const body = el("tbody", {}, table);
    for (const s of similar.incidents) {
      const tr = el("tr", {}, body);
      for (const v of [fixed(s.similarity, 2), s.start ? when(s.start) : "", s.root_cause || "",
                       s.services.join(", "), s.summary]) el("td", {}, tr, v);
    }
  }

  function incidentSection(parent, view) {
    const i = view.incident;
    const card = el("section", { class: "card", id: `incident-${i.id}` }, parent);
    el("h2", {}, card, `Incident ${when(i.start)} – ${when(i.end)} UTC · root cause: ${i.root_cause || "?"}`);
    const tags = el("p", {}, card);
    for (const s of i.services) el("span", { class: s === i.root_cause ? "tag root" : "tag" }, tags, s);
    el("p", { class: "note" }, card, `${i.summary} (id ${i.id})`);
    el("h3", {}, card, "Signals around it");
    const grid = el("div", { class: "charts" }, card);
    if (!view.signals.length) el("p", { class: "note" }, grid, "No stored series for its signals.");
    for (const s of view.signals) signalChart(grid, s, view.range);
    const two = el("div", { class: "grid2" }, card);
    const left = el("div", {}, two), right = el("div", {}, two);
    el("h3", {}, left, "Root-cause ranking and evidence");
    ranking(left, view.candidates);
    el("h3", {}, right, "Call graph around it");
    graph(right, view.graph);
    el("h3", {}, card, "Alerts");
    timeline(card, view.alerts, view.range);
    if (i.log_templates && i.log_templates.length) {
      el("h3", {}, card, "Log templates new around it");
      const ul = el("ul", { class: "evidence" }, card);
      for (const t of i.log_templates) el("li", {}, ul, t);
    }
    el("h3", {}, card, "Similar past incidents");
    similarTable(card, view.similar);
  }

  function totals(parent, values) {
    const box = el("div", { class: "totals" }, parent);
    for (const [name, value] of Object.entries(values)) {
      const t = el("div", { class: "total" }, box);
      el("b", {}, t, Number(value).toLocaleString("en"));
      el("span", {}, t, name.replace("_", " "));
    }
  }

  function draw() {
    const data = JSON.parse(document.getElementById("report-data").textContent);
    const main = document.getElementById("report");
    if (data.kind === "incident") {
      incidentSection(main, data.view);
    } else {
      const summary = el("section", { class: "card" }, main);
      el("h2", {}, summary, `The whole run: ${when(data.view.range[0])} – ${when(data.view.range[1])} UTC`);
      totals(summary, data.view.totals);
      el("h3", {}, summary, "Alert timeline");
      timeline(summary, data.view.alerts, data.view.range);
      el("h3", {}, summary, "Service graph (the redder, the more anomalous windows in the run)");
      graph(summary, data.view.graph);
      if (data.view.incidents_left_out > 0) {
        el("p", { class: "note" }, summary, `The ${data.view.incidents.length} latest incidents follow; ` +
           `${data.view.incidents_left_out} earlier ones are left out (airis report incident ID shows any).`);
      }
      for (const view of data.view.incidents) incidentSection(main, view);
    }
    // uPlot paints on its next frame: count the ink once it has.
    setTimeout(finish, 60);
  }

  function finish() {
    const inked = charts.filter((plot) => {
      const ctx = plot.ctx, w = ctx.canvas.width, h = ctx.canvas.height;
      const pixels = ctx.getImageData(0, 0, w, h).data;
      for (let k = 3; k < pixels.length; k += 4 * 97) if (pixels[k] > 0) return true;
      return false;
    }).length;
    document.body.dataset.charts = String(charts.length);
    document.body.dataset.inked = String(inked);
    document.body.dataset.svgs = String(document.querySelectorAll("svg rect").length);
    document.body.dataset.drawn = "yes";
  }

  try { draw(); } catch (e) { note(e && e.stack ? e.stack : e); }
})();
