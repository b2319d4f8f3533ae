"""`airis eval nezha`: the root-cause ranking on the Nezha fault-injection data (pod metrics).

Nezha (Yu et al., ESEC/FSE 2023, github.com/IntelligentDDS/Nezha) injected 101 faults, one at
a time, into OnlineBoutique (10 services, 2022-08-22/23) and TrainTicket (46 services,
2023-01-29/30): CPU contention, CPU consumption, network delay, and code-level ``return`` and
``exception`` faults. ``../shared/data/rca_nezha`` holds, per day, 1-minute pod metrics, the
frontend's SLO series and the fault list; OnlineBoutique also has its call graph.

Per fault, using only what a streaming engine would have had 5 minutes after the injection
(``inject_time``, the string: it is on the metrics' clock; ``inject_timestamp`` is off by
about 8 hours for most faults of 2023-01-29; the rows' ``Time`` column, not ``TimeStamp``,
which is 200,000,000 s off for one pod of 2022-08-22; rows rounded to the minute):

* **loading**: a 0 where a live pod cannot measure 0 is a missing sample (`_ZERO_IS_MISSING`):
  TrainTicket writes a latency of 0 for every minute a pod served nothing (33-39 % of its
  server-latency values, all at zero workload), and CPU (and memory) of 0 in every row for
  pods whose container series was not collected (ts-security-service, ts-avatar-service,
  ts-voucher-service); both systems have one-minute CPU gaps written as 0;
* **reference**: each pod's metrics in the `REFERENCE_S` (30 minutes) before the injection:
  median and MAD per metric (as a standard deviation; else the standard deviation; never
  below `REL_FLOOR` of the level). Faults are about 8 minutes apart, so it spans earlier
  faults too: the robust statistics are what keep it usable. NaNs are skipped;
* **anomaly score** per pod and minute: the largest |z| over the pod's own metrics (CPU,
  memory, syscalls, network bytes, server latency, workload, success rate; the ``Node*``
  columns describe the machine, shared by every pod on it, and the client-side latency
  describes the pod's calls to others, so both are left out), each metric's |z| taken as its
  smallest over the last `SUSTAIN_S` (2 minutes: a deviation that lasted, not a one-minute
  blip), in ``[injection, injection + WINDOW_S]``; ``WINDOW_S`` (5 minutes) is the only look
  past the injection. Where there is a call graph, a service's score is also what its
  callers saw of their calls: the smallest rise of their client latency (a delay on the
  wire shows there, not in the delayed pod). A pod is anomalous from the first minute whose
  score reaches `Z_THRESHOLD`, unless it was already anomalous before the injection: then
  from its first new crossing, if any;
* **symptom**: the frontend SLO series (``front_service.csv``: latency P90 rise or success
  rate drop, scored the same way), a node of its own that calls the entry services, so that
  correlation with the symptom is a feature of every candidate;
* **ranking**: `airis.operators.incidents.rca.rank_root_causes` with its default configuration, over
  services (pod name without its two hash suffixes). The call graph is ``dependency.csv``
  where the system has one (OnlineBoutique; IP addresses and the load generator dropped);
  TrainTicket has none and is ranked without one (every anomalous service is a candidate;
  topology gives no information; no graph is typed in from outside knowledge). Services the
  ranking leaves out (not anomalous) follow in order of their peak score, so that every
  service has a rank.

Checked for TrainTicket (held out; looked at once for loader bugs, and once at the end, where
comparing latencies on a log scale was reverted: better on OnlineBoutique, worse on
TrainTicket's AS@3/5): every fault's
``inject_pod`` is a metric file of its day and its service is the one scored; a CPU fault's
root pod shows its jump 1-2 minutes after ``inject_time``; both days have the same columns
and one pod per service (no restart or rename within a day); the two loader bugs above were
the only ones. What kept it at chance was the scoring: client latency of idle pods (long
calls of 10 s to 1 h, in the same histograms) gave z-scores of 10^4-10^5 that no real fault
reached, and pods already anomalous before the injection passed for the first to react.

Reported: AS@1/3/5 at service level (the injected pod's service in the top k) per system and
per fault type, beside the published rows. ``return`` and ``exception`` faults are code-level
faults that Nezha localises from logs and traces: they may leave little in pod metrics.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from airis.cli.common import SHARED_DATA, console, write_json
from airis.evals.nezha_data import MINUTE, SYSTEMS, NezhaDay, NezhaFault, load_day, service_of
from airis.evals.scoreboard import ScoreRow, is_tuned_on
from airis.operators.gaussian import MEDIAN_AD_TO_SIGMA
from airis.operators.incidents.rca import RcaConfig, ServiceAnomaly, rank_root_causes

__all__ = [
    "PUBLISHED",
    "REFERENCE_S",
    "REL_FLOOR",
    "SUSTAIN_S",
    "SYSTEMS",
    "WINDOW_S",
    "Z_THRESHOLD",
    "NezhaDay",
    "NezhaFault",
    "eval_nezha",
    "fault_anomalies",
    "load_day",
    "print_eval_nezha",
    "rank_fault",
    "service_of",
]

logger = logging.getLogger(__name__)

#: How much history before the injection is the reference (seconds).
REFERENCE_S = 30 * 60.0
#: How long after the injection the anomaly scores look (seconds): the only look ahead.
WINDOW_S = 5 * 60.0
#: A pod is anomalous from the first minute its score (largest robust z) reaches this.
Z_THRESHOLD = 5.0
#: A deviation counts once it has lasted this long (seconds): a one-minute blip of one
#: metric among twenty is noise, a fault lasts minutes.
SUSTAIN_S = 2 * 60.0
#: A metric's scale is never below this fraction of its level.
REL_FLOOR = 0.05
#: Published service-level AS@1/3/5 (%), Nezha paper Table 3 (../shared/data/rca_nezha).
PUBLISHED: dict[str, dict[str, tuple[float, float, float]]] = {
    "OnlineBoutique": {
        "MicroRCA (metrics)": (16.07, 62.5, 92.75),
        "Nezha (metrics+logs+traces)": (92.86, 96.43, 96.43),
    },
    "TrainTicket": {
        "MicroRCA (metrics)": (20.0, 31.11, 44.44),
        "Nezha (metrics+logs+traces)": (86.67, 97.78, 97.78),
    },
}
#: The symptom's node in the ranking: the user-facing SLO, calling the entry service.
SYMPTOM = "front_service"
KS = (1, 3, 5)
#: Metrics of the machine the pod runs on (shared with every pod there), not the pod's own.
_MACHINE_PREFIX = "Node"
#: Metrics the pod measures of its calls to other services: they show its dependencies'
#: faults (a caller's client latency contains its callee's delay), not its own.
_CLIENT_SIDE = "Client"

Progress = Callable[[str], None]


def _robust_z(
    reference: np.ndarray, values: np.ndarray, level: np.ndarray | None = None
) -> np.ndarray:
    """``(values - median) / scale`` per column, against the reference rows.

    The scale is the MAD (as a standard deviation), else the standard deviation; never below
    `REL_FLOOR` of the level, so a metric that was flat in the reference (a percentile
    latency stuck on one bucket) does not turn every small step into a huge z. ``level``
    (per column) is the metric's typical level across the system's pods: a pod idle in the
    reference is measured against it rather than against its own (absent) level.

    >>> ref = np.array([[10.0, 0.1], [11, 0.1], [9, 0.1]])
    >>> _robust_z(ref, np.array([[20.0, 0.2]])).round(1).tolist()  # MAD 1; flat: 5 % of 0.1
    [[6.7, 20.0]]
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(reference, axis=0)
        scale = MEDIAN_AD_TO_SIGMA * np.nanmedian(np.abs(reference - median), axis=0)
        scale = np.where(scale > 1e-12, scale, np.nanstd(reference, axis=0))
        typical = np.abs(median) if level is None else np.fmax(np.abs(median), level)
        floor = np.maximum(REL_FLOOR * np.nan_to_num(typical, nan=0.0), 1e-9)
        scale = np.maximum(np.nan_to_num(scale, nan=0.0), floor)
        return (values - median) / scale


