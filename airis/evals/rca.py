"""`airis eval rca`: simulated faults through the full pipeline, scored on root-cause accuracy.

For every seed, the simulator runs a day with its fault schedule (random kinds, root services
and times); the dataflow reads its metrics and, like ``airis demo``, its logs and traces
(``logs=False``, ``traces=False``: without them), detects anomalies and raises alerts; the
anomalies are grouped into incidents and each incident's candidates ranked, by the dataflow
itself (its incident step: `IncidentGrouper` and `airis.operators.incidents.rca`). A fault is
matched to the incident that overlaps it (10 minutes of grace after its end) with the most anomalous
signals of its affected services. Reported:

- AC@k: the fraction of faults whose root service is among the top k candidates of its
  incident (a fault with no incident counts as a miss), for k = 1, 3, 5, and Avg@5, the mean
  of AC@1..AC@5;
- incidents per fault: incidents that overlap a fault, per detected fault (1.0 is ideal), and
  incidents that overlap no fault at all;
- alerts per incident: firing alerts over incidents (how much grouping compresses the noise).
"""

from __future__ import annotations

import argparse
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bytewax.testing import TestingSink, run_main
from rich.console import Console
from rich.table import Table

from airis.cli.common import console, utc_time, write_json
from airis.evals.scoreboard import DEVELOPMENT_SPLIT, ScoreRow, is_tuned_on
from airis.events import Alert, Incident
from airis.flows.metrics_anomaly import build_flow
from airis.settings import Settings
from airis.sources.iterable_source import (
    simulated_logs_source,
    simulated_traces_source,
    simulator_source,
)
from airis.sources.simulator import Simulator, recent_simulation
from airis.sources.simulator.ground_truth import incident_of, overlaps

__all__ = [
    "FaultOutcome",
    "eval_rca",
    "print_eval_rca",
    "simulator_dataset",
]

FAULTS_PER_DAY = 8
KS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class FaultOutcome:
    """One injected fault, its incident and where its root cause ranked (None: not found)."""

    seed: int
    fault_id: str
    kind: str
    root: str
    incident_id: str | None
    rank: int | None
    top3: tuple[str, ...]


def eval_rca(
    faults: int = 60,
    first_seed: int = 1,
    progress: Callable[[str], None] | None = None,
    logs: bool = True,
    traces: bool = True,
    learned_topology: bool = False,
    end: datetime | None = None,
) -> dict[str, Any]:
    """Run enough simulated days for ``faults`` faults; return the scores and every outcome.

    Each day ends at ``end`` (default: the last whole hour). What the detectors see depends
    on the hour of day and the weekday, so only a given ``end`` repeats a run exactly.

    ``logs``, ``traces``: also feed the simulated logs and spans to the dataflow (their
    signals), as the demo does. ``learned_topology``: give the dataflow no call graph, so it
    learns one from the traces' dependency edges, as the Kafka flow does.
    """
    if learned_topology and not traces:
        raise ValueError("eval rca: a learned topology needs the traces")
    started = time.perf_counter()
    outcomes: list[FaultOutcome] = []
    incidents_total = incidents_false = alerts_total = 0
    seed = first_seed
    while len(outcomes) < faults:
        sim = recent_simulation(24.0, seed, end)
        run = _run_day(sim, logs, traces, learned_topology)
        outcomes += run["outcomes"][: faults - len(outcomes)]
        incidents_total += run["incidents"]
        incidents_false += run["false_incidents"]
        alerts_total += run["alerts"]
        if progress:
            progress(f"eval rca: seed {seed}: {len(outcomes)}/{faults} faults scored")
        seed += 1
    n = len(outcomes)
    ac = {k: sum(o.rank is not None and o.rank <= k for o in outcomes) / n for k in KS}
    detected = sum(o.incident_id is not None for o in outcomes)
    fault_incidents = incidents_total - incidents_false
    dataset = simulator_dataset(range(first_seed, seed))
    inputs = "metrics" + "".join(f" + {s}" for s, on in (("logs", logs), ("traces", traces)) if on)
    scoreboard = [
        ScoreRow(
            task="rca",
            metric=f"AC@{k}",
            dataset=dataset,
            value=ac[k],
            tuned_on=is_tuned_on("rca", dataset),
            protocol=f"no labels used; {n} simulated faults through the dataflow ({inputs}"
            f"{'; call graph learned from traces' if learned_topology else ''})",
        ).as_dict()
        for k in (1, 3)
    ]
    return {
        "faults": n,
        "seeds": list(range(first_seed, seed)),
        "logs": logs,
        "traces": traces,
        "learned_topology": learned_topology,
        "ac_at_1": round(ac[1], 3),
        "ac_at_3": round(ac[3], 3),
        "ac_at_5": round(ac[5], 3),
        "avg_at_5": round(sum(ac.values()) / len(KS), 3),
        "faults_with_incident": detected,
        "incidents": incidents_total,
        "incidents_per_fault": round(fault_incidents / detected, 3) if detected else math.nan,
        "incidents_without_fault": incidents_false,
        "alerts": alerts_total,
        "alerts_per_incident": round(alerts_total / incidents_total, 2) if incidents_total else 0,
        "seconds": round(time.perf_counter() - started, 1),
        "outcomes": [o.__dict__ for o in outcomes],
        "scoreboard": scoreboard,
    }


