"""Turns a service's stream of windows into firing and resolved alerts."""

from __future__ import annotations

import math
from collections.abc import Container, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from airis.events import Alert, Anomaly, CapacityWarning, Severity, event_id, fingerprint
from airis.operators.closed_windows import ClosedWindows
from airis.operators.types import ServiceWindow

__all__ = [
    "DEFAULT_CRITICAL_DIPS",
    "DEFAULT_CRITICAL_SCORE",
    "DEFAULT_CRITICAL_SPIKES",
    "DEFAULT_FLAP_WINDOW",
    "DEFAULT_MAX_FLAPS",
    "DEFAULT_OPEN_AFTER",
    "DEFAULT_RESOLVE_AFTER",
    "AlertManager",
]

#: Anomalous windows before an alert fires (``Settings.alert_open_after``).
DEFAULT_OPEN_AFTER = 3
#: Quiet windows before a firing alert resolves (``Settings.alert_resolve_after``).
DEFAULT_RESOLVE_AFTER = 6
#: Event time within which a re-opening alert counts as a flap.
DEFAULT_FLAP_WINDOW = timedelta(minutes=10)
#: Quick re-openings tolerated before an alert is held firing.
DEFAULT_MAX_FLAPS = 2
#: Peak score at or above which an alert is critical, whatever the signal.
DEFAULT_CRITICAL_SCORE = 0.999
#: Signal name fragments whose spikes are critical (error rates, 5xx counts).
DEFAULT_CRITICAL_SPIKES = ("error", "5xx", "fault")
#: Signal name fragments whose dips are critical (availability, success rates).
DEFAULT_CRITICAL_DIPS = ("availability", "success", "uptime")

_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


@dataclass
class _Track:
    """What the manager remembers about one fingerprint (small and picklable)."""

    service: str
    signal: str
    kind: str
    #: Anomalous windows in the current streak (pending or firing).
    streak: int = 0
    #: Windows since the last anomalous one (normal, absent or missing).
    quiet: int = 0
    #: Start of the first anomalous window of the current streak.
    started: datetime | None = None
    #: End of the last anomalous window.
    last_end: datetime | None = None
    #: The worst anomaly of the current streak.
    peak: Anomaly | None = None
    firing: bool = False
    #: Held firing because it flaps: resolves only after ``flap_window`` of quiet.
    held: bool = False
    severity: Severity = "warning"
    #: Consecutive re-openings within ``flap_window`` of the previous episode's end.
    flaps: int = 0
    #: ``ends_at`` of the previous episode.
    prev_end: datetime | None = None


@dataclass
class _Exhaustion:
    """A firing exhaustion alert: its episode's start and the crossing it warns of."""

    started: datetime
    due: datetime
    warning: CapacityWarning


