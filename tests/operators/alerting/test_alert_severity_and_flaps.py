"""The alert manager's severity rule and flap suppression."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alert_windows import FP, LAT, T0, anomaly, feed, run, start_of, statuses, window

from airis.events import event_id
from airis.operators.alerting.alert_manager import (
    AlertManager,
)

# --- severity --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signal", "kind", "score", "severity"),
    [
        (LAT, "spike", 0.95, "warning"),
        (LAT, "spike", 0.999, "critical"),
        (LAT, "dip", 0.9995, "critical"),
        ("error_rate", "spike", 0.95, "critical"),
        ("http_5xx", "spike", 0.95, "critical"),
        ("error_rate", "dip", 0.95, "warning"),
        ("availability", "dip", 0.95, "critical"),
        ("Success_Rate", "dip", 0.95, "critical"),
        ("availability", "spike", 0.95, "warning"),
    ],
)
def test_severity_rule(signal: str, kind: str, score: float, severity: str) -> None:
    ws = [window(i, anomaly(i, signal, kind, score)) for i in range(3)]
    ((_, alert),) = feed(AlertManager(), ws)
    assert alert.severity == severity
    assert alert.labels["severity"] == severity


def test_severity_escalates_with_a_new_firing_event() -> None:
    out = run("AAAAC" + "." * 6)
    assert [(i, a.status, a.severity) for i, a in out] == [
        (2, "firing", "warning"),
        (4, "firing", "critical"),
        (10, "resolved", "critical"),
    ]
    ids = [a.id for _, a in out]
    assert len(set(ids)) == 3
    assert ids[1] == event_id(FP, T0, "firing", "critical")
    assert out[1][1].starts_at == out[0][1].starts_at == T0
    assert out[1][1].score == 0.9995


def test_severity_escalation_without_new_event() -> None:
    out = run("AAAAC" + "." * 6, escalate=False)
    assert [(i, a.status, a.severity) for i, a in out] == [
        (2, "firing", "warning"),
        (10, "resolved", "critical"),
    ]


def test_critical_from_the_start_does_not_escalate_again() -> None:
    out = run("CCCCC......")
    assert [(a.status, a.severity) for _, a in out] == [
        ("firing", "critical"),
        ("resolved", "critical"),
    ]


# --- flap suppression ------------------------------------------------------------------------


FAST = dict(open_after=1, resolve_after=1, flap_window=timedelta(minutes=1), max_flaps=2)


def test_flapping_alert_is_held_firing() -> None:
    out = run("A.A.A.A.A.A.", **FAST)
    assert statuses(out) == [
        (0, "firing"),
        (1, "resolved"),
        (2, "firing"),
        (3, "resolved"),
        (4, "firing"),
        (5, "resolved"),
        (6, "firing"),
    ]
    assert "flapping" not in out[4][1].labels
    assert out[6][1].labels["flapping"] == "true"


def test_held_alert_resolves_after_a_quiet_flap_window() -> None:
    # The held episode's last anomaly ends at 11 * STEP; one minute later is window 16's end.
    pattern = "A.A.A.A.A.A" + "." * 8
    out = run(pattern, **FAST)
    held_firing, resolved = out[-2][1], out[-1][1]
    assert (out[-2][0], out[-1][0]) == (6, 16)
    assert resolved.status == "resolved" and resolved.labels["flapping"] == "true"
    assert resolved.starts_at == held_firing.starts_at == start_of(6)
    assert resolved.ends_at == start_of(11)
    assert resolved.id == event_id(FP, start_of(6), "resolved")


def test_after_a_held_episode_the_next_one_is_normal_again() -> None:
    pattern = "A.A.A.A.A.A" + "." * 8 + "A."
    out = run(pattern, **FAST)
    assert statuses(out[-2:]) == [(19, "firing"), (20, "resolved")]
    assert "flapping" not in out[-2][1].labels


def test_slow_reopenings_are_not_flaps() -> None:
    # Re-openings more than one minute (6 windows) apart never accumulate flaps.
    pattern = ("A" + "." * 7) * 6
    out = run(pattern, **FAST)
    assert [a.status for _, a in out] == ["firing", "resolved"] * 6
    assert not any("flapping" in a.labels for _, a in out)


def test_max_flaps_zero_holds_the_first_quick_reopening() -> None:
    out = run("A.A.A.A.", **{**FAST, "max_flaps": 0})
    assert statuses(out) == [(0, "firing"), (1, "resolved"), (2, "firing")]


def test_flap_suppression_with_default_parameters() -> None:
    episode = "AAA......"
    out = run(episode * 5)
    assert [a.status for _, a in out] == ["firing", "resolved"] * 3 + ["firing"]
    assert out[-1][1].labels["flapping"] == "true"
