"""Exhaustion warnings go through the alert manager: one alert per episode."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

from airis.events import CapacityWarning, fingerprint
from airis.operators.alerting.alert_manager import AlertManager
from airis.operators.types import Assessment, ServiceWindow, SignalSummary

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
SERVICE = "order-service"


def warning(minute: float, eta_minutes: float, value: float = 80.0) -> CapacityWarning:
    return CapacityWarning(
        ts=T0 + timedelta(minutes=minute),
        service=SERVICE,
        signal="memory",
        value=value,
        threshold=90.0,
        eta_seconds=eta_minutes * 60,
        eta_low_seconds=eta_minutes * 40,
        eta_high_seconds=eta_minutes * 90,
        confidence=0.97,
    )


def window_ending(minute: float) -> ServiceWindow:
    end = T0 + timedelta(minutes=minute)
    start = end - timedelta(seconds=10)
    normal = SignalSummary(start, Assessment(0.1, 60.0, 60.0, 55, 65, "recent", "x", 1), 1)
    return ServiceWindow(SERVICE, start, end, {"memory": normal}, ())


def test_the_first_warning_fires_at_once_until_the_expected_crossing() -> None:
    manager = AlertManager(open_after=3)
    [alert] = manager.update_warning(warning(0, eta_minutes=40))
    assert (alert.status, alert.kind, alert.severity) == ("firing", "exhaustion", "warning")
    assert alert.fingerprint == fingerprint(SERVICE, "memory", "exhaustion")
    assert alert.starts_at == T0 and alert.ends_at == T0 + timedelta(minutes=40)
    assert "expected to reach 90% in about 40 min" in alert.summary
    assert alert.labels == {"alertname": "ResourceExhaustion", "threshold": "90"}


def test_a_later_crossing_changes_nothing_and_an_earlier_one_updates_the_same_episode() -> None:
    manager = AlertManager()
    [first] = manager.update_warning(warning(0, eta_minutes=40))
    assert manager.update_warning(warning(5, eta_minutes=50)) == []
    [update] = manager.update_warning(warning(10, eta_minutes=15))
    assert update.status == "firing" and update.id != first.id
    assert update.starts_at == first.starts_at
    assert update.ends_at == T0 + timedelta(minutes=25)


def test_it_resolves_when_a_window_passes_the_crossing_and_a_new_warning_opens_anew() -> None:
    manager = AlertManager()
    [first] = manager.update_warning(warning(0, eta_minutes=20))
    assert manager.update_one(window_ending(19)) == []
    [resolved] = manager.update_one(window_ending(21))
    assert resolved.status == "resolved" and resolved.fingerprint == first.fingerprint
    assert resolved.starts_at == first.starts_at and resolved.ends_at == first.ends_at
    assert resolved.updated_at == T0 + timedelta(minutes=21)
    assert manager.update_one(window_ending(22)) == []
    [again] = manager.update_warning(warning(30, eta_minutes=20))
    assert again.status == "firing" and again.starts_at == T0 + timedelta(minutes=30)


def test_a_warning_after_an_unresolved_crossing_resolves_the_old_episode_first() -> None:
    manager = AlertManager()
    manager.update_warning(warning(0, eta_minutes=10))
    resolved, fired = manager.update_warning(warning(30, eta_minutes=20))
    assert (resolved.status, fired.status) == ("resolved", "firing")
    assert fired.starts_at == T0 + timedelta(minutes=30)


def test_a_manager_pickled_before_exhaustion_alerts_existed_resumes() -> None:
    old = AlertManager()
    del old.__dict__["_exhaustions"]  # the state snapshots had before this change
    resumed = pickle.loads(pickle.dumps(old))
    assert resumed.update_warning(warning(0, eta_minutes=20))[0].status == "firing"
