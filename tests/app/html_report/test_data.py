"""What a report shows, read from the embedded ClickHouse: one incident's view from the rows
the flow stores, and the call graph's layers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airis.app.html_report.data import _depths, incident_view

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


def _store_incident(store) -> None:
    store.insert(
        "incidents",
        ["id", "status", "started_at", "updated_at", "ended_at", "services", "signals",
         "anomaly_count", "root_cause", "summary", "log_templates"],
        [("inc1", "resolved", NOW, NOW + timedelta(minutes=10), NOW + timedelta(minutes=10),
          ["api", "db"], ["db/latency_p99", "api/error_rate", "db/model_service_autoencoder"],
          12, "db", "2 services", ["timeout after <*> ms"])],
    )  # fmt: skip
    store.insert(
        "rca_candidates",
        ["incident_id", "rank", "service", "score", "evidence", "features"],
        [("inc1", 2, "api", 0.4, ["calls db"], {}), ("inc1", 1, "db", 0.9, ["deepest"], {})],
    )
    minutes = [NOW + timedelta(minutes=m) for m in range(-5, 15)]
    store.insert("metrics", ["ts", "service", "signal", "value"],
                 [(t, "db", "latency_p99", 10.0 + (50 if 2 <= i < 8 else 0))
                  for i, t in enumerate(minutes)])  # fmt: skip
    store.insert(
        "anomalies",
        ["id", "service", "signal", "kind", "window_start", "window_end", "score", "observed",
         "expected", "lower", "upper", "state", "detector"],
        [(f"a{i}", "db", "latency_p99", "spike", minutes[i], minutes[i] + timedelta(seconds=10),
          0.99, 60.0, 10.0, 8.0, 12.0, "anomalous", "ensemble") for i in range(7, 13)]
        + [("m1", "db", "model_service_autoencoder", "spike", NOW, NOW, 0.9, 3.0, 1.0, 0, 2.0,
            "anomalous", "onnx")],
    )  # fmt: skip
    store.insert(
        "service_edges",
        ["window_start", "window_end", "caller", "callee", "calls", "errors", "error_rate",
         "p50_ms", "p95_ms", "p99_ms"],
        [(NOW, NOW + timedelta(minutes=1), "web", "api", 10, 0, 0.0, 5, 9, 12),
         (NOW, NOW + timedelta(minutes=1), "api", "db", 10, 2, 0.2, 5, 9, 12)],
    )  # fmt: skip


def test_an_incident_view_holds_its_ranking_series_graph_and_alerts(migrated_store):
    _store_incident(migrated_store)
    view = incident_view(migrated_store, "inc1", similar=lambda _: [{"id": "old"}])
    assert [c["service"] for c in view["candidates"]] == ["db", "api"]
    # only series with stored points are drawn; a model's anomalies are a score, not a series
    assert [(s["service"], s["signal"]) for s in view["signals"]] == [("db", "latency_p99")]
    series = view["signals"][0]
    assert len(series["points"]) == 20 and len(series["anomalies"]) == 6
    assert series["anomalies"][0][1:] == [60.0, 8.0, 12.0]  # observed, lower, upper
    nodes = {n["id"]: n for n in view["graph"]["nodes"]}
    assert {k: n["depth"] for k, n in nodes.items()} == {"web": 0, "api": 1, "db": 2}
    assert nodes["db"]["root_cause"] and not nodes["web"]["involved"]
    assert view["similar"] == {"error": None, "incidents": [{"id": "old"}]}
    assert view["range"][0] == NOW.timestamp() - 1800


def test_an_unknown_incident_is_refused_and_a_failing_memory_is_reported(migrated_store):
    with pytest.raises(ValueError, match="no incident"):
        incident_view(migrated_store, "nope")
    _store_incident(migrated_store)

    def broken(_: str) -> list:
        raise KeyError("inc1 is not in the memory")

    assert "KeyError" in incident_view(migrated_store, "inc1", broken)["similar"]["error"]


def test_layers_follow_the_longest_call_path_and_cycles_are_cut():
    assert _depths(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("a", "c"), ("d", "d")]) == {
        "a": 0, "b": 1, "c": 2, "d": 0,
    }  # fmt: skip
    cyclic = _depths(["x", "y"], [("x", "y"), ("y", "x")])
    assert sorted(cyclic.values()) == [0, 1]


def test_a_whole_store_page_keeps_the_latest_incidents_and_says_how_many_it_left_out(
    migrated_store, monkeypatch
):
    from airis.app.html_report import data

    _store_incident(migrated_store)
    later = NOW + timedelta(hours=1)
    migrated_store.insert(
        "incidents",
        ["id", "status", "started_at", "updated_at", "services", "signals", "anomaly_count",
         "root_cause", "summary"],
        [("inc2", "open", later, later, ["api"], ["api/error_rate"], 3, "api", "1 service"),
         ("inc2", "open", later, later + timedelta(minutes=1), ["api"], ["api/error_rate"], 4,
          "api", "1 service")],  # the same incident rewritten as it grew
    )  # fmt: skip
    monkeypatch.setattr(data, "MAX_INCIDENTS", 1)
    view = data.demo_view(migrated_store)
    assert view["totals"]["incidents"] == 2
    assert [v["incident"]["id"] for v in view["incidents"]] == ["inc2"]
    assert view["incidents_left_out"] == 1


def test_each_drawn_signal_gets_its_own_points_anomalies_and_nearest_forecast(migrated_store):
    """The drawn signals' series are read together, grouped by signal: none may get
    another's rows, and each its own nearest forecast horizon."""
    _store_incident(migrated_store)
    minutes = [NOW + timedelta(minutes=m) for m in range(-5, 15)]
    migrated_store.insert("metrics", ["ts", "service", "signal", "value"],
                          [(t, "api", "error_rate", 0.5) for t in minutes[:7]])  # fmt: skip
    migrated_store.insert(
        "anomalies",
        ["id", "service", "signal", "kind", "window_start", "window_end", "score", "observed",
         "expected", "lower", "upper", "state", "detector"],
        [("e1", "api", "error_rate", "spike", minutes[3], minutes[3] + timedelta(seconds=10),
          0.95, 0.5, 0.01, 0.0, 0.02, "anomalous", "ensemble")],
    )  # fmt: skip
    migrated_store.insert(
        "forecasts",
        ["ts", "service", "signal", "horizon_seconds", "forecast", "lower", "upper", "model"],
        [(NOW, "db", "latency_p99", h, 10.0, 9.0 - h / 600, 11.0, "f") for h in (300, 600)]
        + [(NOW, "api", "error_rate", h, 0.01, 0.0, 0.1 * h / 600, "f") for h in (600, 900)],
    )  # fmt: skip
    view = incident_view(migrated_store, "inc1")
    series = {(s["service"], s["signal"]): s for s in view["signals"]}
    assert list(series) == [("db", "latency_p99"), ("api", "error_rate")]  # by score
    db, api = series[("db", "latency_p99")], series[("api", "error_rate")]
    assert (len(db["points"]), len(db["anomalies"])) == (20, 6)
    assert (len(api["points"]), len(api["anomalies"])) == (7, 1)
    assert {v for _, v in api["points"]} == {0.5} and api["anomalies"][0][1:] == [0.5, 0.0, 0.02]
    assert db["forecast"] == [[NOW.timestamp() + 300, 8.5, 11.0]]  # each its nearest horizon
    assert api["forecast"] == [[NOW.timestamp() + 600, 0.0, 0.1]]