def _sustained(z: np.ndarray, rows: int) -> np.ndarray:
    """Per column, the smallest value over the last ``rows`` rows (a deviation that lasted)."""
    if rows <= 1:
        return z
    return pd.DataFrame(z).rolling(rows, min_periods=1).min().to_numpy()


def _own(frame: pd.DataFrame) -> pd.DataFrame:
    """The pod's own metrics: not its machine's (``Node*``), not those of its calls to
    other services (client side, see `_CLIENT_SIDE`)."""
    cols = [c for c in frame.columns if not c.startswith(_MACHINE_PREFIX)]
    return frame[[c for c in cols if _CLIENT_SIDE not in c]]


def _client_latency(frame: pd.DataFrame) -> pd.DataFrame:
    """The latency of the pod's calls to other services."""
    return frame[[c for c in frame.columns if _CLIENT_SIDE in c and "Latency" in c]]


def _levels(day: NezhaDay, start: float, ref_start: float) -> pd.Series:
    """Per metric: the median over the pods of each pod's median |value| in the reference."""
    per_pod = [
        pd.concat([_own(f), _client_latency(f)], axis=1)
        .loc[(f.index >= ref_start) & (f.index < start)]
        .abs()
        .median()
        for f in day.metrics.values()
    ]
    return pd.concat(per_pod, axis=1).median(axis=1) if per_pod else pd.Series(dtype=float)


