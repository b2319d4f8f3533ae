"""`airis demo`, `airis simulate` and `airis run`: the metrics flow on embedded defaults."""

from __future__ import annotations

import importlib
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from bytewax.inputs import Source
from bytewax.outputs import Sink
from bytewax.testing import run_main
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from airis.app.demo_models import prepare_model, print_summary, summarise
from airis.app.demo_rows import TrainingRows
from airis.app.html_report.write import write_demo_report
from airis.app.report import RunReport, score_alerts
from airis.events import Alert, Incident, RcaCandidate
from airis.flows.metrics_anomaly import build_flow
from airis.flows.snapshots import kept
from airis.settings import Settings, StoreConfig
from airis.sinks.clickhouse_sink import ClickHouseSink
from airis.sinks.clickhouse_store import open_store
from airis.sinks.incident_memory_sink import IncidentMemorySink
from airis.sinks.migrations import migrate
from airis.sources.iterable_source import (
    jsonl_source,
    simulated_logs_source,
    simulated_traces_source,
    simulator_source,
)
from airis.sources.jsonl import write_jsonl
from airis.sources.simulator import Simulator, recent_simulation
from airis.sources.simulator.ground_truth import incident_of

__all__ = ["DEMO_BATCH_SECONDS", "run_demo", "run_file", "write_simulation"]

#: Simulated time per source batch in the demo. It replays its day as fast as it can, so its
#: producers send five simulated minutes at a time: every step's per-batch work (Bytewax's
#: calls, a batch's windows per service, the producers' queue) comes a third as often as with
#: 100-s batches, for the same windows, alerts and summary (every rule is on event time).
DEMO_BATCH_SECONDS = 300.0

_T = TypeVar("_T")


def run_demo(
    hours: float,
    seed: int,
    json_path: Path | None,
    data_dir: Path | None,
    console: Console,
    end: datetime | None = None,
    training_rows: TrainingRows | None = None,
) -> int:
    """Simulate (``hours`` up to ``end``, default the last whole hour), run the metrics flow
    into a fresh embedded store, score it, print it. ``training_rows``: the model's, started
    before the demo's imports (`TrainingRows.start`)."""
    began = time.perf_counter()
    base = Settings()
    data_dir = data_dir or base.data_dir / "demo"
    if data_dir.exists():
        console.print(f"demo: clearing the previous demo store in {data_dir}")
        shutil.rmtree(data_dir)
    settings = base.model_copy(
        update={"data_dir": data_dir, "chdb_path": data_dir / "chdb", "clickhouse_url": None}
    )
    sim = recent_simulation(hours, seed, end)
    truth = sim.ground_truth()
    console.print(
        f"demo: {len(truth['topology']['services'])} services, {hours:g} simulated hours from "
        f"{truth['start']}, {len(truth['faults'])} faults, seed {seed}"
    )
    # The store's tables are made while the model trains: chdb works on a thread of its own,
    # mostly without the GIL, and the flow's sink then finds them (0.5 s at its start before).
    tables = _in_background(_make_tables, settings.store)
    if settings.onnx_model:
        settings = settings.model_copy(update={"model_dir": data_dir / "models"})
        prepare_model(settings, sim, seed, console, training_rows)
    tables.result()
    source_total = _expected_points(sim)
    elapsed = _run_with_progress(
        console,
        source_total,
        # The simulators run in processes of their own, as producers would (sim_process).
        lambda on_batch: simulator_source(
            sim, on_batch, own_process=True, batch_seconds=DEMO_BATCH_SECONDS
        ),
        settings,
        sim.topology.call_graph(),
        [(d.service, d.ts) for d in sim.deploys],
        simulated_logs_source(sim, own_process=True, batch_seconds=DEMO_BATCH_SECONDS),
        simulated_traces_source(sim, own_process=True, batch_seconds=DEMO_BATCH_SECONDS),
    )
    # Qdrant's client (0.5 s of imports) loads while the store is read, which waits on chdb.
    memory_client = _in_background(importlib.import_module, "airis.sinks.incident_memory")
    stored = _read_results(settings)
    incidents = _read_incidents(settings)
    rca = _score_rca(sim, incidents)
    memory_client.result()
    remembered = _remember(settings, incidents, sim.topology.edges)
    report = score_alerts(
        [_fault_times(f) for f in truth["faults"]], stored["alerts"], _quiet(truth)
    )
    operations = summarise(settings, sim)
    summary = {
        **report.as_dict(),
        "events": source_total,
        "events_per_s": round(source_total / elapsed),
        "dataflow_s": round(elapsed, 2),
        "wall_s": round(time.perf_counter() - began, 2),
        "stored": stored["counts"],
        "incidents": len(incidents),
        "incidents_remembered": remembered,
        "rca_top1": rca["top1"],
        "rca_top3": rca["top3"],
        "rca": rca["faults"],
        **operations,
        "seed": seed,
        "hours": hours,
        "data_dir": str(data_dir),
    }
    _print_report(console, report, summary)
    _print_incidents(console, incidents, rca, data_dir)
    print_summary(Console(width=max(console.width, 120)), operations)
    page = write_demo_report(settings, data_dir / "report.html")
    console.print(f"demo: report → {page} (open it in a browser; `airis report demo` rewrites it)")
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        console.print(f"demo: summary → {json_path}")
    return 0


