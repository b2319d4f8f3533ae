"""Evaluate the root-cause ranking (`airis.operators.rca`) on the public PetShop benchmark.

PetShop (Hardt et al., 2023, github.com/amazon-science/petshop-root-cause-analysis) is a
pet-adoption site on AWS with 41 components. Each issue folder has 5-minute CloudWatch /
X-Ray metrics around an injected fault (``metrics.csv``) and a ``target.json`` naming the
alerting node and metric (the symptom) and the ground-truth root cause. ``noissue`` holds
days of normal operation, which we use as the baseline. ``graph.csv`` is the call graph as
an adjacency matrix whose row calls its column (``PetSite`` row → ``PetSearch`` column);
the authors reverse it into a causal graph and walk from the target towards the causes.

Per issue, for the target metric (latency or availability) with the target statistic:

* robust z-score of every node against the ``noissue`` median and MAD (scale falls back to
  the standard deviation, then to 0.2 % of the median, when the baseline is constant),
  one-sided: latency only counts when it rises, availability only when it drops;
* a node is anomalous if its z reaches `Z_THRESHOLD` (5, the authors' MAD threshold)
  at any row of the window; onset = the first such row's timestamp; magnitude = peak z;
* the node's series is its z over the window (NaN where missing), for the correlation.

Then the same `rank_root_causes` as for our simulator, with the target node as symptom.
No label is used: one configuration for all issues, train and test alike.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from airis.operators.rca import RcaConfig, ServiceAnomaly, rank_root_causes

__all__ = [
    "BASELINE",
    "Z_THRESHOLD",
    "eval_petshop",
    "is_remote_endpoint",
    "load_graph",
    "petshop_anomalies",
    "print_eval_petshop",
]

#: Anomaly threshold on the robust z-score (the authors' MAD-score threshold).
Z_THRESHOLD = 5.0
#: Scale of a Gaussian's standard deviation per median absolute deviation.
_MAD_TO_SIGMA = 1.4826
#: Published top-1 / top-3 recall of the authors' anomaly traversal (MAD score), low traffic.
BASELINE: dict[str, tuple[float, float]] = {
    "latency": (0.571, 0.571),
    "availability": (0.833, 1.000),
}
#: Direction in which a metric gets worse: +1 rises (latency), -1 drops (availability).
_WORSE = {"latency": 1.0, "availability": -1.0, "requests": 1.0}


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


def _robust_z(normal: pd.Series, window: pd.Series, worse: float) -> np.ndarray:
    base = normal.dropna().to_numpy(dtype=float)
    values = window.to_numpy(dtype=float)
    if len(base) == 0:
        return np.full(len(values), np.nan)
    median = float(np.median(base))
    scale = _MAD_TO_SIGMA * float(np.median(np.abs(base - median)))
    if scale <= 1e-12:
        # Constant most of the time (availability at 100 %): the spread of the rare
        # deviations; if there are none, any deviation is suspect (the authors flag every
        # one): 0.2 % of the level, so a drop of 1 % of it is z = 5.
        scale = float(np.std(base))
    if scale <= 1e-12:
        scale = max(0.002 * abs(median), 1e-9)
    return worse * (values - median) / scale


def petshop_anomalies(
    normal: pd.DataFrame,
    window: pd.DataFrame,
    metric: str,
    statistic: str = "Average",
    threshold: float = Z_THRESHOLD,
) -> dict[str, ServiceAnomaly]:
    """Per node: onset, peak z and z series of ``metric`` in ``window`` against ``normal``.

    >>> cols = pd.MultiIndex.from_tuples([("a", "latency", "Average"), ("b", "latency", "Average")])
    >>> normal = pd.DataFrame([[1.0, 2.0], [1.1, 2.0], [0.9, 2.1], [1.0, 1.9]], columns=cols)
    >>> window = pd.DataFrame([[1.0, 2.0], [3.0, 2.0]], columns=cols, index=[0.0, 300.0])
    >>> out = petshop_anomalies(normal, window, "latency")
    >>> out["a"].onset, out["b"].onset
    (300.0, None)
    """
    worse = _WORSE.get(metric, 1.0)
    norm = _reduce(normal, metric, statistic)
    win = _reduce(window, metric, statistic)
    times = win.index.to_numpy(dtype=float)
    result = {}
    for node in win.columns:
        if node not in norm.columns:
            continue
        z = _robust_z(norm[node], win[node], worse)
        hits = np.flatnonzero(np.nan_to_num(z, nan=-np.inf) >= threshold)
        peak = float(np.nanmax(z)) if np.isfinite(z).any() else 0.0
        onset = float(times[hits[0]]) if len(hits) else None
        word = "rose" if worse > 0 else "dropped"
        result[str(node)] = ServiceAnomaly(
            onset=onset,
            magnitude=max(peak, 0.0),
            series=z,
            detail=f"peak z = {peak:.1f} ({metric} {word} against the no-issue baseline)",
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


def _issue_dirs(scenario: Path) -> list[Path]:
    dirs = [d for split in ("train", "test") for d in (scenario / split).glob("issue_*")]
    return sorted(dirs, key=lambda d: (d.parent.name, int(d.name.split("_")[1])))


def is_remote_endpoint(node: str) -> bool:
    """X-Ray's inferred nodes (``*_remote``): a caller's view of an endpoint, not a component.

    They stand for a call (often to a load balancer in front of a service that has its own
    node), so they share their callee's symptoms without being a place to fix anything;
    they stay in the graph as dependencies but are not ranked.

    >>> is_remote_endpoint("servi-searc.us-west-2.elb.amazonaws.com_remote")
    True
    >>> is_remote_endpoint("PetSite")
    False
    """
    return node.endswith("_remote")


def eval_petshop(data_dir: Path, scenario: str = "low_traffic") -> dict[str, Any]:
    """Top-1 / top-3 recall of `rank_root_causes` on every issue of one PetShop scenario.

    ``data_dir`` is the folder holding ``low_traffic/`` (or the scenario folder itself).
    Returns ``{"scenario", "issues": [...], "by_type": {type: {...}}, "seconds"}``; each
    ``by_type`` entry (and ``"overall"``) has ``n``, ``top1``, ``top3`` and the published
    ``baseline_top1`` / ``baseline_top3`` where known.
    """
    started = time.perf_counter()
    root = Path(data_dir)
    scen = root if (root / "graph.csv").exists() else root / scenario
    if not (scen / "graph.csv").exists():
        raise FileNotFoundError(f"no PetShop scenario at {scen} (expected graph.csv there)")
    graph = load_graph(scen / "graph.csv")
    normal = _read_metrics(scen / "noissue" / "metrics.csv")
    config = RcaConfig(max_lag=1)
    results: dict[str, list[_IssueResult]] = {}
    for issue in _issue_dirs(scen):
        target = json.loads((issue / "target.json").read_text())
        node, metric = target["target"]["node"], target["target"]["metric"]
        statistic = target["target"].get("agg") or "Average"
        window = _read_metrics(issue / "metrics.csv")
        anomalies = petshop_anomalies(normal, window, metric, statistic)
        eligible = {n for n in anomalies if not is_remote_endpoint(n)}
        issue_id = f"{issue.parent.name}/{issue.name}"
        truth = target["root_cause"]["node"]
        for variant, allowed in (("main", eligible), ("all_nodes", None)):
            ranked = rank_root_causes(
                graph, anomalies, symptom=node, config=config, eligible=allowed
            )
            names = [c.service for c in ranked]
            results.setdefault(variant, []).append(_IssueResult(issue_id, metric, truth, names))
    return {
        "scenario": scen.name,
        "issues": [
            {
                "issue": r.issue,
                "metric": r.metric,
                "root_cause": r.root_cause,
                "top3": r.ranked[:3],
                "rank": r.ranked.index(r.root_cause) + 1 if r.root_cause in r.ranked else None,
            }
            for r in results["main"]
        ],
        "by_type": _recall(results["main"]),
        "ablation_all_nodes": _recall(results["all_nodes"]),
        "seconds": time.perf_counter() - started,
    }


def _recall(results: list[_IssueResult]) -> dict[str, dict[str, Any]]:
    by_type: dict[str, dict[str, Any]] = {}
    for kind in [*sorted({r.metric for r in results}), "overall"]:
        group = [r for r in results if kind in ("overall", r.metric)]
        entry: dict[str, Any] = {
            "n": len(group),
            "top1": float(np.mean([r.hit(1) for r in group])),
            "top3": float(np.mean([r.hit(3) for r in group])),
        }
        if kind in BASELINE:
            entry["baseline_top1"], entry["baseline_top3"] = BASELINE[kind]
        by_type[kind] = entry
    return by_type


def print_eval_petshop(result: dict[str, Any], console: Any) -> None:
    """Print `eval_petshop`'s result as a rich table on ``console``."""
    from rich.table import Table

    table = Table(title=f"PetShop RCA ({result['scenario']}): top-k recall")
    for col in ("issue type", "n", "top-1", "top-3", "baseline top-1", "baseline top-3"):
        table.add_column(col, justify="left" if col == "issue type" else "right")
    for kind, e in result["by_type"].items():
        base = [f"{e[k]:.3f}" if k in e else "—" for k in ("baseline_top1", "baseline_top3")]
        table.add_row(kind, str(e["n"]), f"{e['top1']:.3f}", f"{e['top3']:.3f}", *base)
    for kind, e in result.get("ablation_all_nodes", {}).items():
        row = (f"{e['top1']:.3f}", f"{e['top3']:.3f}", "", "")
        table.add_row(f"{kind} (remote nodes ranked too)", str(e["n"]), *row, style="dim")
    console.print(table)
    console.print(
        "baseline: the authors' anomaly traversal with MAD score, low traffic "
        f"(published). {len(result['issues'])} issues in {result['seconds']:.1f} s."
    )
