"""Root-cause ranking of one incident, with evidence a human can check.

Engine-agnostic: the input is a call graph, what each service's detectors saw during the
incident window, the symptom and recent changes; the output is a ranked list of candidates.
The same code ranks our simulator's incidents and the public PetShop and Nezha benchmarks
(``airis.evals.petshop``, ``airis.evals.nezha``).

Six features, each in ``[0, 1]``, combined by a weighted mean with fixed weights
(`RcaWeights`; a feature no candidate has data for drops out):

* **topology** (0.35) — an anomalous service all of whose dependencies (callees) are healthy is
  the deepest anomalous dependency: 1.0. One whose anomalous dependencies explain it only in
  part keeps part of the credit, ``1 - strongest explanation``: a fault in a dependency shows
  in its callers no stronger, no longer and no earlier than in itself (see `_explains`), so
  a dependency that turned anomalous after the candidate, or only briefly, explains little.
  Where both give an ``excess`` (the rise of an additive signal in its own unit: seconds of
  latency, failed requests), "stronger" compares those rather than z-scores: a caller's
  latency contains its callees', so a database 1 ms slower (z = 8 on its steady baseline)
  does not explain a caller 200 ms slower (z = 10), while the caller's own rise is what a
  latency fault in it looks like; every caller of a slow dependency inherits its rise.
* **onset** (0.15) — the first anomalous service gets 1.0, the last 0.0, linearly between.
* **magnitude** (0.20) — ``peak / largest peak`` among the candidates, so z-like magnitudes
  and scores in ``[0, 1]`` both work.
* **correlation** (0.20) — the largest ``|Pearson r|`` between the candidate's series and the
  symptom's, over lags ``0..max_lag`` where the candidate leads (pairs with NaN dropped).
* **change** (0.10) — a deploy to the candidate within ``change_window_s`` before its onset:
  ``1 - age / window``.
* **persistence** (0.10) — ``persistence / longest persistence`` among the candidates: a
  fault keeps its root anomalous for as long as it lasts, while a bystander that happens to
  blip during the incident is anomalous for a window or two.

Candidates are the anomalous services (onset not None); when the symptom is known and in
the graph, only those linked to it by a chain of anomalous dependencies (see `_scope`),
since nothing else can cause what the symptom shows. Ties are broken by service name, so
the output is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from airis.events import RcaCandidate

__all__ = [
    "ChangeEvent",
    "RankedCause",
    "RcaConfig",
    "RcaWeights",
    "ServiceAnomaly",
    "lagged_correlation",
    "rank_incident",
    "rank_root_causes",
]

#: Below this many paired points a correlation says nothing.
_MIN_CORR_POINTS = 3


@dataclass(frozen=True)
class ServiceAnomaly:
    """What the detectors saw of one service during the incident window.

    Parameters
    ----------
    onset
        Time (seconds, any common origin) of the first anomalous point, or None if healthy.
    magnitude
        Peak anomaly magnitude: a z-like value (``>= 0``) or a score in ``[0, 1]``; use one
        kind for all services of an incident.
    series
        The service's signal over the window, aligned in time with the symptom's.
    detail
        A short description of the peak for the evidence, e.g. ``"latency_p99 5.2× expected"``.
    """

    onset: float | None = None
    magnitude: float = 0.0
    series: np.ndarray | None = None
    detail: str = ""
    persistence: float | None = None
    """How long the service stayed anomalous, in windows (e.g. those of its most persistent
    signal), or None if unknown."""
    notes: tuple[str, ...] = ()
    """Further evidence shown with the candidate (e.g. what its logs did), not scored."""
    excess: float | None = None
    """The peak rise of an additive signal over its normal level, in the signal's own unit
    (seconds of latency, failed requests), or None if unknown. A caller's latency
    contains its dependencies' latency and its errors their errors, so a dependency whose
    excess is a tenth of its caller's explains a tenth of it, however large its z-score."""

    @property
    def anomalous(self) -> bool:
        return self.onset is not None