def simulator_dataset(seeds: Sequence[int] | range) -> str:
    """The scoreboard name of a run over ``seeds``: the `DEVELOPMENT_SPLIT` group that holds
    them all (``"simulator seeds a-b"``), else ``"simulator seeds first-last"``.

    >>> simulator_dataset(range(1, 4)), simulator_dataset([101, 102]), simulator_dataset([9])
    ('simulator seeds 1-8', 'simulator seeds 101-108', 'simulator seeds 9-9')
    """
    seeds = list(seeds)
    split = DEVELOPMENT_SPLIT.get("rca", {})
    for name in (*split.get("tuned_on", ()), *split.get("held_out", ())):
        found = re.fullmatch(r"simulator seeds (\d+)-(\d+)", name)
        if found and all(int(found[1]) <= s <= int(found[2]) for s in seeds):
            return name
    return f"simulator seeds {min(seeds)}-{max(seeds)}"


def _run_day(
    sim: Simulator, logs: bool = True, traces: bool = True, learned_topology: bool = False
) -> dict[str, Any]:
    out: list = []
    graph = None if learned_topology else sim.topology.call_graph()
    changes = [(d.service, d.ts) for d in sim.deploys]
    flow = build_flow(
        simulator_source(sim), TestingSink(out), Settings(), graph, changes,
        logs=simulated_logs_source(sim) if logs else None,
        traces=simulated_traces_source(sim) if traces else None,
    )  # fmt: skip
    run_main(flow)
    incidents = [e for e in out if isinstance(e, Incident)]
    alerts = sum(isinstance(e, Alert) and e.status == "firing" for e in out)

    outcomes = []
    for fault in sim.faults:
        incident = incident_of(fault, incidents)
        if incident is None:
            outcomes.append(FaultOutcome(sim.seed, fault.id, fault.kind, fault.service,
                                         None, None, ()))  # fmt: skip
            continue
        ranked = [c.service for c in incident.candidates]
        rank = ranked.index(fault.service) + 1 if fault.service in ranked else None
        outcomes.append(
            FaultOutcome(sim.seed, fault.id, fault.kind, fault.service, incident.id, rank,
                         tuple(ranked[:3]))
        )  # fmt: skip
    overlapping = {i.id for i in incidents for f in sim.faults if overlaps(i, f)}
    return {
        "outcomes": outcomes,
        "incidents": len(incidents),
        "false_incidents": len(incidents) - len(overlapping),
        "alerts": alerts,
    }


def print_eval_rca(result: dict[str, Any], console: Console) -> None:
    signals = ["metrics"] + [s for s in ("logs", "traces") if result.get(s, False)]
    inputs = " + ".join(signals)
    if result.get("learned_topology"):
        inputs += "; call graph learned from traces"
    seeds = result["seeds"]
    span = f"seeds {seeds[0]}..{seeds[-1]}"
    table = Table(title=f"RCA on {result['faults']} simulated faults ({inputs}; {span})")
    for column in ("metric", "value", "target"):
        table.add_column(column)
    rows = [
        ("AC@1", result["ac_at_1"], "≥ 0.9"),
        ("AC@3", result["ac_at_3"], "≥ 0.97"),
        ("Avg@5", result["avg_at_5"], ""),
        ("faults with an incident", f"{result['faults_with_incident']}/{result['faults']}", ""),
        ("incidents per fault", result["incidents_per_fault"], "≤ 1.2"),
        ("incidents overlapping no fault", result["incidents_without_fault"], ""),
        ("alerts per incident", result["alerts_per_incident"], ""),
    ]
    for name, value, target in rows:
        table.add_row(name, str(value), target)
    console.print(table)
    misses = [o for o in result["outcomes"] if o["rank"] != 1]
    if misses:
        console.print("not ranked first: " + "; ".join(
            f"{o['kind']} on {o['root']} (rank {o['rank']}, top: {', '.join(o['top3'])})"
            for o in misses[:12]
        ))  # fmt: skip
    console.print(f"{result['seconds']} s")


def register(benchmarks: argparse._SubParsersAction) -> None:
    """``airis eval rca``."""
    parser = benchmarks.add_parser("rca", help="root cause of simulated faults (AC@k)")
    parser.add_argument("--faults", type=int, default=60, help="faults to score (default 60)")
    parser.add_argument(
        "--first-seed", type=int, default=1, help="simulator seed of the first day (default 1)"
    )
    parser.add_argument("--no-logs", dest="logs", action="store_false", help="no simulated logs")
    parser.add_argument(
        "--no-traces", dest="traces", action="store_false", help="no simulated traces"
    )
    parser.add_argument(
        "--learned-topology",
        action="store_true",
        help="give the flow no call graph: it learns one from the traces (as on Kafka)",
    )
    parser.add_argument(
        "--end",
        type=utc_time,
        help="each simulated day ends here, ISO 8601 (default: the last whole hour; a fixed "
        "end repeats a run exactly)",
    )
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.set_defaults(run=_command)


def _command(args: argparse.Namespace) -> int:
    result = eval_rca(
        args.faults,
        args.first_seed,
        progress=console.print,
        logs=args.logs,
        traces=args.traces,
        learned_topology=args.learned_topology,
        end=args.end,
    )
    print_eval_rca(result, Console())
    write_json(args.json, result)
    return 0
