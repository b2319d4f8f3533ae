"""The ``airis`` command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

console = Console(stderr=True)

#: The shared evaluation data, beside the repository (`../shared/data`).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airis", description="AIRIS-MON streaming AIOps engine")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(metavar="COMMAND")

    demo = sub.add_parser("demo", help="simulate faults, detect them, store and score the results")
    demo.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    demo.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    demo.add_argument("--json", type=Path, help="also write the summary as JSON here")
    demo.add_argument(
        "--data-dir", type=Path, help="embedded store directory (default $AIRIS_DATA_DIR/demo)"
    )
    demo.add_argument(
        "--end",
        type=_recent_utc,
        help="end of the simulated hours, ISO 8601 (default: the last whole hour); what the "
        "detectors see depends on the hour of day and the day of the week, so a fixed end "
        "repeats a run exactly",
    )
    demo.set_defaults(run=_demo)

    detect = sub.add_parser("detect", help="score a NAB-style timestamp,value CSV online")
    detect.add_argument("--input", type=Path, required=True)
    detect.add_argument("--output", type=Path, required=True)
    detect.set_defaults(run=_detect)

    simulate = sub.add_parser(
        "simulate", help="simulated telemetry with faults: to a JSONL file or onto Kafka"
    )
    simulate.add_argument("--hours", type=float, default=24.0)
    simulate.add_argument("--seed", type=int, default=7)
    target = simulate.add_mutually_exclusive_group(required=True)
    target.add_argument("--output", type=Path, help="JSONL events")
    target.add_argument(
        "--kafka",
        action="store_true",
        help="produce onto $AIRIS_KAFKA_METRICS_TOPIC (and the logs and traces topics)",
    )
    simulate.add_argument("--truth", type=Path, help="ground truth JSON (required with --output)")
    pace = simulate.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="points per second (Kafka)")
    pace.add_argument("--max", action="store_true", help="as fast as possible (Kafka; default)")
    simulate.add_argument(
        "--format", choices=["json", "otlp", "otlp_json"], default="json", help="wire format"
    )
    simulate.add_argument(
        "--partitions", type=int, default=4, help="partitions of topics it creates (default 4)"
    )
    simulate.add_argument(
        "--signals",
        default="metrics,logs,traces",
        help="what to produce (Kafka): metrics plus any of logs, traces (default all three)",
    )
    simulate.set_defaults(run=_simulate)

    run = sub.add_parser("run", help="run the metrics dataflow: a JSONL file, or Kafka topics")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, help="JSONL metric events")
    source.add_argument(
        "--kafka", action="store_true", help="read the $AIRIS_KAFKA_{METRICS,LOGS,TRACES}_TOPIC"
    )
    run.add_argument("-p", "--processes", type=int, default=1, help="dataflow processes")
    run.add_argument("-w", "--workers", type=int, default=1, help="workers per process")
    run.add_argument("--recovery-dir", type=Path, help="resume from snapshots kept here")
    run.add_argument(
        "--snapshot-seconds", type=int, default=5, help="snapshot interval, whole s (default 5)"
    )
    run.add_argument(
        "--no-tail", action="store_true", help="stop at the end of the topic instead of waiting"
    )
    run.set_defaults(run=_run)

    alerts = sub.add_parser("alerts", help="alerts on Kafka")
    alerts_sub = alerts.add_subparsers(metavar="ACTION")
    tail = alerts_sub.add_parser("tail", help="print alerts from $AIRIS_KAFKA_ALERTS_TOPIC")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest alert")
    tail.add_argument("--group", help="consumer group (default airis-tail-$USER)")
    tail.add_argument("--max", type=int, help="stop after this many alerts")
    tail.add_argument("--idle-timeout", type=float, help="stop after this many quiet seconds")
    tail.set_defaults(run=_tail)

    logs = sub.add_parser("logs", help="log template mining")
    logs_sub = logs.add_subparsers(metavar="ACTION")
    templates = logs_sub.add_parser(
        "templates", help="mine templates of a CSV's Content column → LineId,EventTemplate"
    )
    templates.add_argument("--input", type=Path, required=True, help="CSV with LineId,Content")
    templates.add_argument("--output", type=Path, required=True)
    templates.set_defaults(run=_log_templates)

    evaluate = sub.add_parser("eval", help="quality on public data or simulated faults")
    eval_sub = evaluate.add_subparsers(metavar="BENCHMARK")
    eval_logs = eval_sub.add_parser("logs", help="Loghub grouping accuracy")
    eval_logs.add_argument(
        "--data",
        type=Path,
        action="append",
        help="a folder of labelled logs (repeatable; default: loghub and loghub_extra)",
    )
    eval_petshop = eval_sub.add_parser("petshop", help="PetShop root-cause top-1/top-3")
    eval_petshop.add_argument(
        "--data",
        type=Path,
        action="append",
        help="a PetShop scenario or a folder of them (repeatable; default: petshop and "
        "petshop_temporal)",
    )
    eval_petshop.add_argument("--scenario", help="only the scenario of this name")
    eval_nezha = eval_sub.add_parser("nezha", help="Nezha pod-metric root-cause AS@1/3/5")
    eval_nezha.add_argument("--data", type=Path, default=SHARED_DATA / "rca_nezha")
    eval_nezha.add_argument("--json", type=Path, help="also write the result as JSON here")
    eval_nezha.set_defaults(run=_eval_nezha)
    eval_nab = eval_sub.add_parser("nab", help="NAB scores (standard, low FP, low FN)")
    eval_nab.add_argument("--data", type=Path, default=SHARED_DATA / "nab")
    eval_nab.add_argument(
        "--results",
        type=Path,
        help="score every detector under this NAB results folder instead of running ours",
    )
    eval_nab.add_argument(
        "--out",
        type=Path,
        default=Path("var/nab_results"),
        help="where our detector's results go (default var/nab_results)",
    )
    eval_nab.add_argument("--json", type=Path, help="also write the result as JSON here")
    eval_nab.set_defaults(run=_eval_nab)
    eval_uni = eval_sub.add_parser(
        "univariate", help="NAB-style scores of airis detect on NAB, AIOps 2018 KPIs, MS cloud"
    )
    eval_uni.add_argument(
        "--data", type=Path, default=SHARED_DATA, help="folder holding the datasets' folders"
    )
    eval_uni.add_argument(
        "--dataset",
        action="append",
        help="only this dataset (repeatable; default: nab, kpi_aiops2018, ms_cloud_monitoring)",
    )
    eval_uni.add_argument("--json", type=Path, help="also write the result as JSON here")
    eval_uni.set_defaults(run=_eval_univariate)
    eval_cold = eval_sub.add_parser(
        "cold-start", help="time to first correct alert when a fault hits a fresh dataflow"
    )
    eval_cold.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    eval_cold.add_argument(
        "--kind", action="append", help="only this fault kind (repeatable; default: all)"
    )
    eval_cold.add_argument(
        "--start-hour",
        type=int,
        action="append",
        choices=range(24),
        metavar="H",
        help="start the cold run at this hour (UTC) of the fixed day (repeatable; "
        "default 0, 4, 8, 12, 16 and 20)",
    )
    eval_cold.add_argument("--json", type=Path, help="also write the result as JSON here")
    eval_cold.set_defaults(run=_eval_cold_start)
    eval_board = eval_sub.add_parser(
        "scoreboard", help="join eval JSON files into one board: tuned on vs not tuned on"
    )
    eval_board.add_argument("inputs", type=Path, nargs="+", help="eval JSON files")
    eval_board.add_argument("--json", type=Path, help="also write the board as JSON here")
    eval_board.set_defaults(run=_eval_scoreboard)
    for command in ("multivariate", "smd"):
        eval_mv = eval_sub.add_parser(
            command,
            help="multivariate (SMD, SMD extra, ASD): ONNX autoencoder, PA F1 at a POT "
            "threshold and at the best one"
            + (" (alias of multivariate)" if command == "smd" else ""),
        )
        eval_mv.add_argument(
            "--data",
            type=Path,
            action="append",
            help="a folder of *.npz machines (repeatable; default: smd, smd_extra and asd "
            "under ../shared/data)",
        )
        eval_mv.add_argument(
            "--smooth",
            type=float,
            default=0.0,
            help="causal EWMA weight of the newest error (default 0: each row alone)",
        )
        eval_mv.add_argument("--json", type=Path, help="also write the result as JSON here")
        eval_mv.set_defaults(run=_eval_smd)
    eval_forecast = eval_sub.add_parser(
        "forecast", help="forecast sMAPE/MASE on NAB; exhaustion warning lead on simulated faults"
    )
    eval_forecast.add_argument("--data", type=Path, default=SHARED_DATA / "nab")
    eval_forecast.add_argument(
        "--series", action="append", help="only this realKnownCause series (file stem; repeatable)"
    )
    eval_forecast.add_argument(
        "--faults", type=int, default=24, help="leak/fill faults to score (default 24)"
    )
    eval_forecast.add_argument(
        "--first-seed", type=int, default=1, help="simulator seed of the first day (default 1)"
    )
    eval_forecast.add_argument("--json", type=Path, help="also write the result as JSON here")
    eval_forecast.set_defaults(run=_eval_forecast)
    eval_rca = eval_sub.add_parser("rca", help="root cause of simulated faults (AC@k)")
    eval_rca.add_argument("--faults", type=int, default=60, help="faults to score (default 60)")
    eval_rca.add_argument(
        "--first-seed", type=int, default=1, help="simulator seed of the first day (default 1)"
    )
    eval_rca.add_argument("--no-logs", dest="logs", action="store_false", help="no simulated logs")
    eval_rca.add_argument(
        "--no-traces", dest="traces", action="store_false", help="no simulated traces"
    )
    eval_rca.add_argument(
        "--learned-topology",
        action="store_true",
        help="give the flow no call graph: it learns one from the traces (as on Kafka)",
    )
    eval_rca.add_argument(
        "--end",
        type=_utc_time,
        help="each simulated day ends here, ISO 8601 (default: the last whole hour; a fixed "
        "end repeats a run exactly)",
    )
    for parser_ in (eval_logs, eval_petshop, eval_rca):
        parser_.add_argument("--json", type=Path, help="also write the result as JSON here")
    eval_logs.set_defaults(run=_eval_logs)
    eval_petshop.set_defaults(run=_eval_petshop)
    eval_rca.set_defaults(run=_eval_rca)

    incidents = sub.add_parser("incidents", help="the incident memory (Qdrant)")
    incidents_sub = incidents.add_subparsers(metavar="ACTION")
    similar = incidents_sub.add_parser("similar", help="past incidents most like incident ID")
    similar.add_argument("incident_id", metavar="ID")
    similar.add_argument("-k", type=int, default=5, help="how many (default 5)")
    similar.add_argument("--service", help="only incidents involving this service")
    similar.add_argument(
        "--since", type=datetime.fromisoformat, help="only incidents started since (ISO 8601)"
    )
    similar.add_argument("--min-score", type=float, help="drop matches scoring below this")
    similar.set_defaults(run=_similar)

    models = sub.add_parser("models", help="the model registry: versions, stages, lineage")
    models_sub = models.add_subparsers(metavar="ACTION", dest="action")
    registry = argparse.ArgumentParser(add_help=False)
    registry.add_argument(
        "--registry", type=Path, help="registry directory (default $AIRIS_DATA_DIR/models)"
    )
    models_list = models_sub.add_parser("list", parents=[registry], help="versions of all models")
    models_list.add_argument("name", nargs="?", help="only this model")
    models_show = models_sub.add_parser(
        "show", parents=[registry], help="lineage, files and history of one version"
    )
    models_show.add_argument("name")
    models_show.add_argument(
        "version", type=int, nargs="?", help="default: the production one, else the latest"
    )
    models_promote = models_sub.add_parser(
        "promote", parents=[registry], help="move a version to a stage (default production)"
    )
    models_promote.add_argument("name")
    models_promote.add_argument("version", type=int)
    models_promote.add_argument(
        "--stage", choices=["staging", "production", "archived"], default="production"
    )
    models_rollback = models_sub.add_parser(
        "rollback", parents=[registry], help="production back to the previous production version"
    )
    models_rollback.add_argument("name")
    models_compare = models_sub.add_parser(
        "compare", parents=[registry], help="params, metrics and lineage of two versions"
    )
    models_compare.add_argument("name")
    models_compare.add_argument("a", type=int, metavar="A")
    models_compare.add_argument("b", type=int, metavar="B")
    for parser_ in (models_list, models_show, models_promote, models_rollback, models_compare):
        parser_.set_defaults(run=_models)
    models_train = models_sub.add_parser(
        "train",
        parents=[registry],
        help="train the flow's service autoencoder on simulated telemetry and register it",
    )
    models_train.add_argument("name", nargs="?", default="service_autoencoder")
    models_train.add_argument(
        "--hours",
        type=float,
        default=24.0,
        help="hours trained on, and checked on (default 24: a whole daily cycle)",
    )
    models_train.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    models_train.add_argument("--promote", action="store_true", help="promote it to production")
    models_train.set_defaults(run=_models)

    db = sub.add_parser("db", help="database administration")
    db_sub = db.add_subparsers(metavar="ACTION")
    migrate = db_sub.add_parser("migrate", help="apply pending ClickHouse migrations")
    migrate.set_defaults(run=_migrate)
    return parser


def _utc_time(text: str) -> datetime:
    """An ISO 8601 time, in UTC (a time without an offset is taken as UTC)."""
    try:
        ts = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _recent_utc(text: str) -> datetime:
    """An ISO 8601 time in the past 29 days (the stores' shortest TTL, 30 days, drops older
    rows)."""
    ts = _utc_time(text)
    now = datetime.now(UTC)
    if not now - timedelta(days=29) <= ts <= now:
        raise argparse.ArgumentTypeError(
            f"{ts.isoformat()} is not within the last 29 days: the store would drop its rows "
            "(a 30-day TTL) or it lies in the future"
        )
    return ts


def _demo(args: argparse.Namespace) -> int:
    from airis.demo import run_demo

    return run_demo(args.hours, args.seed, args.json, args.data_dir, console, end=args.end)


def _detect(args: argparse.Namespace) -> int:
    from airis.detect import detect_csv

    started = time.perf_counter()
    rows = detect_csv(
        args.input, args.output, progress=lambda n: console.print(f"detect: {n:,} rows")
    )
    elapsed = time.perf_counter() - started
    console.print(
        f"detect: scored {rows:,} rows in {elapsed:.2f} s ({rows / max(elapsed, 1e-9):,.0f} rows/s)"
        f" → {args.output}"
    )
    return 0


def _simulate(args: argparse.Namespace) -> int:
    if args.kafka:
        from airis.kafka_commands import simulate_to_kafka

        return simulate_to_kafka(args, console)
    from airis.demo import write_simulation

    if args.truth is None:
        raise ValueError("simulate --output needs --truth FILE for the ground truth")
    count = write_simulation(args.hours, args.seed, args.output, args.truth, console)
    console.print(f"simulate: {count:,} events → {args.output}, ground truth → {args.truth}")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.kafka:
        from airis.kafka_commands import run_kafka

        return run_kafka(args, console)
    from airis.demo import run_file

    return run_file(args.input, console)


def _tail(args: argparse.Namespace) -> int:
    from airis.alerts_tail import tail_alerts
    from airis.settings import Settings

    with contextlib.suppress(KeyboardInterrupt):
        tail_alerts(
            Settings(),
            Console(),
            from_beginning=args.from_beginning,
            group=args.group,
            max_alerts=args.max,
            idle_timeout=args.idle_timeout,
        )
    return 0


def _log_templates(args: argparse.Namespace) -> int:
    from airis.eval_logs import templates_csv

    started = time.perf_counter()
    lines = templates_csv(args.input, args.output)
    elapsed = time.perf_counter() - started
    console.print(f"logs templates: {lines:,} lines in {elapsed:.2f} s → {args.output}")
    return 0


def _eval_logs(args: argparse.Namespace) -> int:
    from airis.eval_logs import eval_logs, print_eval_logs

    result = eval_logs(args.data or [SHARED_DATA / "loghub", SHARED_DATA / "loghub_extra"])
    print_eval_logs(result, Console())
    _write_json(args.json, result)
    return 0


def _eval_nab(args: argparse.Namespace) -> int:
    from airis.eval_nab import eval_nab, print_eval_nab

    result = eval_nab(args.data, args.results, args.out, progress=console.print)
    print_eval_nab(result, Console())
    _write_json(args.json, result)
    return 0


def _eval_univariate(args: argparse.Namespace) -> int:
    from airis.eval_univariate import DATASETS, eval_univariate, print_eval_univariate

    console = Console(stderr=True)
    result = eval_univariate(args.data, args.dataset or DATASETS, progress=console.print)
    print_eval_univariate(result, Console())
    _write_json(args.json, result)
    return 0


def _eval_cold_start(args: argparse.Namespace) -> int:
    from airis.eval_cold_start import START_HOURS, eval_cold_start, print_eval_cold_start
    from airis.sources.faults import FAULT_KINDS

    unknown = sorted(set(args.kind or ()) - set(FAULT_KINDS))
    if unknown:
        print(
            f"airis eval cold-start: unknown kind {unknown}; one of {FAULT_KINDS}", file=sys.stderr
        )
        return 2
    console = Console(stderr=True)
    result = eval_cold_start(
        args.seed,
        args.kind or FAULT_KINDS,
        progress=console.print,
        start_hours=args.start_hour or START_HOURS,
    )
    print_eval_cold_start(result, Console())
    _write_json(args.json, result)
    return 0


def _eval_scoreboard(args: argparse.Namespace) -> int:
    from airis.scoreboard import merge_scoreboards, print_scoreboard

    missing = [str(p) for p in args.inputs if not p.exists()]
    if missing:
        print(f"airis eval scoreboard: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    board = merge_scoreboards(args.inputs)
    print_scoreboard(board, Console(width=160))
    _write_json(args.json, board)
    return 0


def _eval_petshop(args: argparse.Namespace) -> int:
    from airis.eval_petshop import eval_petshop, print_eval_petshop

    data = args.data or [SHARED_DATA / "petshop", SHARED_DATA / "petshop_temporal"]
    result = eval_petshop(data, scenario=args.scenario)
    print_eval_petshop(result, Console())
    _write_json(args.json, result)
    return 0


def _eval_nezha(args: argparse.Namespace) -> int:
    from airis.eval_nezha import eval_nezha, print_eval_nezha

    result = eval_nezha(args.data, progress=console.print)
    print_eval_nezha(result, Console())
    _write_json(args.json, result)
    return 0


def _eval_smd(args: argparse.Namespace) -> int:
    from airis.eval_smd import eval_multivariate, print_eval_multivariate

    folders = args.data or [SHARED_DATA / name for name in ("smd", "smd_extra", "asd")]
    result = eval_multivariate(folders, progress=console.print, smooth=args.smooth)
    print_eval_multivariate(result, Console())
    _write_json(args.json, result)
    return 0


def _eval_rca(args: argparse.Namespace) -> int:
    from airis.eval_rca import eval_rca, print_eval_rca

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
    _write_json(args.json, result)
    return 0


def _eval_forecast(args: argparse.Namespace) -> int:
    from airis.eval_forecast import eval_forecast, print_eval_forecast
    from airis.settings import Settings

    settings = Settings()
    result = eval_forecast(
        args.data,
        series=args.series,
        faults=args.faults,
        first_seed=args.first_seed,
        threshold=settings.capacity_threshold_percent,
        warn_within_seconds=settings.capacity_warn_within_seconds,
        progress=console.print,
    )
    print_eval_forecast(result, Console())
    _write_json(args.json, result)
    return 0


def _similar(args: argparse.Namespace) -> int:
    from airis.settings import Settings
    from airis.sinks.incident_memory import IncidentMemory, format_similar

    memory = IncidentMemory(Settings())
    try:
        found = memory.similar(
            args.incident_id,
            k=args.k,
            service=args.service,
            since=args.since,
            score_threshold=args.min_score,
        )
    except KeyError as exc:
        raise ValueError(str(exc).strip("'\"")) from None
    finally:
        memory.close()
    format_similar(found, Console())
    return 0


def _write_json(path: Path | None, result: object) -> None:
    if path is None:
        return
    import orjson

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    console.print(f"→ {path}")


def _models(args: argparse.Namespace) -> int:
    from airis.model_commands import run_models

    return run_models(args, Console())


def _migrate(args: argparse.Namespace) -> int:
    from airis.settings import Settings
    from airis.sinks.clickhouse_store import open_store
    from airis.sinks.migrations import migrate

    store = open_store(Settings())
    try:
        applied = migrate(store)
    finally:
        store.close()
    console.print(f"db migrate: applied {applied}" if applied else "db migrate: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