@dataclass(frozen=True)
class ChangeEvent:
    """A change to a service (a deploy, a config push) at ``ts`` seconds."""

    service: str
    ts: float
    kind: str = "deployed"


@dataclass(frozen=True)
class RcaWeights:
    """Fixed relative weights of the features (``>= 0``, not all 0).

    A candidate's score is the weighted mean of its features over the features the input can
    provide: one that no candidate has data for (no series, no persistence) drops out, so the
    ranking is the same as if its weight were 0, and the score stays in ``[0, 1]``.
    """

    topology: float = 0.35
    onset: float = 0.15
    magnitude: float = 0.20
    correlation: float = 0.20
    change: float = 0.10
    persistence: float = 0.10

    def __post_init__(self) -> None:
        values = list(self.as_dict().values())
        if any(v < 0 or not math.isfinite(v) for v in values) or sum(values) <= 0:
            raise ValueError(f"weights must be finite, >= 0 and not all 0, got {values}")

    def as_dict(self) -> dict[str, float]:
        return {f: getattr(self, f) for f in FEATURES}


#: The features, in the order of `RcaWeights`.
FEATURES = ("topology", "onset", "magnitude", "correlation", "change", "persistence")


@dataclass(frozen=True)
class RcaConfig:
    """Parameters of the ranking (one fixed configuration for every incident)."""

    weights: RcaWeights = field(default_factory=RcaWeights)
    max_lag: int = 2
    """Largest lag, in samples, by which a candidate's series may lead the symptom's."""
    change_window_s: float = 1800.0
    """How long before its onset a change to a candidate still counts."""
    onset_tolerance_s: float = 60.0
    """A dependency that turned anomalous more than this after a candidate cannot explain the
    candidate's anomaly (detectors of different series may fire a little apart)."""

    def __post_init__(self) -> None:
        if self.max_lag < 0:
            raise ValueError(f"max_lag must be >= 0, got {self.max_lag}")
        if self.change_window_s <= 0:
            raise ValueError(f"change_window_s must be > 0, got {self.change_window_s}")


@dataclass(frozen=True)
class RankedCause:
    """One candidate: its score in ``[0, 1]``, per-feature scores and evidence."""

    service: str
    score: float
    features: dict[str, float]
    evidence: list[str]


def lagged_correlation(
    candidate: np.ndarray, symptom: np.ndarray, max_lag: int = 2
) -> tuple[float, int]:
    """Largest ``|Pearson r|`` of ``candidate[t]`` with ``symptom[t + lag]``, and its lag.

    Pairs with a NaN are dropped; a lag with fewer than 3 pairs or a constant side is skipped.
    Returns ``(0.0, 0)`` when no lag qualifies.

    >>> x = np.array([0.0, 0, 1, 5, 2, 0, 0, 3, 0])
    >>> y = np.roll(x, 1)  # the symptom follows one sample later
    >>> r, lag = lagged_correlation(x, y, max_lag=2)
    >>> round(r, 3), lag
    (1.0, 1)
    """
    a = np.asarray(candidate, dtype=float)
    b = np.asarray(symptom, dtype=float)
    n = min(len(a), len(b))
    best, best_lag = 0.0, 0
    for lag in range(min(max_lag, max(n - 1, 0)) + 1):
        x, y = a[: n - lag], b[lag:n]
        ok = ~(np.isnan(x) | np.isnan(y))
        x, y = x[ok], y[ok]
        if len(x) < _MIN_CORR_POINTS or np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        r = float(np.corrcoef(x, y)[0, 1])
        # Strictly greater: on equal r the smaller lag wins, which keeps the output stable.
        if math.isfinite(r) and abs(r) > best + 1e-12:
            best, best_lag = abs(r), lag
    return min(best, 1.0), best_lag


def _dependencies_closure(graph: Mapping[str, set[str]], start: str) -> set[str]:
    """``start`` and every service it depends on, directly or not."""
    seen = {start}
    stack = [start]
    while stack:
        for callee in sorted(graph.get(stack.pop(), ())):
            if callee not in seen:
                seen.add(callee)
                stack.append(callee)
    return seen


