"""The alert manager: parameters, hysteresis, absent signals, ids, state, properties."""

from __future__ import annotations

import pickle
import re
from datetime import timedelta

import pytest
from alert_windows import (
    FP,
    LAT,
    SERVICE,
    STEP,
    T0,
    anomaly,
    feed,
    run,
    start_of,
    statuses,
    window,
    windows,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from airis.events import Alert, event_id
from airis.operators.alerting.alert_manager import (
    DEFAULT_OPEN_AFTER,
    DEFAULT_RESOLVE_AFTER,
    AlertManager,
)
from airis.operators.types import ServiceWindow
from airis.settings import Settings

# --- parameters ------------------------------------------------------------------------------


def test_defaults_match_settings() -> None:
    fields = Settings.model_fields
    assert fields["alert_open_after"].default == DEFAULT_OPEN_AFTER
    assert fields["alert_resolve_after"].default == DEFAULT_RESOLVE_AFTER
    manager = AlertManager()
    assert (manager.open_after, manager.resolve_after) == (3, 6)


def test_parameters_are_stored_under_their_names() -> None:
    params = dict(
        open_after=2,
        resolve_after=4,
        flap_window=timedelta(minutes=5),
        max_flaps=1,
        critical_score=0.99,
        critical_spikes=("boom",),
        critical_dips=("up",),
        escalate=False,
    )
    manager = AlertManager(**params)
    assert {name: getattr(manager, name) for name in params} == params


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("open_after", 0),
        ("resolve_after", 0),
        ("flap_window", timedelta(seconds=-1)),
        ("max_flaps", -1),
        ("critical_score", 0.0),
        ("critical_score", 1.5),
    ],
)
def test_bad_parameters_are_rejected_by_name(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        AlertManager(**{name: value})


# --- hysteresis, dedup, resolve --------------------------------------------------------------


def test_two_anomalous_windows_are_not_enough() -> None:
    assert run("AA") == []


def test_third_anomalous_window_fires_once() -> None:
    assert statuses(run("AAA")) == [(2, "firing")]


def test_resolves_after_six_quiet_windows_not_five() -> None:
    assert statuses(run("AAA.....")) == [(2, "firing")]
    assert statuses(run("AAA......")) == [(2, "firing"), (8, "resolved")]


def test_long_anomaly_fires_exactly_once() -> None:
    out = run("A" * 200 + "." * 6)
    assert statuses(out) == [(2, "firing"), (205, "resolved")]


def test_a_normal_window_breaks_the_streak() -> None:
    assert run("AA.AA") == []
    ((i, alert),) = run("AA.AAA")
    assert i == 5 and alert.starts_at == start_of(3)


def test_a_short_dip_in_the_anomaly_does_not_resolve() -> None:
    assert statuses(run("AAA.....AAA......")) == [(2, "firing"), (16, "resolved")]


def test_starts_at_and_ends_at() -> None:
    (_, firing), (_, resolved) = run("..AAAAA.A......")
    assert firing.starts_at == start_of(2) and firing.ends_at is None
    assert resolved.starts_at == start_of(2)
    assert resolved.ends_at == start_of(8) + STEP
    # updated_at: the end of the window that decided the event (4th and 15th windows).
    assert firing.updated_at == start_of(5)
    assert resolved.updated_at == start_of(15)


def test_alert_fields() -> None:
    (_, firing), (_, resolved) = run("AAA......")
    assert firing.fingerprint == resolved.fingerprint == FP
    assert (firing.service, firing.signal, firing.kind) == (SERVICE, LAT, "spike")
    assert firing.score == resolved.score == 0.95
    assert firing.severity == "warning"
    assert firing.summary == (
        "checkout latency_p99 spike: observed 812.3 vs expected 120.5 [95.1, 146.0]"
    )
    assert resolved.summary.startswith("checkout latency_p99 spike resolved")
    assert firing.labels == {
        "service": SERVICE,
        "signal": LAT,
        "kind": "spike",
        "severity": "warning",
    }


def test_peak_score_is_the_worst_of_the_episode() -> None:
    ws = [window(i, anomaly(i, score=s)) for i, s in enumerate([0.91, 0.97, 0.93, 0.95])]
    ws += [window(i) for i in range(4, 10)]
    (_, firing), (_, resolved) = feed(AlertManager(), ws)
    assert firing.score == 0.97
    assert resolved.score == 0.97


# --- absent signals, missing windows, event time ---------------------------------------------


def test_absent_signal_does_not_break_a_pending_streak() -> None:
    ((i, alert),) = run("AA-A")
    assert i == 3 and alert.starts_at == T0


def test_missing_windows_do_not_break_a_pending_streak() -> None:
    ((i, alert),) = run("AA  A")
    assert i == 4 and alert.starts_at == T0


def test_a_long_absence_ends_a_pending_streak() -> None:
    assert statuses(run("AA-----A")) == [(7, "firing")]
    assert run("AA------A") == []
    assert run("AA      A") == []


def test_absent_signal_counts_towards_resolving() -> None:
    assert statuses(run("AAA-----")) == [(2, "firing")]
    assert statuses(run("AAA------")) == [(2, "firing"), (8, "resolved")]


def test_missing_windows_count_towards_resolving() -> None:
    out = run("AAA      .")
    assert statuses(out) == [(2, "firing"), (9, "resolved")]
    assert out[1][1].ends_at == start_of(3)
    assert out[1][1].updated_at == start_of(10)


def test_resolve_over_a_gap_then_a_new_episode_starts() -> None:
    out = run("AAA" + " " * 6 + "AAA")
    assert statuses(out) == [(2, "firing"), (9, "resolved"), (11, "firing")]
    assert out[2][1].starts_at == start_of(9)


def test_replayed_or_out_of_order_windows_are_ignored() -> None:
    manager = AlertManager()
    ws = windows("AAA")
    assert len(feed(manager, ws)) == 1
    assert feed(manager, ws) == []
    assert manager._skipped == 3


# --- ids -------------------------------------------------------------------------------------


def test_ids_are_deterministic_and_distinct() -> None:
    first, second = run("AAA......"), run("AAA......")
    assert first == second
    (_, firing), (_, resolved) = first
    assert firing.id != resolved.id
    assert firing.id == event_id(FP, T0, "firing", "warning")
    assert resolved.id == event_id(FP, T0, "resolved")


# --- fingerprints are independent ------------------------------------------------------------


def test_spike_and_dip_are_separate_alerts() -> None:
    ws = [window(i, anomaly(i, kind="spike"), anomaly(i, "error_rate", "dip")) for i in range(3)]
    out = feed(AlertManager(), ws)
    assert sorted((a.signal, a.kind) for _, a in out) == [("error_rate", "dip"), (LAT, "spike")]


def test_a_dip_counts_as_normal_for_the_spike() -> None:
    ws = [window(0, anomaly(0)), window(1, anomaly(1)), window(2, anomaly(2, kind="dip"))]
    ws += [window(3, anomaly(3))]
    assert feed(AlertManager(), ws) == []


def test_two_signals_interleaved_behave_as_if_alone() -> None:
    lat = "AAA........AAAA......."
    err = "..-AAAA......AAA......"
    ws = []
    for i, (a, b) in enumerate(zip(lat, err, strict=True)):
        anomalies = [anomaly(i, LAT)] if a == "A" else []
        anomalies += [anomaly(i, "error_rate")] if b == "A" else []
        present = (LAT,) + (("error_rate",) if b != "-" else ())
        ws.append(window(i, *anomalies, signals=present))
    together = feed(AlertManager(), ws)
    alone_lat = feed(AlertManager(), windows(lat))
    alone_err = feed(AlertManager(), windows(err, "error_rate"))
    assert [x for x in together if x[1].signal == LAT] == alone_lat
    assert [x for x in together if x[1].signal == "error_rate"] == alone_err
    assert statuses(alone_lat) == [(2, "firing"), (8, "resolved"), (13, "firing"), (20, "resolved")]


# --- state -----------------------------------------------------------------------------------


def test_pickle_mid_episode_continues_identically() -> None:
    ws = windows("AAAA-A..AAC" + "." * 6 + "A.A" + "A" * 5 + "." * 20)
    full = feed(AlertManager(max_flaps=0), ws)
    assert any("flapping" in a.labels for _, a in full)
    for cut in (2, 5, 12, 20, 30):
        manager = AlertManager(max_flaps=0)
        head = feed(manager, ws[:cut])
        clone = pickle.loads(pickle.dumps(manager))
        assert head + feed(clone, ws[cut:]) == full


def test_a_window_s_alerts_come_by_signal_then_kind_however_the_tracks_came() -> None:
    signals = ("zeta", "alpha", "mid", "beta")
    order = sorted((s, k) for s in signals for k in ("spike", "dip"))
    manager = AlertManager(open_after=1, resolve_after=1)
    # The tracks begin one window apart, in the order the signals are listed, and stay open.
    for i in range(len(signals)):
        both = [(anomaly(i, s, "spike"), anomaly(i, s, "dip", 0.9)) for s in signals[: i + 1]]
        manager.update_one(window(i, *(a for pair in both for a in pair), signals=signals))
    resolved = manager.update_one(window(len(signals), signals=signals))
    assert [(a.signal, a.kind) for a in resolved] == order
    # A snapshot taken before the tracks were kept in order holds them as they came.
    state = {**manager.__dict__, "_tracks": dict(reversed(manager._tracks.items()))}
    old = AlertManager.__new__(AlertManager)
    old.__setstate__(state)
    for m in (manager, old):
        m.update_one(window(9, *(anomaly(9, s) for s in signals), signals=signals))
        assert [a.signal for a in m.update_one(window(10, signals=signals))] == sorted(signals)


def test_state_is_pruned_after_an_episode() -> None:
    manager = AlertManager(flap_window=timedelta(seconds=30))
    feed(manager, windows("AAA......" + "." * 4))
    assert manager._tracks == {}
    feed(manager, windows(" " * 13 + "AA..."))
    assert manager._tracks == {}


# --- properties ------------------------------------------------------------------------------


_cell = st.sampled_from(["absent", "normal", "spike", "dip", "spike!", "dip!"])
_window = st.one_of(st.none(), st.fixed_dictionaries({"lat": _cell, "error_rate": _cell}))


def _build(cells: list[dict[str, str] | None]) -> list[ServiceWindow]:
    out = []
    for i, cell in enumerate(cells):
        if cell is None:
            continue
        anomalies = []
        for signal, state in cell.items():
            if state.rstrip("!") in ("spike", "dip"):
                score = 0.9995 if state.endswith("!") else 0.95
                anomalies.append(anomaly(i, signal, state.rstrip("!"), score))
        present = tuple(s for s, state in cell.items() if state != "absent")
        out.append(window(i, *anomalies, signals=present))
    return out


_params = st.fixed_dictionaries(
    {
        "open_after": st.integers(1, 4),
        "resolve_after": st.integers(1, 4),
        "max_flaps": st.integers(0, 2),
        "flap_window": st.sampled_from([timedelta(0), timedelta(seconds=30), timedelta(hours=1)]),
        "escalate": st.booleans(),
    }
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_window, max_size=60), _params)
def test_events_alternate_per_fingerprint(cells, params) -> None:
    ws = _build(cells)
    out = feed(AlertManager(**params), ws)
    ids = [a.id for _, a in out]
    assert len(ids) == len(set(ids))
    by_fp: dict[str, list[tuple[int, Alert]]] = {}
    for i, alert in out:
        by_fp.setdefault(alert.fingerprint, []).append((i, alert))
    rank = {"warning": 1, "critical": 2}
    for events in by_fp.values():
        letters = "".join("F" if a.status == "firing" else "R" for _, a in events)
        assert re.fullmatch(r"(F+R)*F*", letters)
        if not params["escalate"]:
            assert "FF" not in letters
        episode: list[Alert] = []
        previous_end = None
        for i, alert in events:
            assert alert.updated_at == start_of(i) + STEP
            if alert.status == "firing":
                assert alert.ends_at is None
                if episode:
                    assert alert.starts_at == episode[0].starts_at
                    assert rank[alert.severity] > rank[episode[-1].severity]
                elif previous_end is not None:
                    assert alert.starts_at >= previous_end
                episode.append(alert)
            else:
                assert alert.starts_at == episode[0].starts_at
                assert alert.starts_at < alert.ends_at <= start_of(i) + STEP
                assert rank[alert.severity] >= rank[episode[-1].severity]
                if "flapping" in alert.labels:
                    assert start_of(i) + STEP - alert.ends_at >= params["flap_window"]
                previous_end = alert.ends_at
                episode = []


@settings(max_examples=100, deadline=None)
@given(st.lists(_window, max_size=40), _params, st.data())
def test_pickle_round_trip_anywhere_and_determinism(cells, params, data) -> None:
    ws = _build(cells)
    cut = data.draw(st.integers(0, len(ws)))
    manager = AlertManager(**params)
    head = feed(manager, ws[:cut])
    clone = pickle.loads(pickle.dumps(manager))
    tail = feed(clone, ws[cut:])
    assert head + tail == feed(AlertManager(**params), ws)