class AlertManager:
    """Hysteresis, de-duplication and flap suppression for one service's anomalies.

    Feed it each closed `ServiceWindow` of one service, in event-time order, with
    `update_one`; it returns the `Alert` events to emit (usually none). An alert is
    identified by its fingerprint, ``fingerprint(service, signal, kind)``: a spike and a dip
    of the same signal are two alerts.

    **Opening.** An alert fires after ``open_after`` anomalous windows of a streak. The
    ``firing`` event's ``starts_at`` is the start of the streak's first anomalous window, not
    the window that confirmed it. A window where the signal was present but not anomalous
    (for that kind) breaks the streak.

    **De-duplication.** While an alert fires, further anomalous windows emit nothing; the
    peak score and severity are kept up to date. If the severity escalates (see below) and
    ``escalate`` is true, one more ``firing`` event is emitted with the higher severity and
    its own id; otherwise the rise only shows in the ``resolved`` event.

    **Resolving.** A firing alert resolves after ``resolve_after`` consecutive quiet windows;
    the ``resolved`` event has the same ``starts_at`` and ``ends_at`` = end of the last
    anomalous window.

    **Absent signals.** A window that lacks the signal entirely (a scrape interval longer
    than the window, a series that stopped reporting), and each whole window missing between
    two windows the manager received (the service sent nothing), is *quiet but not normal*:
    it counts towards resolving, but it does not break a pending streak unless the streak
    has gone ``resolve_after`` windows without an anomaly. Opening needs evidence; the lack
    of evidence is enough to close, so a series that stops reporting resolves instead of
    firing forever, and a sparse series can still open.

    **Flap suppression.** An episode that opens within ``flap_window`` (event time, from the
    previous episode's ``ends_at`` to this one's ``starts_at``) is a flap. When an alert
    opens with more than ``max_flaps`` consecutive flaps, it is held: its ``firing`` event
    carries the label ``flapping="true"`` and it resolves only once it has also been quiet
    for ``flap_window``, so a flapping signal gives one long episode instead of a train of
    firing/resolved pairs. Events for one fingerprint always alternate: one or more
    ``firing`` (escalations), then one ``resolved``.

    **Severity.** ``"critical"`` when the episode's peak score is ``>= critical_score``, or
    when the signal name contains one of ``critical_spikes`` and the kind is a spike, or one
    of ``critical_dips`` and the kind is a dip; ``"warning"`` otherwise.

    **Exhaustion.** `update_warning` takes the capacity planner's `CapacityWarning` events (a
    resource expected to cross its threshold): the forecast already weighed the evidence, so
    the first warning fires an ``exhaustion`` alert at once, with ``ends_at`` = the expected
    crossing (Alertmanager expires it then). While it fires, a warning of an earlier
    crossing updates it (a new ``firing`` event of the same episode); one of a later
    crossing changes nothing. It resolves when a window ends at or after the crossing it
    last warned of, without a newer warning: the resource crossed or the trend turned, and
    either way the window signals' own alerts say which.

    **Time.** Only event time is used (window bounds); each event's ``updated_at`` is the
    end of the window that decided it. A window that ends at or before the
    last one seen is a replay or out of order: it is ignored and counted in ``_skipped``.

    Ids are deterministic: ``event_id(fingerprint, starts_at, "firing", severity)`` and
    ``event_id(fingerprint, starts_at, "resolved")``, so a replay emits the same events.

    Parameters
    ----------
    open_after
        Anomalous windows in a streak before an alert fires.
    resolve_after
        Consecutive quiet windows before a firing alert resolves.
    flap_window
        Event time within which a re-opening counts as a flap, and the quiet time a held
        alert needs before it resolves.
    max_flaps
        Consecutive flaps tolerated before an alert is held.
    critical_score
        Peak score at or above which an alert is critical.
    critical_spikes
        Signal name fragments (lowercase) whose spikes are critical.
    critical_dips
        Signal name fragments (lowercase) whose dips are critical.
    escalate
        Emit another ``firing`` event when a firing alert's severity rises.

    Examples
    --------
    >>> import random
    >>> from datetime import UTC, datetime, timedelta
    >>> from airis.events import Anomaly, event_id
    >>> from airis.operators.types import Assessment, ServiceWindow, SignalSummary
    >>> rng = random.Random(42)
    >>> t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    >>> def window(i, incident):
    ...     start, end = t0 + timedelta(seconds=10 * i), t0 + timedelta(seconds=10 * (i + 1))
    ...     observed = rng.gauss(120.0, 5.0) + (700.0 if incident else 0.0)
    ...     score = 0.95 if incident else 0.2
    ...     verdict = Assessment(score, observed, 120.5, 95.1, 146.0, "recent", "level", 0.9)
    ...     signals = {"latency_p99": SignalSummary(start, verdict, 3)}
    ...     anomalies = ()
    ...     if incident:
    ...         anomalies = (Anomaly(
    ...             id=event_id("checkout", "latency_p99", "spike", start), service="checkout",
    ...             signal="latency_p99", kind="spike", window_start=start, window_end=end,
    ...             score=score, observed=observed, expected=120.5, lower=95.1, upper=146.0,
    ...             state="recent", detector="robust/level"),)
    ...     return ServiceWindow("checkout", start, end, signals, anomalies)
    >>> manager = AlertManager()
    >>> incident = [False, True, True, True, True, False, False, False, False, False, False]
    >>> for i, flag in enumerate(incident):
    ...     for alert in manager.update_one(window(i, flag)):
    ...         ends = alert.ends_at and alert.ends_at.time()
    ...         print(i, alert.status, alert.severity, alert.starts_at.time(), ends)
    ...         print(alert.summary)
    3 firing warning 12:00:10 None
    checkout latency_p99 spike: observed 819.1 vs expected 120.5 [95.1, 146.0]
    10 resolved warning 12:00:10 12:00:50
    checkout latency_p99 spike resolved; peak observed 819.1 vs expected 120.5 [95.1, 146.0]
    """

    def __init__(
        self,
        open_after: int = DEFAULT_OPEN_AFTER,
        resolve_after: int = DEFAULT_RESOLVE_AFTER,
        flap_window: timedelta = DEFAULT_FLAP_WINDOW,
        max_flaps: int = DEFAULT_MAX_FLAPS,
        critical_score: float = DEFAULT_CRITICAL_SCORE,
        critical_spikes: tuple[str, ...] = DEFAULT_CRITICAL_SPIKES,
        critical_dips: tuple[str, ...] = DEFAULT_CRITICAL_DIPS,
        escalate: bool = True,
    ) -> None:
        self.open_after = open_after
        self.resolve_after = resolve_after
        self.flap_window = flap_window
        self.max_flaps = max_flaps
        self.critical_score = critical_score
        self.critical_spikes = tuple(critical_spikes)
        self.critical_dips = tuple(critical_dips)
        self.escalate = escalate
        self._validate_arguments()
        self._tracks: dict[str, _Track] = {}
        self._exhaustions: dict[str, _Exhaustion] = {}
        self._last_end: datetime | None = None
        self._skipped = 0

    def __setstate__(self, state: dict) -> None:
        # Snapshots taken before exhaustion alerts went through the manager lack the field,
        # and those before the tracks were kept in order have them as they came.
        state.setdefault("_exhaustions", {})
        state["_tracks"] = _in_order(state["_tracks"])
        self.__dict__.update(state)

    def _validate_arguments(self) -> None:
        if self.open_after < 1:
            raise ValueError(f"open_after must be >= 1, got {self.open_after!r}")
        if self.resolve_after < 1:
            raise ValueError(f"resolve_after must be >= 1, got {self.resolve_after!r}")
        if self.flap_window < timedelta(0):
            raise ValueError(f"flap_window must be >= 0, got {self.flap_window!r}")
        if self.max_flaps < 0:
            raise ValueError(f"max_flaps must be >= 0, got {self.max_flaps!r}")
        if not 0.0 < self.critical_score <= 1.0:
            raise ValueError(f"critical_score must be in (0, 1], got {self.critical_score!r}")

    def update_one(self, window: ServiceWindow) -> list[Alert]:
        """Take one closed window of the service; return the alert events it causes."""
        return self._update(window.start, window.end, window.anomalies, window.signals)

    def _update(
        self, start: datetime, end: datetime, anomalies: Sequence[Anomaly], signals: Container[str]
    ) -> list[Alert]:
        """`update_one` of the window from ``start`` to ``end`` with ``signals``."""
        if self._last_end is not None and end <= self._last_end:
            self._skipped += 1
            return []
        missing = 0
        length = end - start
        if self._last_end is not None and start > self._last_end and length > timedelta(0):
            missing = (start - self._last_end) // length
        self._last_end = end

        worst: dict[str, Anomaly] = {}
        tracks, added = self._tracks, False
        for anomaly in anomalies:
            fp = anomaly.fingerprint
            if fp not in worst or anomaly.score > worst[fp].score:
                worst[fp] = anomaly
            if fp not in tracks:
                tracks[fp] = _Track(anomaly.service, anomaly.signal, anomaly.kind)
                added = True
        if added:  # rare: the tracks stay in order, and no window sorts them again
            self._tracks = tracks = _in_order(tracks)

        alerts: list[Alert] = []
        for fp, track in list(tracks.items()):  # by signal, kind and fingerprint
            if missing:
                alerts.extend(self._quiet(fp, track, missing, start, end, False))
            anomaly = worst.get(fp)
            if anomaly is not None:
                alerts.extend(self._anomalous(fp, track, anomaly, start, end))
            else:
                alerts.extend(self._quiet(fp, track, 1, end, end, track.signal in signals))
            if self._idle(track, end):
                del tracks[fp]
        expired = self._expire_exhaustions(end)
        return alerts + expired if expired else alerts

    def update_many(self, windows: Sequence[ServiceWindow]) -> list[Alert]:
        """`update_one` of each window in order (one batch's closed windows of the service)."""
        if type(windows) is not ClosedWindows:
            return [alert for window in windows for alert in self.update_one(window)]
        if not (windows.anomalous or self._tracks or self._exhaustions):
            # Nothing new, nothing to resolve or expire (most batches): only the last end moves.
            self._skip_to(windows)
            return []
        # The windows without anomalies stay columns: no `ServiceWindow` is made for them.
        alerts, made, width = [], set(windows.anomalous), windows.window
        for i, start in enumerate(windows.starts()):
            if i in made:
                alerts += self.update_one(windows[i])
            else:
                alerts += self._update(start, start + width, (), windows.signals_of(i))
        return alerts

    def _skip_to(self, windows: ClosedWindows) -> None:
        """What `update_one` does with each of ``windows`` when it has no anomaly and the
        manager no track or exhaustion: count those that end before the last end seen."""
        if not len(windows):
            return
        last = windows.end(len(windows) - 1)
        if self._last_end is not None and last <= self._last_end:
            self._skipped += len(windows)
            return
        if self._last_end is not None:  # the ends rise: the skipped ones come first
            skipped = 0
            while windows.end(skipped) <= self._last_end:
                skipped += 1
            self._skipped += skipped
        self._last_end = last

    def update_warning(self, warning: CapacityWarning) -> list[Alert]:
        """Take one exhaustion warning of the service; return the alert events it causes."""
        fp = fingerprint(warning.service, warning.signal, "exhaustion")
        alerts = self._expire_exhaustions(warning.ts)
        due = warning.ts + timedelta(seconds=warning.eta_seconds)
        current = self._exhaustions.get(fp)
        if current is not None and due >= current.due:
            return alerts
        started = warning.ts if current is None else current.started
        episode = _Exhaustion(started, due, warning)
        self._exhaustions[fp] = episode
        return [*alerts, _exhaustion_alert(fp, episode, "firing", warning.ts)]

    def _expire_exhaustions(self, now: datetime) -> list[Alert]:
        if not self._exhaustions:  # the usual case, once per window
            return []
        due = [fp for fp, e in self._exhaustions.items() if e.due <= now]
        return [_exhaustion_alert(fp, self._exhaustions.pop(fp), "resolved", now) for fp in due]

    def _anomalous(
        self, fp: str, track: _Track, anomaly: Anomaly, start: datetime, end: datetime
    ) -> list[Alert]:
        track.quiet = 0
        track.last_end = end
        if track.peak is None or track.streak == 0:
            track.started, track.peak = start, anomaly
        elif anomaly.score > track.peak.score:
            track.peak = anomaly
        track.streak += 1
        severity = self._severity(track)
        if track.firing:
            if _RANK[severity] <= _RANK[track.severity]:
                return []
            track.severity = severity
            return [self._alert(fp, track, "firing", end)] if self.escalate else []
        if track.streak < self.open_after:
            return []
        assert track.started is not None
        quick = track.prev_end is not None and track.started - track.prev_end <= self.flap_window
        track.flaps = track.flaps + 1 if quick else 0
        track.held = track.flaps > self.max_flaps
        track.firing = True
        track.severity = severity
        return [self._alert(fp, track, "firing", end)]

    def _quiet(
        self, fp: str, track: _Track, n: int, now: datetime, decided_at: datetime, normal: bool
    ) -> list[Alert]:
        """Count ``n`` windows without an anomaly, the last ending at ``now``."""
        track.quiet += n
        if track.firing:
            assert track.last_end is not None
            calm = not track.held or now - track.last_end >= self.flap_window
            if track.quiet >= self.resolve_after and calm:
                alert = self._alert(fp, track, "resolved", decided_at)
                track.prev_end = track.last_end
                self._end_streak(track)
                return [alert]
        elif track.streak and (normal or track.quiet >= self.resolve_after):
            self._end_streak(track)
        return []

    def _idle(self, track: _Track, now: datetime) -> bool:
        """Whether the track holds nothing worth keeping (no episode, no recent flap)."""
        if track.firing or track.streak:
            return False
        return track.prev_end is None or now - track.prev_end > self.flap_window

    @staticmethod
    def _end_streak(track: _Track) -> None:
        track.streak = 0
        track.started = track.peak = None
        track.firing = track.held = False
        track.severity = "warning"

    def _severity(self, track: _Track) -> Severity:
        assert track.peak is not None
        if track.peak.score >= self.critical_score:
            return "critical"
        fragments = self.critical_spikes if track.kind == "spike" else self.critical_dips
        signal = track.signal.lower()
        if any(fragment in signal for fragment in fragments):
            return "critical"
        return "warning"

    def _alert(self, fp: str, track: _Track, status: str, decided_at: datetime) -> Alert:
        peak, started = track.peak, track.started
        assert peak is not None and started is not None
        evidence = (
            f"observed {_fmt(peak.observed)} vs expected {_fmt(peak.expected)} "
            f"[{_fmt(peak.lower)}, {_fmt(peak.upper)}]"
        )
        what = f"{track.service} {track.signal} {track.kind}"
        labels = {
            "service": track.service,
            "signal": track.signal,
            "kind": track.kind,
            "severity": track.severity,
        }
        if track.held:
            labels["flapping"] = "true"
        firing = status == "firing"
        # A firing event's id includes the severity, so an escalation is a distinct event.
        return Alert(
            id=event_id(fp, started, status, track.severity)
            if firing
            else event_id(fp, started, status),
            fingerprint=fp,
            status="firing" if firing else "resolved",
            service=track.service,
            signal=track.signal,
            kind=track.kind,
            severity=track.severity,
            starts_at=started,
            ends_at=None if firing else track.last_end,
            updated_at=decided_at,
            score=peak.score,
            summary=f"{what}: {evidence}" if firing else f"{what} resolved; peak {evidence}",
            labels=labels,
        )


