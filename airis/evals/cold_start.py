"""`airis eval cold-start`: how soon a fault is alerted when the dataflow has just started.

A new user's first minutes: every detector is warming up. For each fault kind and each of
``START_HOURS`` (one fixed day, so re-runs give the same events at any wall-clock time, and
the simulated hour of day — which shapes every series — is varied, not left to chance), a
simulated ``HOURS`` hour starts from nothing (no history, no snapshot) and its one fault
begins after ``ONSET`` — when the metric detectors have seen 30 points of their 100 and the
trace and log signals (one point a minute) 5 of theirs — and lasts ``DURATION``. Its kind,
root service and parameters come from the simulator's own fault schedule of the seed, so
nothing here is chosen for the rules under test. Metrics, logs and traces go through the
dataflow as in ``airis demo``, once with the cold-start priors
(`airis.operators.detectors.cold_start`) and once without them (``AIRIS_COLD_START_PRIORS=false``).

Per run: the time from the fault's start to the first firing alert on a service it affects
(its "time to first correct alert"; none within the fault and ``GRACE`` after it is a miss),
and the firing alerts that match no fault (another service, or before the onset).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bytewax.testing import TestingSink, run_main
from rich.console import Console

from airis.cli.common import console, write_json
from airis.evals.scoreboard import ScoreRow
from airis.events import Alert
from airis.flows.metrics_anomaly import build_flow
from airis.settings import Settings
from airis.sources.iterable_source import (
    simulated_logs_source,
    simulated_traces_source,
    simulator_source,
)
from airis.sources.simulator import Simulator
from airis.sources.simulator.effects import make_fault
from airis.sources.simulator.ground_truth import FAULT_KINDS, Fault
from airis.sources.simulator.schedule import default_schedule
from airis.sources.simulator.topology import default_topology

__all__ = ["cold_start_faults", "eval_cold_start", "print_eval_cold_start"]

HOURS = 0.75
DAY = datetime(2026, 12, 1, tzinfo=UTC)
START_HOURS = (0, 4, 8, 12, 16, 20)
ONSET = timedelta(minutes=5)
DURATION = timedelta(minutes=20)
GRACE = timedelta(minutes=10)

Progress = Callable[[str], None]


def cold_start_faults(
    seed: int, kinds: Sequence[str] = FAULT_KINDS, start_hour: int = START_HOURS[0]
) -> list[Fault]:
    """One fault per kind, as the simulator's schedules of ``seed``, ``seed + 1``, … draw
    them (kind, root, parameters), re-timed to start ``ONSET`` after a cold start at
    ``start_hour`` of ``DAY``."""
    origin = DAY + timedelta(hours=start_hour)
    topology = default_topology()
    start = origin + ONSET
    found: dict[str, Fault] = {}
    day = seed
    while len(found) < len(kinds):
        for f in default_schedule(origin, 24.0, day, topology).faults:
            if f.kind in kinds and f.kind not in found:
                found[f.kind] = make_fault(
                    f.kind, f.service, start, start + DURATION, topology=topology, params=f.params
                )
        day += 1
    return [found[k] for k in kinds]


def eval_cold_start(
    seed: int = 1,
    kinds: Sequence[str] = FAULT_KINDS,
    progress: Progress | None = None,
    start_hours: Sequence[int] = START_HOURS,
) -> dict[str, Any]:
    """Run every kind's cold start at every start hour, with and without priors; return
    delays and false alerts."""
    started = time.perf_counter()
    faults = [f for hour in start_hours for f in cold_start_faults(seed, kinds, hour)]
    runs: dict[str, list[dict[str, Any]]] = {"priors": [], "no_priors": []}
    for fault in faults:
        for name, priors in (("priors", True), ("no_priors", False)):
            runs[name].append(_run(fault, seed, priors))
            if progress is not None:
                r = runs[name][-1]
                delay = "missed" if r["delay_s"] is None else f"{r['delay_s']:.0f} s"
                progress(
                    f"cold start {fault.kind} at {fault.start:%H:%M} ({name}): {delay}, "
                    f"{r['false_alerts']} false"
                )
    summary = {name: _summary(rs) for name, rs in runs.items()}
    rows = [
        ScoreRow(
            task="cold_start",
            metric="median time to first correct alert (s), faults 5 min after a cold start",
            dataset="simulator",
            value=summary["priors"]["median_delay_s"] or float("nan"),
            tuned_on=True,
            protocol="no labels used; one fault per kind; metrics, logs and traces",
        ).as_dict(),
        ScoreRow(
            task="cold_start",
            metric="faults alerted, 5 min after a cold start",
            dataset="simulator",
            value=summary["priors"]["detected"] / len(faults),
            tuned_on=True,
            protocol="no labels used; one fault per kind; metrics, logs and traces",
        ).as_dict(),
        ScoreRow(
            task="cold_start",
            metric=f"false alerts per {HOURS * 60:.0f} min cold start (mean over runs)",
            dataset="simulator",
            value=summary["priors"]["false_alerts"] / len(faults),
            tuned_on=True,
            protocol="no labels used; one fault per kind; metrics, logs and traces",
        ).as_dict(),
    ]
    return {
        "seed": seed,
        "start_hours": list(start_hours),
        "onset_s": ONSET.total_seconds(),
        "duration_s": DURATION.total_seconds(),
        "runs": runs,
        "summary": summary,
        "seconds": round(time.perf_counter() - started, 1),
        "scoreboard": rows,
    }


def _run(fault: Fault, seed: int, priors: bool) -> dict[str, Any]:
    sim = Simulator(
        start=fault.start - ONSET, hours=HOURS, seed=seed, faults=[fault], spikes_per_day=0.0
    )
    out: list = []
    settings = Settings(cold_start_priors=priors)
    flow = build_flow(
        simulator_source(sim), TestingSink(out), settings, sim.topology.call_graph(), [],
        logs=simulated_logs_source(sim), traces=simulated_traces_source(sim),
    )  # fmt: skip
    run_main(flow)
    firing = [e for e in out if isinstance(e, Alert) and e.status == "firing"]
    correct, false = [], 0
    for alert in firing:
        at = alert.updated_at or alert.starts_at
        if fault.start <= at <= fault.end + GRACE and alert.service in fault.affected:
            correct.append((at, alert))
        else:
            false += 1
    first_at, first = min(correct, key=lambda c: c[0], default=(None, None))
    delay = None if first_at is None else (first_at - fault.start).total_seconds()
    return {
        "kind": fault.kind,
        "start": fault.start.isoformat(),
        "root": fault.service,
        "delay_s": delay,
        "first_signal": None if first is None else f"{first.service}/{first.signal}",
        "false_alerts": false,
        "alerts": len(firing),
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    delays = [r["delay_s"] for r in runs if r["delay_s"] is not None]
    return {
        "detected": len(delays),
        "faults": len(runs),
        "median_delay_s": statistics.median(delays) if delays else None,
        "max_delay_s": max(delays) if delays else None,
        "false_alerts": sum(r["false_alerts"] for r in runs),
    }


def print_eval_cold_start(result: dict[str, Any], console: Any) -> None:
    """Per fault kind: the delay and first signal, with and without priors."""
    from rich.table import Table

    table = Table(title=f"Cold start: a fault {ONSET.total_seconds() / 60:.0f} min after start")
    columns = ("kind", "fault at", "root", "priors: delay", "first alert", "no priors: delay")
    for column in (*columns, "false"):
        table.add_column(column)
    for with_p, without in zip(result["runs"]["priors"], result["runs"]["no_priors"], strict=True):
        table.add_row(
            with_p["kind"],
            with_p["start"][11:16],
            with_p["root"],
            _fmt(with_p["delay_s"]),
            with_p["first_signal"] or "-",
            _fmt(without["delay_s"]),
            f"{with_p['false_alerts']} / {without['false_alerts']}",
        )
    console.print(table)
    for name, s in result["summary"].items():
        console.print(
            f"{name}: {s['detected']}/{s['faults']} alerted, median {_fmt(s['median_delay_s'])}, "
            f"max {_fmt(s['max_delay_s'])}, {s['false_alerts']} false alerts"
        )


def _fmt(seconds: float | None) -> str:
    return "missed" if seconds is None else f"{seconds:.0f} s"


def register(benchmarks: argparse._SubParsersAction) -> None:
    """``airis eval cold-start``."""
    parser = benchmarks.add_parser(
        "cold-start", help="time to first correct alert when a fault hits a fresh dataflow"
    )
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    parser.add_argument(
        "--kind", action="append", help="only this fault kind (repeatable; default: all)"
    )
    parser.add_argument(
        "--start-hour",
        type=int,
        action="append",
        choices=range(24),
        metavar="H",
        help="start the cold run at this hour (UTC) of the fixed day (repeatable; "
        "default 0, 4, 8, 12, 16 and 20)",
    )
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.set_defaults(run=_command)


def _command(args: argparse.Namespace) -> int:
    unknown = sorted(set(args.kind or ()) - set(FAULT_KINDS))
    if unknown:
        print(
            f"airis eval cold-start: unknown kind {unknown}; one of {FAULT_KINDS}", file=sys.stderr
        )
        return 2
    result = eval_cold_start(
        args.seed,
        args.kind or FAULT_KINDS,
        progress=console.print,
        start_hours=args.start_hour or START_HOURS,
    )
    print_eval_cold_start(result, Console())
    write_json(args.json, result)
    return 0