def write_simulation(hours: float, seed: int, output: Path, truth: Path, console: Console) -> int:
    """Write the demo's telemetry as JSONL and its ground truth as JSON; return the count."""
    sim = recent_simulation(hours, seed)
    count = write_jsonl(output, (e for tick in sim.ticks() for e in tick))
    truth.write_bytes(orjson.dumps(sim.ground_truth(), option=orjson.OPT_INDENT_2))
    return count


def run_file(path: Path, console: Console) -> int:
    """Run the metrics flow over a JSONL file into the configured ClickHouse store and the
    incident memory."""
    if not path.is_file():
        raise FileNotFoundError(f"no such input file: {path}")
    settings = Settings()
    elapsed = _run_with_progress(
        console,
        None,
        lambda on_batch: jsonl_source(path, on_batch),
        settings,
        memory=IncidentMemorySink(settings.memory),
    )
    stored = _read_results(settings)
    console.print(f"run: done in {elapsed:.1f} s; stored {stored['counts']}")
    return 0


def _run_with_progress(
    console: Console,
    total: int | None,
    make_source: Callable[[Callable[[int], None]], Source],
    settings: Settings,
    topology: dict[str, set[str]] | None = None,
    changes: list[tuple[str, datetime]] | None = None,
    logs: Source | None = None,
    traces: Source | None = None,
    memory: Sink | None = None,
) -> float:
    columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn()]
    columns += [TextColumn("{task.completed:,.0f} events"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("dataflow", total=total)
        source = make_source(lambda n: progress.update(task, completed=n))
        with kept(False):  # it runs without recovery: no step needs snapshots
            flow = build_flow(
                source,
                ClickHouseSink(settings.store),
                settings,
                topology,
                changes or (),
                logs,
                traces,
                memory,
            )
        started = time.perf_counter()
        run_main(flow)
        return time.perf_counter() - started


def _in_background(fn: Callable[..., _T], *args: Any) -> Future[_T]:
    """``fn(*args)`` on a thread of its own: its result, or what it raised, from the future."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="airis-demo")
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)


def _make_tables(config: StoreConfig) -> None:
    with open_store(config) as store:
        migrate(store)


def _expected_points(sim: Simulator) -> int:
    truth = sim.ground_truth()
    ticks = int(truth["hours"] * 3600 / truth["interval_seconds"])
    return ticks * len(truth["topology"]["services"]) * len(truth["signals"])


def _read_results(settings: Settings) -> dict[str, Any]:
    with open_store(settings.store) as store:
        rows = store.query(
            "SELECT * FROM alerts FINAL ORDER BY starts_at, fingerprint, status"
            " SETTINGS date_time_output_format = 'iso'"
        )
        counts = {
            table: store.query(f"SELECT count() AS n FROM {table} FINAL")[0]["n"]
            for table in (
                "metrics", "anomalies", "alerts", "otel_logs", "log_templates", "otel_traces",
                "service_edges", "model_scores", "forecasts", "capacity_warnings",
            )
        }  # fmt: skip
        counts["dead_letters"] = store.query("SELECT count() AS n FROM dead_letters")[0]["n"]
        # the per-window log and trace signals share the metrics table; count them apart
        for kind in ("log", "trace"):
            counts[f"{kind}_signal_points"] = store.query(
                f"SELECT count() AS n FROM metrics FINAL WHERE startsWith(signal, '{kind}_')"
            )[0]["n"]
            counts["metrics"] -= counts[f"{kind}_signal_points"]
    alerts = [
        Alert.model_validate({k: v for k, v in r.items() if k in Alert.model_fields}) for r in rows
    ]
    return {"alerts": alerts, "counts": counts}


def _read_incidents(settings: Settings) -> list[Incident]:
    """The stored incidents with their ranked candidates, oldest first."""
    with open_store(settings.store) as store:
        rows = store.query(
            "SELECT * FROM incidents FINAL ORDER BY started_at"
            " SETTINGS date_time_output_format = 'iso'"
        )
        candidates = store.query("SELECT * FROM rca_candidates FINAL ORDER BY incident_id, rank")
    by_incident: dict[str, list[RcaCandidate]] = {}
    for row in candidates:
        by_incident.setdefault(row["incident_id"], []).append(RcaCandidate.model_validate(row))
    return [
        Incident.model_validate(
            {**row, "root_cause": row["root_cause"] or None,
             "candidates": by_incident.get(row["id"], [])}
        )
        for row in rows
    ]  # fmt: skip


def _score_rca(sim: Simulator, incidents: list[Incident]) -> dict[str, Any]:
    """Per fault: its incident and the rank of its root cause there."""
    faults = []
    for fault in sim.faults:
        incident = incident_of(fault, incidents)
        ranked = [c.service for c in incident.candidates] if incident else []
        faults.append(
            {
                "fault": fault.id,
                "root": fault.service,
                "incident": incident.id if incident else None,
                "rank": ranked.index(fault.service) + 1 if fault.service in ranked else None,
            }
        )
    n = max(len(faults), 1)
    return {
        "faults": faults,
        "top1": round(sum(f["rank"] == 1 for f in faults) / n, 3),
        "top3": round(sum(f["rank"] is not None and f["rank"] <= 3 for f in faults) / n, 3),
    }


def _remember(
    settings: Settings, incidents: list[Incident], edges: Sequence[tuple[str, str]]
) -> int:
    """Put the incidents into the incident memory (Qdrant) for `airis incidents similar`,
    with the call graph's edges among their services in their signatures."""
    from airis.sinks.incident_memory import IncidentMemory

    with IncidentMemory(settings.memory) as memory:
        memory.upsert_many([(incident, (), (), edges) for incident in incidents])
        return memory.count()


def _print_incidents(
    console: Console, incidents: list[Incident], rca: dict[str, Any], data_dir: Path
) -> None:
    console = Console(width=max(console.width, 120))
    roots = {f["incident"]: f for f in rca["faults"] if f["incident"]}
    table = Table(title="Incidents and their most likely root cause")
    for col in ("incident", "start (UTC)", "services", "signals", "root cause (top 3)", "fault"):
        table.add_column(col)
    for incident in incidents:
        fault = roots.get(incident.id)
        top3 = ", ".join(c.service for c in incident.candidates[:3])
        verdict = "-"
        if fault:
            style = "green" if fault["rank"] == 1 else "red"
            verdict = f"{fault['root']}: [{style}]rank {fault['rank']}[/{style}]"
        table.add_row(
            incident.id,
            incident.started_at.strftime("%m-%d %H:%M"),
            str(len(incident.services)),
            str(len(incident.signals)),
            top3,
            verdict,
        )
    console.print(table)
    console.print(
        f"{len(incidents)} incidents for {len(rca['faults'])} faults; root cause ranked first "
        f"for {rca['top1']:.0%} of faults, in the top 3 for {rca['top3']:.0%}. "
        f"Evidence: rca_candidates table; similar incidents: AIRIS_DATA_DIR={data_dir} "
        "airis incidents similar ID"
    )


def _fault_times(fault: dict[str, Any]) -> dict[str, Any]:
    return {**fault, "start": _ts(fault["start"]), "end": _ts(fault["end"])}


def _quiet(truth: dict[str, Any]) -> tuple[datetime, datetime] | None:
    quiet = truth.get("quiet")
    return (_ts(quiet[0]), _ts(quiet[1])) if quiet else None


def _ts(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _print_report(console: Console, report: RunReport, summary: dict[str, Any]) -> None:
    console = Console(width=max(console.width, 120))  # the report goes to stdout, unwrapped
    table = Table(title="Injected faults vs alerts")
    for col in (
        "fault",
        "root service",
        "start (UTC)",
        "minutes",
        "detected",
        "first alert",
        "delay",
    ):
        table.add_column(col)
    for f in report.faults:
        table.add_row(
            f.kind,
            f.service,
            f.start.strftime("%m-%d %H:%M"),
            f"{(f.end - f.start).total_seconds() / 60:.0f}",
            "[green]yes[/green]" if f.detected else "[red]no[/red]",
            f"{f.alert_service} {f.alert_signal}" if f.detected else "-",
            f"{f.delay_s:.0f} s" if f.delay_s is not None else "-",
        )
    console.print(table)
    delay = summary["mean_detection_delay_s"]
    console.print(
        f"faults detected {report.detected}/{len(report.faults)}  recall {report.recall:.2f}  "
        f"precision {report.precision:.2f} ({report.true_alerts}/{report.alerts} alerts)  "
        f"alerts in the fault-free stretch {report.quiet_alerts}  "
        f"mean delay {'-' if delay is None else f'{delay:.0f} s'}"
    )
    console.print(
        f"{summary['events']:,} events through the dataflow in {summary['dataflow_s']} s "
        f"({summary['events_per_s']:,} events/s), {summary['wall_s']} s in all; "
        f"stored {summary['stored']}"
    )
    for alert in report.unmatched:
        console.print(f"  unmatched alert: {alert}")