def _peak_z(
    frame: pd.DataFrame,
    start: float,
    stop: float,
    ref_start: float,
    *,
    levels: pd.Series | None = None,
    sign: np.ndarray | None = None,
) -> pd.Series:
    """Per minute in ``[ref_start, stop]``: the largest sustained robust z over ``frame``'s
    columns against ``[ref_start, start)``; |z| unless ``sign`` (per column: +1 where a rise
    is bad, -1 where a drop is) says which way counts."""
    ref = frame.loc[(frame.index >= ref_start) & (frame.index < start)]
    win = frame.loc[(frame.index >= ref_start) & (frame.index <= stop)]
    if ref.empty or win.empty or frame.shape[1] == 0:
        return pd.Series(dtype=float)
    level = None if levels is None else levels.reindex(frame.columns).to_numpy(float)
    z = _robust_z(ref.to_numpy(float), win.to_numpy(float), level)
    z = np.abs(z) if sign is None else z * sign
    z = _sustained(np.where(np.isfinite(z), z, np.nan), round(SUSTAIN_S / MINUTE))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        peak = np.nanmax(z, axis=1)
    return pd.Series(peak, index=win.index)


def _symptom_scores(front: pd.DataFrame, start: float, stop: float, ref_start: float) -> pd.Series:
    """The frontend SLO: latency P90 rise or success rate drop."""
    cols = [c for c in front.columns if c.startswith("LatencyP90") or c.startswith("Success")]
    sign = np.array([-1.0 if c.startswith("Success") else 1.0 for c in cols])
    return _peak_z(front[cols], start, stop, ref_start, sign=sign)


def _callers(day: NezhaDay) -> dict[str, list[str]]:
    """Per service of the call graph (if any): the services that call it."""
    out: dict[str, list[str]] = {}
    for caller, callees in sorted((day.graph or {}).items()):
        for callee in sorted(callees):
            if caller in day.metrics and callee in day.metrics:
                out.setdefault(callee, []).append(caller)
    return out


def _callers_view(
    day: NezhaDay, start: float, stop: float, ref_start: float, levels: pd.Series
) -> dict[str, pd.Series]:
    """Per called service: the rise (z) of its callers' client latency, the smallest among
    them per minute: a callee is blamed only as much as every one of its callers saw (a
    caller's client latency also rises when another of its dependencies is slow)."""
    rises: dict[str, pd.Series] = {}
    out: dict[str, pd.Series] = {}
    for service, names in _callers(day).items():
        for name in names:
            if name not in rises:
                client = _client_latency(day.metrics[name])
                up = np.ones(client.shape[1])
                rises[name] = _peak_z(client, start, stop, ref_start, levels=levels, sign=up)
        out[service] = pd.concat([rises[n] for n in names], axis=1).min(axis=1)
    return out