def _in_order(tracks: dict[str, _Track]) -> dict[str, _Track]:
    """``tracks`` by signal, kind and fingerprint: the order their alerts come in."""
    return dict(sorted(tracks.items(), key=lambda item: (item[1].signal, item[1].kind, item[0])))


def _exhaustion_alert(fp: str, episode: _Exhaustion, status: str, decided_at: datetime) -> Alert:
    w = episode.warning
    minutes = w.eta_seconds / 60
    low, high = w.eta_low_seconds / 60, w.eta_high_seconds / 60
    band = f"{low:.0f}–{high:.0f} min" if math.isfinite(high) else f"≥ {low:.0f} min"
    firing = status == "firing"
    summary = (
        f"{w.signal} of {w.service} at {w.value:.1f}% is expected to reach "
        f"{w.threshold:.0f}% in about {minutes:.0f} min ({band})"
    )
    return Alert(
        # A firing event's id includes the crossing it warns of, so an update is distinct.
        id=event_id(fp, episode.started, status, "warning", episode.due)
        if firing
        else event_id(fp, episode.started, status),
        fingerprint=fp,
        status="firing" if firing else "resolved",
        service=w.service,
        signal=w.signal,
        kind="exhaustion",
        severity="warning",
        starts_at=episode.started,
        ends_at=episode.due,
        updated_at=decided_at,
        score=w.confidence,
        summary=summary if firing else f"{w.service} {w.signal} exhaustion resolved; {summary}",
        # Labels identify an alert in Alertmanager: stable ones only (the ETA is in the text).
        labels={"alertname": "ResourceExhaustion", "threshold": f"{w.threshold:g}"},
    )


def _fmt(value: float) -> str:
    """A readable number: one decimal from 1 up, three significant digits below."""
    return f"{value:.1f}" if abs(value) >= 1.0 else f"{value:.3g}"
