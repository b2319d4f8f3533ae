"""Evaluate the root-cause ranking (`airis.operators.incidents.rca`) on the public PetShop
benchmark.

PetShop (Hardt et al., 2023, github.com/amazon-science/petshop-root-cause-analysis) is a
pet-adoption site on AWS with 41 components. Each issue folder has five 5-minute CloudWatch /
X-Ray rows around an injected fault (``metrics.csv``: latency, requests and availability per
node) and a ``target.json`` naming the alerting node, metric and time (the symptom) and the
ground-truth root cause. ``graph.csv`` is the call graph as an adjacency matrix whose row calls
its column (``PetSite`` row → ``PetSearch`` column). Scenarios: ``petshop/low_traffic`` (with
days of normal operation in ``noissue/``) and ``petshop_temporal/temporal_traffic{1,2}``
(without them).

Per issue, only the issue's own rows are used (the same code whether ``noissue`` exists):

* **reference**: the rows that lie mostly before the symptom's timestamp (a row covers the
  5 minutes from its timestamp; at least the first row);
* **latency** of a node, in each later row: the change of its log latency against the
  reference, in standard errors of an average over that many requests
  (``sqrt(1/n + 1/n_ref)``, from the ``requests`` counts: a node serving 800 requests has a
  steadier average than one serving 3), divided by one scale shared by all nodes of the issue
  (the robust spread of that statistic over every node and row, most of which are healthy:
  the non-anomalous nodes are the reference for how much a healthy node moves);
* **availability**: the two-proportion z-test of its success rate against the reference's
  (successes = availability × requests), so a drop from 100 % to 97 % is strong evidence in
  a node serving 800 requests and none in one serving 3;
* a node is anomalous from the first later row whose z reaches `Z_THRESHOLD`, or the
  symptom's own peak z if that is lower (the symptom alerted: a dependency deviating at least
  as much is anomalous too); magnitude = peak z; series = its z over the five rows;
* **excess**: the peak rise in the metric's own additive unit (seconds of latency; failed
  requests beyond the reference rate), so that the ranking can tell whether a dependency's
  anomaly accounts for its caller's (a caller's latency contains its callees').

Then `rank_root_causes` with its default configuration, the target node as symptom. No
label and no node name is used: one configuration for every scenario, train and test alike.
The published baseline uses ``noissue``; ``ablation_noissue_reference`` reports our ranking
with ``noissue`` as the reference instead, where the scenario has it.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from airis.cli.common import SHARED_DATA, write_json
from airis.evals.scoreboard import ScoreRow, is_tuned_on
from airis.operators.gaussian import MEDIAN_AD_TO_SIGMA
from airis.operators.incidents.rca import ServiceAnomaly, rank_root_causes

__all__ = [
    "BASELINE",
    "Z_THRESHOLD",
    "eval_petshop",
    "find_scenarios",
    "issue_anomalies",
    "load_graph",
    "print_eval_petshop",
]

#: A node is anomalous when its z reaches this (or the symptom's peak z, if lower).
Z_THRESHOLD = 3.0
#: Never below this: a deviation of less than one standard error is no anomaly.
MIN_Z = 1.0
#: Published top-1 / top-3 recall of the authors' baselines, per scenario and issue type
#: (``../shared/data/README.md``; both use the scenario's ``noissue`` data).
BASELINE: dict[str, dict[str, tuple[float, float | None]]] = {
    "low_traffic": {"latency": (0.571, 0.571), "availability": (0.833, 1.000)},
    "temporal_traffic1": {"latency": (1.000, None), "availability": (0.750, None)},
    "temporal_traffic2": {"latency": (1.000, None), "availability": (0.750, None)},
}
#: Metrics whose value is a success rate in percent; the others are additive (latency).
_RATES = ("availability",)


def load_graph(path: Path) -> dict[str, set[str]]:
    """Caller → callees from PetShop's ``graph.csv`` (a row calls the columns marked 1).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "graph.csv").write_text(",a,b\\na,0,1\\nb,0,0\\n")
    >>> load_graph(d / "graph.csv")
    {'a': {'b'}, 'b': set()}
    """
    adj = pd.read_csv(path, index_col=0)
    return {
        str(row): {str(col) for col in adj.columns if adj.at[row, col] != 0} for row in adj.index
    }


def _read_metrics(path: Path) -> pd.DataFrame:
    # Three header rows (component, metric, statistic); the 4th ("unix_timestamp") names the
    # index and pandas takes it as the index name.
    return pd.read_csv(path, header=[0, 1, 2], index_col=0)


def _reduce(df: pd.DataFrame, metric: str, statistic: str) -> pd.DataFrame:
    cols = [c for c in df.columns if c[1] == metric and c[2] == statistic]
    out = df.loc[:, cols].astype(float)
    out.columns = [c[0] for c in cols]
    return out


def _nanmedian(values: np.ndarray) -> np.ndarray:
    """Median per column, NaN for a column without values (no warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(values, axis=0)


def _counts(df: pd.DataFrame, nodes: pd.Index, values: np.ndarray) -> np.ndarray:
    """Requests per node and row (at least 1 where the metric has a value; NaN where not)."""
    cols = [c for c in df.columns if c[1] == "requests"]
    req = df.loc[:, cols].astype(float)
    req.columns = [c[0] for c in cols]
    req = req.T.groupby(level=0).sum(min_count=1).T.reindex(columns=nodes)
    n = np.maximum(np.nan_to_num(req.to_numpy(float), nan=0.0), 1.0)
    n[np.isnan(values)] = np.nan
    return n


def _latency_z(
    values: np.ndarray, n: np.ndarray, ref: np.ndarray, ref_n: np.ndarray, scored: np.ndarray
) -> np.ndarray:
    """z of each row's log latency against the reference, per request-count standard error,
    on one robust scale pooled over every node's scored rows."""
    with np.errstate(all="ignore"):
        x = np.log(np.where(values > 0, values, np.nan))
        x0 = _nanmedian(np.log(np.where(ref > 0, ref, np.nan)))
    n0 = np.maximum(np.nansum(ref_n, axis=0), 1.0)
    u = (x - x0) / np.sqrt(1.0 / n + 1.0 / n0)
    pooled = u[scored][np.isfinite(u[scored])]
    if len(pooled) == 0:
        return np.full_like(u, np.nan)
    scale = MEDIAN_AD_TO_SIGMA * float(np.median(np.abs(pooled - np.median(pooled))))
    if scale <= 1e-12:
        scale = float(np.std(pooled))
    return u / max(scale, 1e-9)


def _rate_z(
    values: np.ndarray, n: np.ndarray, ref: np.ndarray, ref_n: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Two-proportion z of each row's success rate below the reference's, and the failed
    requests beyond the reference rate."""
    p = values / 100.0
    n0 = np.maximum(np.nansum(ref_n, axis=0), 1.0)
    s0 = np.nansum(ref / 100.0 * ref_n, axis=0)
    p0 = s0 / n0
    pooled = (s0 + p * n) / (n0 + n)
    # At least one request's worth of variance: no division by 0 when nothing ever failed.
    var = np.maximum(pooled * (1 - pooled) * (1 / n + 1 / n0), 1.0 / (n0 + n) ** 2)
    return (p0 - p) / np.sqrt(var), (p0 - p) * n


def issue_anomalies(
    window: pd.DataFrame,
    metric: str,
    statistic: str,
    symptom: str,
    symptom_ts: float,
    reference: pd.DataFrame | None = None,
    threshold: float = Z_THRESHOLD,
) -> dict[str, ServiceAnomaly]:
    """Per node: onset, peak z, z series and excess of ``metric`` in one issue's rows.

    ``reference`` (rows of normal operation) replaces the issue's own rows before
    ``symptom_ts`` as the reference; every row of ``window`` is then scored.

    >>> import random
    >>> rng = random.Random(42)
    >>> nodes = ["web", "api", "db"] + [f"ok{k}" for k in range(9)]  # web → api → db
    >>> cols = pd.MultiIndex.from_tuples(
    ...     [(n, m, s) for n in nodes for m, s in (("latency", "Average"), ("requests", "Sum"))])
    >>> rows = []
    >>> for i in range(5):  # db is 0.4 s slower from the third row on; web and api wait for it
    ...     slow = 0.4 if i >= 2 else 0.0
    ...     rows.append([x for k in range(12)
    ...                  for x in (0.1 * rng.gauss(1, 0.05) + (slow if k < 3 else 0.0), 500)])
    >>> window = pd.DataFrame(rows, columns=cols, index=[0.0, 300.0, 600.0, 900.0, 1200.0])
    >>> out = issue_anomalies(window, "latency", "Average", symptom="web", symptom_ts=600.0)
    >>> [(node, a.onset, round(a.excess, 1)) for node, a in out.items() if a.anomalous]
    [('web', 600.0, 0.4), ('api', 600.0, 0.4), ('db', 600.0, 0.4)]
    """
    values_df = _reduce(window, metric, statistic)
    nodes = values_df.columns
    values = values_df.to_numpy(float)
    n = _counts(window, nodes, values)
    times = values_df.index.to_numpy(float)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    if reference is None:
        before = times + step / 2 <= symptom_ts
        before[0] = True
        ref, ref_n = values[before], n[before]
        scored = ~before
        against = "the rows before the symptom"
    else:
        ref_df = _reduce(reference, metric, statistic).reindex(columns=nodes)
        ref = ref_df.to_numpy(float)
        ref_n = _counts(reference, nodes, ref)
        scored = np.ones(len(times), dtype=bool)
        against = "normal operation"
    if metric in _RATES:
        z, excess = _rate_z(values, n, ref, ref_n)
        unit, word = "failed requests", "dropped"
    else:
        z = _latency_z(values, n, ref, ref_n, scored)
        excess = values - _nanmedian(ref)
        unit, word = "s", "rose"
    z = np.where(np.isfinite(z), z, np.nan)
    limit = threshold
    if symptom in nodes:
        own = z[scored, list(nodes).index(symptom)]
        if np.isfinite(own).any() and np.nanmax(own) > 0:
            limit = max(min(threshold, float(np.nanmax(own))), MIN_Z)
    result = {}
    for k, node in enumerate(nodes):
        zs = np.where(scored, z[:, k], np.nan)
        hits = np.flatnonzero(np.nan_to_num(zs, nan=-np.inf) >= limit)
        peak = float(np.nanmax(zs)) if np.isfinite(zs).any() else 0.0
        ex = np.where(scored, excess[:, k], np.nan)
        rise = float(np.nanmax(ex)) if np.isfinite(ex).any() else 0.0
        result[str(node)] = ServiceAnomaly(
            onset=float(times[hits[0]]) if len(hits) else None,
            magnitude=max(peak, 0.0),
            series=z[:, k],
            detail=f"peak z = {peak:.1f} ({metric} {word} by {rise:.3g} {unit} against {against})",
            excess=max(rise, 0.0),
        )
    return result


@dataclass(frozen=True)
class _IssueResult:
    issue: str
    metric: str
    root_cause: str
    ranked: list[str]

    def hit(self, k: int) -> bool:
        return self.root_cause in self.ranked[:k]

    def as_dict(self) -> dict[str, Any]:
        rank = self.ranked.index(self.root_cause) + 1 if self.root_cause in self.ranked else None
        return {
            "issue": self.issue,
            "metric": self.metric,
            "root_cause": self.root_cause,
            "top3": self.ranked[:3],
            "rank": rank,
        }


def _issue_dirs(scenario: Path) -> list[Path]:
    dirs = [d for split in ("train", "test") for d in (scenario / split).glob("issue_*")]
    return sorted(dirs, key=lambda d: (d.parent.name, int(d.name.split("_")[1])))


def find_scenarios(paths: Iterable[Path]) -> list[Path]:
    """Scenario folders (those with a ``graph.csv``): each path itself, or its sub-folders."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if (path / "graph.csv").exists():
            found.append(path)
        elif path.is_dir():
            found += sorted(d for d in path.iterdir() if (d / "graph.csv").exists())
    return found


def _rank_scenario(scen: Path, reference: pd.DataFrame | None) -> list[_IssueResult]:
    graph = load_graph(scen / "graph.csv")
    results = []
    for issue in _issue_dirs(scen):
        target = json.loads((issue / "target.json").read_text())
        node, metric = target["target"]["node"], target["target"]["metric"]
        statistic = target["target"].get("agg") or "Average"
        window = _read_metrics(issue / "metrics.csv")
        anomalies = issue_anomalies(
            window, metric, statistic, node, float(target["target"]["timestamp"]), reference
        )
        ranked = [c.service for c in rank_root_causes(graph, anomalies, symptom=node)]
        issue_id = f"{issue.parent.name}/{issue.name}"
        results.append(_IssueResult(issue_id, metric, target["root_cause"]["node"], ranked))
    return results


def eval_petshop(data_dir: Path | Sequence[Path], scenario: str | None = None) -> dict[str, Any]:
    """Top-1 / top-3 recall of `rank_root_causes` on every issue of every PetShop scenario.

    ``data_dir``: folders holding scenarios (``petshop/``, ``petshop_temporal/``) or scenario
    folders themselves; ``scenario``: only the one of that name. Returns per scenario its
    ``issues`` and ``by_type`` (``latency``, ``availability``, ``overall``: ``n``, ``top1``,
    ``top3`` and the published baseline where known), ``by_type`` pooled over the scenarios,
    and the ``scoreboard`` rows.
    """
    started = time.perf_counter()
    dirs = [Path(data_dir)] if isinstance(data_dir, (str, Path)) else [Path(d) for d in data_dir]
    scenarios = [s for s in find_scenarios(dirs) if scenario in (None, s.name)]
    if not scenarios:
        wanted = f" named {scenario}" if scenario else ""
        raise FileNotFoundError(f"no PetShop scenario{wanted} (a folder with graph.csv) in {dirs}")
    per: dict[str, Any] = {}
    everything: list[_IssueResult] = []
    for scen in scenarios:
        results = _rank_scenario(scen, None)
        everything += results
        dataset = f"petshop/{scen.name}"
        entry: dict[str, Any] = {
            "dataset": dataset,
            "tuned_on": is_tuned_on("rca", dataset),
            "issues": [r.as_dict() for r in results],
            "by_type": _recall(results, BASELINE.get(scen.name, {})),
        }
        normal = scen / "noissue" / "metrics.csv"
        if normal.exists():
            ablation = _rank_scenario(scen, _read_metrics(normal))
            entry["ablation_noissue_reference"] = _recall(ablation, {})
        per[scen.name] = entry
    return {
        "scenarios": per,
        "by_type": _recall(everything, {}),
        "scoreboard": _scoreboard(per),
        "seconds": time.perf_counter() - started,
    }


def _recall(
    results: list[_IssueResult], baseline: dict[str, tuple[float, float | None]]
) -> dict[str, dict[str, Any]]:
    by_type: dict[str, dict[str, Any]] = {}
    for kind in [*sorted({r.metric for r in results}), "overall"]:
        group = [r for r in results if kind in ("overall", r.metric)]
        entry: dict[str, Any] = {
            "n": len(group),
            "top1": float(np.mean([r.hit(1) for r in group])) if group else math.nan,
            "top3": float(np.mean([r.hit(3) for r in group])) if group else math.nan,
        }
        if kind in baseline:
            entry["baseline_top1"], entry["baseline_top3"] = baseline[kind]
        by_type[kind] = entry
    return by_type


def _scoreboard(per: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for entry in per.values():
        for kind in ("latency", "availability"):
            if kind not in entry["by_type"]:
                continue
            e = entry["by_type"][kind]
            anchor = ""
            if "baseline_top1" in e:
                anchor = f"authors' baseline (with noissue) {e['baseline_top1']:.3f}"
            rows.append(
                ScoreRow(
                    task="rca",
                    metric=f"top-1 {kind}",
                    dataset=entry["dataset"],
                    value=e["top1"],
                    tuned_on=entry["tuned_on"],
                    protocol="no labels used; one configuration for every scenario; "
                    "reference: the issue's rows before the symptom",
                    anchor=anchor,
                ).as_dict()
            )
    return rows


def print_eval_petshop(result: dict[str, Any], console: Any) -> None:
    """Print `eval_petshop`'s result as a rich table on ``console``."""
    from rich.table import Table

    table = Table(title="PetShop RCA: top-k recall per scenario and issue type")
    for col in ("scenario", "split", "type", "n", "top-1", "top-3", "base top-1", "base top-3"):
        table.add_column(col, justify="left" if col in ("scenario", "split", "type") else "right")

    def fmt(value: float | None) -> str:
        return "—" if value is None or not math.isfinite(value) else f"{value:.3f}"

    ablated = False
    for name, entry in result["scenarios"].items():
        label, split = name, "tuned on" if entry["tuned_on"] else "held out"
        for kind, e in entry["by_type"].items():
            base = [fmt(e.get(k)) for k in ("baseline_top1", "baseline_top3")]
            table.add_row(label, split, kind, str(e["n"]), fmt(e["top1"]), fmt(e["top3"]), *base)
            label = split = ""
        for kind, e in entry.get("ablation_noissue_reference", {}).items():
            ablated = True
            row = (fmt(e["top1"]), fmt(e["top3"]), "", "")
            table.add_row("", "", f"{kind} *", str(e["n"]), *row, style="dim")
    console.print(table)
    n = sum(len(e["issues"]) for e in result["scenarios"].values())
    console.print(
        "base: the authors' published baseline, which uses normal-operation data (noissue)"
        + ("; * our ranking with noissue as the reference (ablation)" if ablated else "")
        + f". {n} issues in {result['seconds']:.1f} s."
    )


def register(benchmarks: argparse._SubParsersAction) -> None:
    """``airis eval petshop``."""
    parser = benchmarks.add_parser("petshop", help="PetShop root-cause top-1/top-3")
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        help="a PetShop scenario or a folder of them (repeatable; default: petshop and "
        "petshop_temporal)",
    )
    parser.add_argument("--scenario", help="only the scenario of this name")
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.set_defaults(run=_command)


def _command(args: argparse.Namespace) -> int:
    data = args.data or [SHARED_DATA / "petshop", SHARED_DATA / "petshop_temporal"]
    result = eval_petshop(data, scenario=args.scenario)
    print_eval_petshop(result, Console())
    write_json(args.json, result)
    return 0