def _anomaly(scores: pd.Series, start: float, threshold: float, detail: str) -> ServiceAnomaly:
    """The anomaly of one score series: onset, peak, persistence after ``start``.

    An anomaly already under way at ``start`` (the last minute before it at or above the
    threshold) did not start with the fault: its onset is the first new crossing after it
    ends, if any, so that a pod anomalous all along does not pass for the first to react.
    """
    after = scores[scores.index >= start]
    values = after.to_numpy(float)
    finite = np.isfinite(values)
    peak = float(np.nanmax(values)) if finite.any() else 0.0
    above = np.nan_to_num(values, nan=-np.inf) >= threshold
    before = scores[scores.index < start].to_numpy(float)
    if len(before) and np.nan_to_num(before[-1], nan=-np.inf) >= threshold:
        below = np.flatnonzero(~above)
        above[: below[0] if len(below) else len(above)] = False
    hits = np.flatnonzero(above)
    onset = float(after.index[hits[0]]) if len(hits) else None
    return ServiceAnomaly(
        onset=onset,
        magnitude=max(peak, 0.0),
        series=scores.to_numpy(float),
        detail=f"peak z = {peak:.1f} {detail}",
        persistence=float(len(hits)),
    )


def fault_anomalies(
    day: NezhaDay,
    fault: NezhaFault,
    *,
    reference_s: float = REFERENCE_S,
    window_s: float = WINDOW_S,
    threshold: float = Z_THRESHOLD,
) -> dict[str, ServiceAnomaly]:
    """Per service (and the `SYMPTOM`): what its pod metrics did in the window after
    ``fault`` against the reference before it. Reads nothing later than ``window_s``."""
    start, stop, ref_start = fault.ts, fault.ts + window_s, fault.ts - reference_s
    # One time grid for every series, so that correlations pair the same minutes.
    grid = np.arange(math.ceil(ref_start / MINUTE) * MINUTE, stop + 1e-9, MINUTE)
    out: dict[str, ServiceAnomaly] = {}
    levels = _levels(day, start, ref_start)
    own = {
        s: _peak_z(_own(f), start, stop, ref_start, levels=levels).reindex(grid)
        for s, f in day.metrics.items()
    }
    for service, scores in own.items():
        out[service] = _anomaly(scores, start, threshold, "over its pod metrics")
    # What the callers saw of their calls: a callee slower on the wire (a network delay) may
    # show nothing in its own metrics, only in its callers' client latency.
    seen = _callers_view(day, start, stop, ref_start, levels)
    for service, view in seen.items():
        view = view.reindex(grid)
        combined = pd.concat([own[service], view], axis=1).max(axis=1)
        detail = "over its pod metrics"
        if view.max() > own[service].max():
            detail = f"of its callers' client latency ({', '.join(_callers(day)[service])})"
        out[service] = _anomaly(combined, start, threshold, detail)
    symptom = _symptom_scores(day.front, start, stop, ref_start).reindex(grid)
    out[SYMPTOM] = _anomaly(symptom, start, threshold, "of the frontend SLO")
    return out


def rank_fault(
    day: NezhaDay, fault: NezhaFault, config: RcaConfig | None = None, **kwargs: float
) -> list[str]:
    """Every service of the day, most likely root cause first."""
    anomalies = fault_anomalies(day, fault, **kwargs)
    entry = _entry_services(day)
    graph = {s: set(c) for s, c in (day.graph or {}).items()}
    graph[SYMPTOM] = set(entry)
    services = set(day.metrics)
    ranked = rank_root_causes(
        graph, anomalies, symptom=SYMPTOM, config=config or RcaConfig(), eligible=services
    )
    names = [c.service for c in ranked]
    rest = sorted(services - set(names), key=lambda s: (-anomalies[s].magnitude, s))
    return names + rest


def _entry_services(day: NezhaDay) -> list[str]:
    """Services no other service calls (the entry points), or every service without a graph."""
    if not day.graph:
        return sorted(day.metrics)
    called = {c for callees in day.graph.values() for c in callees}
    return sorted(s for s in day.graph if s not in called)


@dataclass(frozen=True)
class _Outcome:
    day: str
    system: str
    kind: str
    root: str
    rank: int | None
    top5: tuple[str, ...]


