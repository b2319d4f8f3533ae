"""Dashboard query latency behind BENCHMARKS.md (issue 15): every panel's query on 10M metric rows.

    .venv/bin/python benchmarks/bench_dashboards.py [--store DIR] [--rows N] [--json FILE]

Runs ``airis demo`` (24 simulated hours, seed 7) into a fresh embedded store unless ``--store``
names one, adds ``--rows`` (default 10,000,000) metric points to its ``metrics`` table, spread
over the 29 days before the demo's end (the table keeps 30): the demo's services and signals,
one point per series about every 31 s. Then runs every dashboard's queries
(`airis.app.grafana.check`, macros expanded as Grafana's ClickHouse plugin does) three times
over the last 24 hours and over the 29 days, and reports the median, p95 and maximum time of a
query (the variable and annotation queries included; a repeated panel once per value).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent

from bench_kafka import machine  # noqa: E402  (a sibling script, by path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, help="an embedded store a demo filled")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=REPO / "var/bench/dashboards.json")
    args = parser.parse_args()
    scratch = None
    store_dir = args.store
    if store_dir is None:
        scratch = Path(tempfile.mkdtemp(prefix="airis-bench-dashboards-"))
        print("running airis demo (24 simulated hours) for the store …", flush=True)
        env = {**os.environ, "AIRIS_DATA_DIR": str(scratch)}
        env.pop("AIRIS_CLICKHOUSE_URL", None)
        env.pop("AIRIS_CHDB_PATH", None)
        subprocess.run([sys.executable, "-m", "airis.cli", "demo"], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        store_dir = scratch / "demo" / "chdb"
    try:
        result = measure(store_dir, args.rows, args.repeat)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    result.update(date=datetime.now(UTC).isoformat(timespec="seconds"), **machine())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


def measure(store_dir: Path, rows: int, repeat: int) -> dict:
    from airis.app.grafana import DASHBOARDS
    from airis.app.grafana.check import check_dashboards, data_range
    from airis.sinks.chdb_store import ChdbStore

    with ChdbStore(store_dir) as store:
        _, end = data_range(store)
        start = end - timedelta(days=29)
        began = time.perf_counter()
        _add_points(store, rows, start, end)
        loaded = time.perf_counter() - began
        total = store.query("SELECT count() AS n FROM metrics")[0]["n"]
        print(f"{total:,} metric rows ({rows:,} added in {loaded:.1f} s)", flush=True)
        boards = {name: build() for name, build in DASHBOARDS.items()}
        out: dict = {"metric_rows": total}
        for label, since in (("last_24h", end - timedelta(days=1)), ("29_days", start)):
            times, problems = [], []
            for _ in range(repeat):
                checks = check_dashboards(store, boards, since, end)
                times += [c.ms for c in checks if c.problem is None]
                problems += [f"{c.dashboard}/{c.panel}: {c.problem}" for c in checks if c.problem]
            times.sort()
            out[label] = {
                "queries": len(times) // repeat,
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(times[round(0.95 * (len(times) - 1))], 1),
                "max_ms": round(times[-1], 1),
                "slowest": _slowest(checks),
                "problems": sorted(set(problems)),
            }
            print(label, {k: v for k, v in out[label].items() if k != "slowest"}, flush=True)
    return out


def _add_points(store, rows: int, start: datetime, end: datetime) -> None:
    """``rows`` points of the stored series, evenly over ``[start, end)``, made by ClickHouse."""
    series = store.query("SELECT DISTINCT service, signal FROM metrics ORDER BY service, signal")
    n = len(series)
    services = "[" + ",".join(f"'{s['service']}'" for s in series) + "]"
    signals = "[" + ",".join(f"'{s['signal']}'" for s in series) + "]"
    step_ms = int((end - start).total_seconds() * 1000 * n / rows)
    t0 = int(start.timestamp() * 1000)
    store.execute(
        f"""
        INSERT INTO metrics (ts, service, signal, value)
        SELECT fromUnixTimestamp64Milli(toInt64({t0} + intDiv(number, {n}) * {step_ms})),
               {services}[number % {n} + 1], {signals}[number % {n} + 1],
               50 + 20 * sin(number / 5000) + (cityHash64(number) % 1000) / 100
        FROM numbers({rows})
        """
    )


def _slowest(checks) -> list[str]:
    ranked = sorted(checks, key=lambda c: -c.ms)[:3]
    return [f"{c.dashboard}/{c.panel}: {c.ms:.0f} ms" for c in ranked]


if __name__ == "__main__":
    sys.exit(main())