def _scope(
    graph: Mapping[str, set[str]], anomalies: Mapping[str, ServiceAnomaly], symptom: str | None
) -> list[str]:
    """Anomalous services that can explain the symptom, sorted by name.

    Anomaly spreads from a dependency to its callers, so a cause is linked to the symptom by
    a chain of anomalous services: walk the dependencies from the symptom through anomalous
    ones only. Without a usable symptom, or if the walk finds nothing, every anomalous
    service in the symptom's dependency closure (or in the whole graph) is a candidate.
    """
    anomalous = {s for s, a in anomalies.items() if a.anomalous}
    if symptom is None or symptom not in graph:
        return sorted(anomalous)
    reached = {symptom} if symptom in anomalous else set()
    stack = [symptom]
    while stack:
        for callee in sorted(graph.get(stack.pop(), ())):
            if callee in anomalous and callee not in reached:
                reached.add(callee)
                stack.append(callee)
    if reached:
        return sorted(reached)
    return sorted(anomalous & _dependencies_closure(graph, symptom))


def _fmt_duration(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _names(items: Iterable[str], limit: int = 3) -> str:
    items = sorted(items)
    shown = ", ".join(items[:limit])
    return shown + (f" +{len(items) - limit} more" if len(items) > limit else "")


def _explains(dep: ServiceAnomaly, own: ServiceAnomaly, tolerance: float) -> float:
    """How much of a caller's anomaly (``own``) an anomalous dependency can explain (>= 0).

    A fault in a dependency shows in its callers no stronger and no longer than in itself,
    and not before it: the ratio of peaks (of excesses where both have one, else of
    magnitudes), times the ratio of persistences when both are known (a one-window blip
    explains no hour-long anomaly), and 0 when the dependency turned anomalous more than
    ``tolerance`` seconds after the caller (an effect, not a cause).

    >>> caller = ServiceAnomaly(onset=0, magnitude=10, excess=0.2)  # 200 ms slower
    >>> round(_explains(ServiceAnomaly(onset=0, magnitude=8, excess=0.001), caller, 60), 3)
    0.005
    >>> _explains(ServiceAnomaly(onset=0, magnitude=8), ServiceAnomaly(onset=0, magnitude=10), 60)
    0.8
    """
    if dep.onset is None or own.onset is None or dep.onset > own.onset + tolerance:
        return 0.0
    if dep.excess is not None and own.excess is not None:
        ratio = max(dep.excess, 0.0) / own.excess if own.excess > 0 else math.inf
    else:
        ratio = dep.magnitude / own.magnitude if own.magnitude > 0 else math.inf
    if dep.persistence is not None and own.persistence:
        ratio *= min(1.0, dep.persistence / own.persistence)
    return ratio


def _topology(
    service: str,
    graph: Mapping[str, set[str]],
    info: Mapping[str, ServiceAnomaly],
    tolerance: float,
) -> tuple[float, str]:
    deps = set(graph.get(service, ()))
    bad = {d for d in deps if d in info and info[d].anomalous}
    if not deps:
        return 1.0, "deepest anomalous dependency: its dependencies are healthy (it has none)"
    if not bad:
        return (
            1.0,
            f"deepest anomalous dependency: its own dependencies ({_names(deps)}) are healthy",
        )
    own = info[service]
    explains = {d: _explains(info[d], own, tolerance) for d in bad}
    strongest = max(bad, key=lambda d: (explains[d], d))
    ratio = explains[strongest]
    score = max(0.0, 1.0 - ratio)
    dep = info[strongest]
    if all(info[d].onset > own.onset + tolerance for d in bad):
        why = f"its anomalous dependencies ({_names(bad)}) turned anomalous only after it"
    elif ratio < 1 and dep.excess is not None and own.excess is not None:
        why = (
            f"its own rise is not explained by its anomalous dependencies ({_names(bad)}): "
            f"{own.excess:.3g} vs {dep.excess:.3g}"
        )
    elif ratio < 1:
        why = (
            f"more anomalous than its anomalous dependencies ({_names(bad)}): "
            f"peak {own.magnitude:.3g} vs {dep.magnitude:.3g}"
        )
        if dep.persistence is not None and own.persistence is not None:
            why += f", {own.persistence:.3g} windows vs {dep.persistence:.3g}"
    else:
        why = f"its dependency {strongest} is anomalous too, at least as strongly and as long"
    return score, why


def _onset(
    service: str,
    info: Mapping[str, ServiceAnomaly],
    candidates: Sequence[str],
    symptom: str | None,
) -> tuple[float, str]:
    onsets = [info[c].onset for c in candidates if info[c].onset is not None]
    own = info[service].onset
    if own is None or not onsets:
        return 0.0, ""
    first, last = min(onsets), max(onsets)
    score = 1.0 if last == first else (last - own) / (last - first)
    sym_onset = info[symptom].onset if symptom in info and symptom != service else None
    if own == first and own < last:
        why = "first anomalous service"
        if sym_onset is not None and sym_onset > own:
            why += f": {_fmt_duration(sym_onset - own)} before {symptom}"
    elif sym_onset is not None and own < sym_onset:
        why = f"anomalous {_fmt_duration(sym_onset - own)} before {symptom}"
    elif sym_onset is not None and own == sym_onset:
        why = f"anomalous at the same time as {symptom}"
    else:
        why = f"anomalous {_fmt_duration(own - first)} after the first anomalous service"
    return score, why


def _correlation(
    service: str, info: Mapping[str, ServiceAnomaly], symptom: str | None, max_lag: int
) -> tuple[float, str]:
    if symptom is None or symptom == service or symptom not in info:
        return 0.0, ""
    a, b = info[service].series, info[symptom].series
    if a is None or b is None:
        return 0.0, ""
    r, lag = lagged_correlation(a, b, max_lag)
    if r == 0.0:
        return 0.0, ""
    at = f"at lag {lag}" if lag else "at lag 0"
    return r, f"its signal correlates with {symptom}'s {at} (|r| = {r:.2f})"


def _change(
    service: str, info: Mapping[str, ServiceAnomaly], changes: Sequence[ChangeEvent], window: float
) -> tuple[float, str]:
    onset = info[service].onset
    best, why = 0.0, ""
    for ch in changes:
        if ch.service != service or onset is None:
            continue
        age = onset - ch.ts
        if 0 <= age <= window and 1 - age / window > best:
            best = 1 - age / window
            why = f"{ch.kind} {_fmt_duration(age)} before onset"
    return best, why


def _persistence(
    service: str, info: Mapping[str, ServiceAnomaly], candidates: Sequence[str]
) -> tuple[float, str]:
    own = info[service].persistence
    longest = max((info[c].persistence or 0.0 for c in candidates), default=0.0)
    if own is None or own <= 0 or longest <= 0:
        return 0.0, ""
    return own / longest, f"anomalous for {own:.3g} windows (longest: {longest:.3g})"


def _available(
    anomalies: Mapping[str, ServiceAnomaly], candidates: Sequence[str], symptom: str | None
) -> set[str]:
    """The features this input can provide (see `RcaWeights`)."""
    out = {"topology", "onset", "magnitude", "change"}
    if symptom is not None and any(anomalies[c].series is not None for c in candidates):
        out.add("correlation")
    if any(anomalies[c].persistence is not None for c in candidates):
        out.add("persistence")
    return out


def rank_root_causes(
    graph: Mapping[str, set[str]],
    anomalies: Mapping[str, ServiceAnomaly],
    *,
    symptom: str | None = None,
    changes: Sequence[ChangeEvent] = (),
    config: RcaConfig | None = None,
    eligible: Collection[str] | None = None,
) -> list[RankedCause]:
    """Rank the anomalous services as root causes of the symptom, best first.

    ``graph`` maps a caller to its callees (its dependencies). Services missing from
    ``anomalies`` count as healthy. ``eligible``, if given, limits which services may be
    ranked (others still count as dependencies). Evidence is ordered by each feature's weighted
    contribution, strongest first.

    >>> graph = {"frontend": {"api"}, "api": {"db", "cache"}}
    >>> anomalies = {
    ...     "frontend": ServiceAnomaly(60, 6, series=np.array([0, 0, 0, 3, 6, 5.0])),
    ...     "api": ServiceAnomaly(30, 7, series=np.array([0, 0, 3, 7, 5, 5.0])),
    ...     "db": ServiceAnomaly(0, 9, series=np.array([0, 1, 9, 6, 6, 5.0])),
    ... }
    >>> ranked = rank_root_causes(graph, anomalies, symptom="frontend")
    >>> [(c.service, round(c.score, 2)) for c in ranked]
    [('db', 0.88), ('api', 0.43), ('frontend', 0.13)]
    >>> ranked[0].evidence[0]
    'deepest anomalous dependency: its dependencies are healthy (it has none)'
    """
    cfg = config or RcaConfig()
    w = cfg.weights
    anomalous = _scope(graph, anomalies, symptom)
    if eligible is not None:
        anomalous = [s for s in anomalous if s in eligible]
    if not anomalous:
        return []
    top = max(anomalies[s].magnitude for s in anomalous)
    available = _available(anomalies, anomalous, symptom)
    weights = {f: v if f in available else 0.0 for f, v in w.as_dict().items()}
    total = sum(weights.values()) or 1.0
    ranked = []
    for s in anomalous:
        mag = anomalies[s].magnitude
        mag_score = max(mag, 0.0) / top if top > 0 else 0.0
        detail = anomalies[s].detail or f"peak {mag:.3g}"
        parts = {
            "topology": _topology(s, graph, anomalies, cfg.onset_tolerance_s),
            "onset": _onset(s, anomalies, anomalous, symptom),
            "magnitude": (mag_score, detail),
            "correlation": _correlation(s, anomalies, symptom, cfg.max_lag),
            "change": _change(s, anomalies, changes, cfg.change_window_s),
            "persistence": _persistence(s, anomalies, anomalous),
        }
        weighted = {name: weights[name] / total * value for name, (value, _) in parts.items()}
        score = min(1.0, max(0.0, sum(weighted.values())))
        order = sorted(parts, key=lambda name: -weighted[name])
        evidence = [parts[name][1] for name in order if parts[name][1] and parts[name][0] > 0]
        evidence += anomalies[s].notes
        features = {name: round(value, 6) for name, (value, _) in parts.items()}
        ranked.append(RankedCause(s, score, features, evidence))
    ranked.sort(key=lambda c: (-round(c.score, 12), c.service))
    return ranked


def rank_incident(
    incident_id: str,
    graph: Mapping[str, set[str]],
    anomalies: Mapping[str, ServiceAnomaly],
    *,
    symptom: str | None = None,
    changes: Sequence[ChangeEvent] = (),
    config: RcaConfig | None = None,
    eligible: Collection[str] | None = None,
    top_k: int | None = None,
) -> list[RcaCandidate]:
    """`rank_root_causes` as `RcaCandidate` records of ``incident_id`` (rank 1 = best).

    >>> cands = rank_incident(
    ...     "inc-1", {"web": {"db"}}, {"db": ServiceAnomaly(onset=0, magnitude=4)}, symptom="web"
    ... )
    >>> [(c.rank, c.service, c.incident_id) for c in cands]
    [(1, 'db', 'inc-1')]
    """
    ranked = rank_root_causes(
        graph, anomalies, symptom=symptom, changes=changes, config=config, eligible=eligible
    )
    if top_k is not None:
        ranked = ranked[:top_k]
    return [
        RcaCandidate(
            incident_id=incident_id,
            rank=i,
            service=c.service,
            score=c.score,
            evidence=c.evidence,
            features=c.features,
        )
        for i, c in enumerate(ranked, start=1)
    ]