def _as_at(outcomes: Sequence[_Outcome]) -> dict[str, Any]:
    n = len(outcomes)
    out: dict[str, Any] = {"n": n}
    for k in KS:
        hits = sum(o.rank is not None and o.rank <= k for o in outcomes)
        out[f"AS@{k}"] = hits / n if n else math.nan
    return out


def eval_nezha(data_dir: Path, progress: Progress | None = None, **kwargs: float) -> dict[str, Any]:
    """AS@1/3/5 per system and per fault type over every day folder under ``data_dir``."""
    started = time.perf_counter()
    root = Path(data_dir)
    days = sorted(d for d in root.iterdir() if (d / "fault_list.json").exists())
    if not days:
        raise FileNotFoundError(f"no Nezha day folders (with fault_list.json) under {root}")
    outcomes: list[_Outcome] = []
    for folder in days:
        day = load_day(folder)
        for fault in day.faults:
            ranked = rank_fault(day, fault, **kwargs)
            rank = ranked.index(fault.service) + 1 if fault.service in ranked else None
            outcomes.append(
                _Outcome(day.name, day.system, fault.kind, fault.service, rank, tuple(ranked[:5]))
            )
        if progress:
            progress(f"eval nezha: {day.name} ({day.system}): {len(day.faults)} faults")
    systems: dict[str, Any] = {}
    for system in sorted({o.system for o in outcomes}):
        group = [o for o in outcomes if o.system == system]
        entry = _as_at(group)
        entry["by_type"] = {
            kind: _as_at([o for o in group if o.kind == kind])
            for kind in sorted({o.kind for o in group})
        }
        entry["published"] = {
            name: dict(zip([f"AS@{k}" for k in KS], values, strict=True))
            for name, values in PUBLISHED.get(system, {}).items()
        }
        systems[system] = entry
    return {
        "window_s": kwargs.get("window_s", WINDOW_S),
        "reference_s": kwargs.get("reference_s", REFERENCE_S),
        "systems": systems,
        "outcomes": [o.__dict__ for o in outcomes],
        "scoreboard": _scoreboard(systems),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _scoreboard(systems: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for system, entry in systems.items():
        dataset = f"nezha/{system}"
        published = PUBLISHED.get(system, {})
        for i, k in enumerate(KS):
            anchor = "; ".join(f"{name} {v[i]:.1f}%" for name, v in published.items())
            rows.append(
                ScoreRow(
                    task="rca",
                    metric=f"AS@{k}",
                    dataset=dataset,
                    value=float(entry[f"AS@{k}"]),
                    tuned_on=is_tuned_on("rca", dataset),
                    protocol="no labels used; one configuration; pod metrics only, "
                    f"≤ {WINDOW_S / 60:.0f} min after the injection",
                    anchor=anchor,
                ).as_dict()
            )
    return rows


def print_eval_nezha(result: dict[str, Any], console: Any) -> None:
    """Print `eval_nezha`'s result as rich tables on ``console``."""
    from rich.table import Table

    for system, entry in result["systems"].items():
        table = Table(title=f"Nezha {system}: service-level AS@k (%), pod metrics only")
        for col in ("faults", "n", "AS@1", "AS@3", "AS@5"):
            table.add_column(col, justify="left" if col == "faults" else "right")

        for name, e in [("all", entry), *((f"  {k}", v) for k, v in entry["by_type"].items())]:
            cells = [f"{100 * e[f'AS@{k}']:.1f}" for k in KS]
            table.add_row(name, str(e["n"]), *cells)
        for name, values in PUBLISHED.get(system, {}).items():
            table.add_row(f"{name} (published)", "", *[f"{v:.1f}" for v in values], style="dim")
        console.print(table)
    console.print(
        f"{len(result['outcomes'])} faults in {result['seconds']:.1f} s; scores look at most "
        f"{result['window_s'] / 60:.0f} min past each injection."
    )


def register(benchmarks: argparse._SubParsersAction) -> None:
    """``airis eval nezha``."""
    parser = benchmarks.add_parser("nezha", help="Nezha pod-metric root-cause AS@1/3/5")
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "rca_nezha")
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.set_defaults(run=_command)


def _command(args: argparse.Namespace) -> int:
    result = eval_nezha(args.data, progress=console.print)
    print_eval_nezha(result, Console())
    write_json(args.json, result)
    return 0
