"""PetShop evaluation of the root-cause ranking: the loader and scorer on small synthetic
scenarios, and the shared benchmark data."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from airis.evals.petshop import eval_petshop, find_scenarios, issue_anomalies, print_eval_petshop

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

#: web → api → {db, cache}; lb is a leaf that web also calls (like an X-Ray remote node).
NODES = ("web", "api", "db", "cache", "lb")
GRAPH = {"web": ("api", "lb"), "api": ("db", "cache")}
#: Normal latency (s) and requests per 5 minutes.
LEVEL = {"web": 0.10, "api": 0.05, "db": 0.01, "cache": 0.002, "lb": 0.02}
REQUESTS = {"web": 500, "api": 400, "db": 900, "cache": 700, "lb": 20}
T0 = 1_681_000_000.0
STEP = 300.0


def _frame(rows: list[dict[tuple[str, str, str], float]], start: float) -> pd.DataFrame:
    cols = pd.MultiIndex.from_tuples(list(rows[0]), names=["microservice", "metric", "statistic"])
    index = pd.Index([start + i * STEP for i in range(len(rows))], name="unix_timestamp")
    return pd.DataFrame([list(r.values()) for r in rows], columns=cols, index=index)


def _rows(
    n: int, rng: random.Random, slow: dict[str, float], failing: dict[str, float], from_row: int
) -> list[dict[tuple[str, str, str], float]]:
    """``n`` rows; from ``from_row`` on, nodes in ``slow`` are that many seconds slower (and
    their callers too), nodes in ``failing`` lose that fraction of requests (callers too)."""
    callers = {c: [p for p, cs in GRAPH.items() if c in cs] for c in NODES}

    def upstream(node: str) -> set[str]:
        out, stack = set(), [node]
        while stack:
            for p in callers[stack.pop()]:
                if p not in out:
                    out.add(p)
                    stack.append(p)
        return out

    rows = []
    for i in range(n):
        row: dict[tuple[str, str, str], float] = {}
        for node in NODES:
            extra = sum(v for s, v in slow.items() if node == s or node in upstream(s))
            fail = max((v for s, v in failing.items() if node == s or node in upstream(s)),
                       default=0.0)  # fmt: skip
            on = i >= from_row
            latency = LEVEL[node] * (1 + rng.gauss(0, 0.05)) + (extra if on else 0.0)
            row[(node, "latency", "Average")] = latency
            row[(node, "requests", "Sum")] = float(REQUESTS[node])
            row[(node, "availability", "Average")] = 100.0 * (1 - (fail if on else 0.0))
        rows.append(row)
    return rows


def _scenario(root: Path, with_noissue: bool = False) -> Path:
    """A scenario like PetShop's: graph, two issues of five rows, optionally ``noissue``."""
    rng = random.Random(42)
    scen = root / "tiny"
    (scen / "train" / "issue_0").mkdir(parents=True)
    (scen / "test" / "issue_0").mkdir(parents=True)
    adj = pd.DataFrame(0, index=list(NODES), columns=list(NODES))
    for caller, callees in GRAPH.items():
        for callee in callees:
            adj.at[caller, callee] = 1
    adj.to_csv(scen / "graph.csv")
    issues = {
        # db is 0.3 s slower: api and web inherit it (their z-scores are higher: busier).
        "train/issue_0": ("latency", "db", {"db": 0.3}, {}),
        # api fails 5 % of its requests; web sees the failures.
        "test/issue_0": ("availability", "api", {}, {"api": 0.05}),
    }
    for name, (metric, root_cause, slow, failing) in issues.items():
        _frame(_rows(5, rng, slow, failing, 2), T0).to_csv(scen / name / "metrics.csv")
        target = {
            "target": {"node": "web", "metric": metric, "agg": "Average", "timestamp": T0 + 610},
            "root_cause": {"node": root_cause, "metric": None},
        }
        (scen / name / "target.json").write_text(json.dumps(target))
    if with_noissue:
        (scen / "noissue").mkdir()
        _frame(_rows(50, rng, {}, {}, 50), T0 - 86_400).to_csv(scen / "noissue" / "metrics.csv")
    return scen


def test_ranks_a_synthetic_scenario_without_normal_operation_data(tmp_path: Path) -> None:
    scen = _scenario(tmp_path)
    assert find_scenarios([tmp_path]) == [scen] == find_scenarios([scen])
    result = eval_petshop(tmp_path)
    entry = result["scenarios"]["tiny"]
    assert entry["dataset"] == "petshop/tiny" and entry["tuned_on"] is False
    assert "ablation_noissue_reference" not in entry
    ranks = {i["issue"]: (i["rank"], i["top3"]) for i in entry["issues"]}
    assert ranks["train/issue_0"][0] == 1, ranks  # db, although api's z is higher
    assert ranks["test/issue_0"][0] == 1, ranks
    assert entry["by_type"]["overall"] == {"n": 2, "top1": 1.0, "top3": 1.0}
    rows = {(r["metric"], r["dataset"]): r for r in result["scoreboard"]}
    assert set(rows) == {("top-1 latency", "petshop/tiny"), ("top-1 availability", "petshop/tiny")}
    assert all(r["task"] == "rca" and r["tuned_on"] is False for r in rows.values())


