"""The metrics dataflow end to end through Bytewax's testing runtime."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from bytewax.testing import TestingSink, TestingSource, run_main
from prometheus_client import REGISTRY

from airis.batches import MetricBatch, unbatched
from airis.events import Alert, Anomaly, DeadLetter, MetricPoint
from airis.flows.metrics_anomaly import build_flow
from airis.settings import Settings

T0 = datetime(2026, 3, 2, tzinfo=UTC)
STEP = timedelta(seconds=10)


def _events(n_ticks: int = 600, fault_from: int = 400, fault_to: int = 460) -> list:
    rng = random.Random(3)
    events = []
    for i in range(n_ticks):
        ts = (T0 + STEP * i).isoformat()
        for service in ("api", "db"):
            latency = rng.gauss(50, 2)
            if service == "db" and fault_from <= i < fault_to:
                latency += 60
            events.append({"ts": ts, "service": service, "signal": "latency_p99", "value": latency})
            events.append(
                {"ts": ts, "service": service, "signal": "cpu", "value": rng.gauss(30, 1)}
            )
    return events


def _run(events: list, **settings) -> list:
    out: list = []
    flow = build_flow(TestingSource(events, batch_size=100), TestingSink(out), Settings(**settings))
    run_main(flow)
    return out


def test_a_latency_fault_becomes_one_firing_and_one_resolved_alert():
    out = _run(_events())
    alerts = [e for e in out if isinstance(e, Alert)]
    assert [(a.service, a.signal, a.kind, a.status) for a in alerts] == [
        ("db", "latency_p99", "spike", "firing"),
        ("db", "latency_p99", "spike", "resolved"),
    ]
    firing, resolved = alerts
    assert firing.starts_at == T0 + STEP * 400
    assert firing.updated_at == T0 + STEP * 403  # confirmed after three 10 s windows
    assert resolved.ends_at == T0 + STEP * 460


def test_every_valid_point_is_forwarded_for_storage_and_anomalies_are_explained():
    out = _run(_events())
    assert sum(isinstance(e, MetricPoint) for e in unbatched(out)) == 600 * 4
    anomalies = [e for e in out if isinstance(e, Anomaly)]
    assert anomalies and {a.service for a in anomalies} == {"db"}
    assert all(a.observed > a.upper and a.kind == "spike" for a in anomalies)


def test_invalid_events_become_dead_letters_and_the_flow_goes_on():
    events = _events(100, 1000, 1000)
    events[10:10] = [{"service": "api"}, b"\xff garbage", {**events[0], "value": float("nan")}]
    out = _run(events)
    dead = [e for e in out if isinstance(e, DeadLetter)]
    assert len(dead) == 3
    assert all(d.source == "metrics" and d.reason for d in dead)
    assert sum(isinstance(e, MetricPoint) for e in unbatched(out)) == 400


def test_late_events_are_routed_to_dead_letters_not_dropped():
    events = _events(100, 1000, 1000)
    late = {**events[0], "ts": (T0 + STEP * 5).isoformat()}
    out = _run([*events, late], allowed_lateness_seconds=0)
    dead = [e for e in out if isinstance(e, DeadLetter)]
    assert [d.reason for d in dead] == ["late: its window had closed"]
    assert '"api"' in dead[0].payload


def test_the_flow_counts_what_it_does_in_prometheus_metrics():
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def alerts(status: str) -> float:
        return sum(sample("airis_alerts_total", status=status, severity=s) for s in SEVERITIES)

    before = {
        "firing": alerts("firing"),
        "resolved": alerts("resolved"),
        "anomalies": sample("airis_anomalies_total"),
        "late": sample("airis_late_events_total"),
        "batches": sample("airis_keyed_batches_total"),
    }
    events = _events()
    out = _run([*events, {**events[0], "ts": (T0 + STEP * 5).isoformat()}])
    # One item per service and input batch of 100 events (the last holds one), not per point.
    assert sample("airis_keyed_batches_total") - before["batches"] == 2 * 24 + 1
    assert alerts("firing") == before["firing"] + 1
    assert alerts("resolved") == before["resolved"] + 1
    anomalies = sum(isinstance(e, Anomaly) for e in out)
    assert sample("airis_anomalies_total") == before["anomalies"] + anomalies > 0
    assert sample("airis_late_events_total") == before["late"] + 1
    assert sample("airis_detect_seconds_count") > 0


SEVERITIES = ("info", "warning", "critical")


def test_a_service_past_its_signal_cap_dead_letters_the_new_signals_with_the_reason() -> None:
    settings = Settings(max_signals_per_service=2, window_seconds=10)
    points = [
        MetricPoint(ts=T0 + timedelta(seconds=10 * i), service="api", signal=f"s{i % 3}", value=1)
        for i in range(30)
    ]
    out: list = []
    source = TestingSource([p.model_dump(mode="json") for p in points])
    run_main(build_flow(source, TestingSink(out), settings=settings))
    refused = [e for e in out if isinstance(e, DeadLetter) and e.reason.startswith("refused")]
    assert len(refused) == 10  # every point of the third signal, none of the first two
    assert all('"signal":"s2"' in r.payload.replace(" ", "") for r in refused)
    assert "AIRIS_MAX_SIGNALS_PER_SERVICE" in refused[0].reason


def test_a_service_gone_quiet_has_its_windows_closed_then_its_state_discarded() -> None:
    from airis.flows.detection import DetectAndWindow
    from airis.operators.windowing.windowed_detector import ServiceWindowDetector

    now = [1000.0]  # system time, in our hands
    window = ServiceWindowDetector("api", 10.0, 0.0, idle_grace_seconds=60.0)
    logic = DetectAndWindow(window, idle_seconds=3600.0, clock=lambda: now[0])
    point = MetricPoint(ts=T0, service="api", signal="cpu", value=1.0)
    assert logic.on_batch([MetricBatch.from_points("api", [point])]) == ([], logic.RETAIN)
    now[0] += 59.0
    assert logic.on_notify() == ([], logic.RETAIN)  # within the idle grace: nothing closes
    now[0] += 11.0
    closed, keep = logic.on_notify()
    assert keep == logic.RETAIN  # the window closes, as one item; the service stays
    assert [[(w.service, w.start) for w in windows] for windows in closed] == [[("api", T0)]]
    assert logic.notify_at() is not None  # ...and it will be woken when it counts as gone
    now[0] += 3600.0
    assert logic.on_notify() == ([], logic.DISCARD)


def test_anomalies_go_to_the_incidents_key_one_item_per_batch_not_one_per_anomaly():
    # Every anomaly goes to one key, across processes: one pickle per batch of them.
    flow = build_flow(TestingSource([]), TestingSink([]), Settings())
    (keying,) = _steps(flow, "key_incidents")
    anomalies = [e for e in _run(_events()) if isinstance(e, Anomaly)]
    assert len(anomalies) > 1
    assert keying.mapper(anomalies) == [("incidents", anomalies)]


def _steps(step, name: str) -> list:
    """Every step inside ``step`` whose id ends with ``name``."""
    found = [step] if getattr(step, "step_id", "").endswith(f".{name}") else []
    for sub in getattr(step, "substeps", None) or ():
        found += _steps(sub, name)
    return found