def test_normal_operation_data_is_an_ablation_not_the_method(tmp_path: Path) -> None:
    _scenario(tmp_path, with_noissue=True)
    entry = eval_petshop(tmp_path, scenario="tiny")["scenarios"]["tiny"]
    assert entry["ablation_noissue_reference"]["overall"]["n"] == 2
    assert entry["by_type"]["overall"]["top1"] == 1.0
    with pytest.raises(FileNotFoundError, match="named nope"):
        eval_petshop(tmp_path, scenario="nope")


def test_a_busy_node_is_more_significant_than_an_idle_one_for_the_same_change() -> None:
    # Both double their latency in the last rows; one serves 1000 requests, the other 2.
    rng = np.random.default_rng(1)
    nodes = [f"n{i}" for i in range(10)]
    cols = pd.MultiIndex.from_tuples(
        [(n, m, s) for n in nodes for m, s in (("latency", "Average"), ("requests", "Sum"))]
    )
    data = []
    for i in range(5):
        row = []
        for k, _ in enumerate(nodes):
            level = 0.1 * (1 + 0.02 * rng.normal())
            slower = 2.0 if (k in (0, 1) and i >= 2) else 1.0
            row += [level * slower, 2.0 if k == 1 else 1000.0]
        data.append(row)
    window = pd.DataFrame(data, columns=cols, index=[T0 + i * STEP for i in range(5)])
    out = issue_anomalies(window, "latency", "Average", symptom="n0", symptom_ts=T0 + 600)
    assert out["n0"].magnitude > 5 * out["n1"].magnitude
    assert out["n0"].anomalous and out["n0"].excess == pytest.approx(0.1, rel=0.1)
    assert not out["n5"].anomalous


def test_availability_uses_failed_requests() -> None:
    cols = pd.MultiIndex.from_tuples(
        [(n, m, s) for n in ("web", "api") for m, s in (("availability", "Average"),
                                                        ("requests", "Sum"))]
    )  # fmt: skip
    rows = [[100.0, 500, 100.0, 200]] * 2 + [[99.0, 500, 97.5, 200]] * 3
    window = pd.DataFrame(rows, columns=cols, index=[T0 + i * STEP for i in range(5)])
    out = issue_anomalies(window, "availability", "Average", symptom="web", symptom_ts=T0 + 600)
    # web lost 5 of 500 requests, api 5 of 200: the same failures, seen twice.
    assert out["web"].excess == pytest.approx(5.0) and out["api"].excess == pytest.approx(5.0)
    assert out["api"].magnitude > out["web"].magnitude > 0
    assert out["api"].onset == T0 + 600


@pytest.mark.slow
def test_eval_petshop_on_the_shared_scenarios_beats_the_published_baselines() -> None:
    scenarios = [DATA / "petshop", DATA / "petshop_temporal"]
    assert (DATA / "petshop" / "low_traffic" / "graph.csv").exists(), (
        f"PetShop data missing at {DATA}"
    )
    result = eval_petshop(scenarios)
    per = result["scenarios"]
    assert set(per) == {"low_traffic", "temporal_traffic1", "temporal_traffic2"}
    low = per["low_traffic"]["by_type"]
    assert low["latency"]["n"] == 14 and low["availability"]["n"] == 12
    assert per["temporal_traffic1"]["by_type"]["overall"]["n"] == 8
    # The tuned-on scenarios: above the authors' top-1 for both issue types (theirs uses the
    # noissue data; ours does not).
    for name in ("low_traffic", "temporal_traffic1"):
        for kind in ("latency", "availability"):
            e = per[name]["by_type"][kind]
            assert e["top1"] >= e["baseline_top1"], (name, kind, e)
    assert low["latency"]["top1"] > low["latency"]["baseline_top1"]
    assert low["availability"]["top1"] > low["availability"]["baseline_top1"]
    assert "ablation_noissue_reference" in per["low_traffic"]
    board = {(r["metric"], r["dataset"]): r["tuned_on"] for r in result["scoreboard"]}
    assert board[("top-1 latency", "petshop/low_traffic")] is True
    assert board[("top-1 latency", "petshop/temporal_traffic1")] is True
    assert board[("top-1 availability", "petshop/temporal_traffic2")] is False
    assert len(board) == 6
    buf = io.StringIO()
    print_eval_petshop(result, Console(file=buf, width=140))
    text = buf.getvalue()
    assert "temporal_traffic2" in text and "held out" in text and "0.571" in text


def test_cli_options_reach_the_evaluation() -> None:
    from airis.cli.evaluate import build_parser as _parser

    args = _parser().parse_args(["petshop", "--data", "a", "--data", "b",
                                 "--scenario", "low_traffic"])  # fmt: skip
    assert args.data == [Path("a"), Path("b")] and args.scenario == "low_traffic"
    assert _parser().parse_args(["petshop"]).data is None  # both shared folders
