"""The ``airis`` command line, run as a user would (subprocesses: one chdb store per process)."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest


def airis(*args: str, data_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIRIS_DATA_DIR": str(data_dir)}
    env.pop("AIRIS_CLICKHOUSE_URL", None)
    env.pop("AIRIS_CHDB_PATH", None)
    done = subprocess.run(
        [sys.executable, "-m", "airis.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if check and done.returncode != 0:
        pytest.fail(f"airis {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


def _nab_csv(path: Path, rows: int, spike_at: int) -> None:
    rng = random.Random(5)
    t0 = datetime(2014, 4, 1)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "value"])
        for i in range(rows):
            value = 20 + 5 * math.sin(i / 50) + rng.gauss(0, 0.5) + (40 if i == spike_at else 0)
            w.writerow([(t0 + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S"), value])


def test_detect_scores_every_row_online(tmp_path):
    _nab_csv(tmp_path / "in.csv", 3000, spike_at=2500)
    airis(
        "detect",
        "--input",
        str(tmp_path / "in.csv"),
        "--output",
        str(tmp_path / "out.csv"),
        data_dir=tmp_path,
    )
    with (tmp_path / "out.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3000
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score"]
    scores = [float(r["anomaly_score"]) for r in rows]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[2500] > 0.9
    assert max(scores[100:2500]) < 0.6


def test_detect_scores_do_not_depend_on_later_rows(tmp_path):
    _nab_csv(tmp_path / "full.csv", 1000, spike_at=900)
    lines = (tmp_path / "full.csv").read_text().splitlines()
    (tmp_path / "head.csv").write_text("\n".join(lines[:601]) + "\n")
    for name in ("full", "head"):
        airis(
            "detect",
            "--input",
            str(tmp_path / f"{name}.csv"),
            "--output",
            str(tmp_path / f"{name}.out"),
            data_dir=tmp_path,
        )
    full = (tmp_path / "full.out").read_text().splitlines()
    head = (tmp_path / "head.out").read_text().splitlines()
    assert head == full[: len(head)]


def test_detect_rejects_a_bad_file_with_a_clear_error(tmp_path):
    (tmp_path / "bad.csv").write_text("time,val\n1,2\n")
    done = airis(
        "detect",
        "--input",
        str(tmp_path / "bad.csv"),
        "--output",
        str(tmp_path / "o.csv"),
        data_dir=tmp_path,
        check=False,
    )
    assert done.returncode == 1 and "timestamp,value" in done.stderr
    (tmp_path / "bad2.csv").write_text("timestamp,value\n2014-04-01 00:00:00,1\nnot-a-date,2\n")
    done = airis(
        "detect",
        "--input",
        str(tmp_path / "bad2.csv"),
        "--output",
        str(tmp_path / "o.csv"),
        data_dir=tmp_path,
        check=False,
    )
    assert done.returncode == 1 and "bad2.csv:3" in done.stderr


def test_db_migrate_is_idempotent(tmp_path):
    first = airis("db", "migrate", data_dir=tmp_path)
    assert "applied [1, 2, 3, 4, 5, 6, 7, 8, 9]" in first.stderr
    second = airis("db", "migrate", data_dir=tmp_path)
    assert "up to date" in second.stderr


def _last_monday() -> str:
    """Midnight (UTC) of the latest Monday: recent enough for the store's TTLs, and the same
    weekday and hour every week, so the simulated telemetry is the same whenever this runs."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today - timedelta(days=today.weekday())).isoformat()


@pytest.mark.slow
def test_demo_detects_the_injected_faults_and_writes_its_summary(tmp_path):
    out = tmp_path / "summary.json"
    airis("demo", "--hours", "10", "--seed", "3", "--end", _last_monday(), "--json", str(out),
          data_dir=tmp_path)  # fmt: skip
    summary = json.loads(out.read_text())
    for key in (
        "faults",
        "detected",
        "precision",
        "recall",
        "mean_detection_delay_s",
        "alerts",
        "events",
        "events_per_s",
    ):
        assert key in summary
    assert summary["faults"] >= 2
    assert summary["recall"] >= 0.9 and summary["precision"] >= 0.8
    assert summary["alerts_in_quiet_stretch"] == 0
    assert summary["events"] == summary["stored"]["metrics"] == 10 * 360 * 15 * 8
    # incidents: about one per fault, root cause found, remembered for `incidents similar`
    assert 1 <= summary["incidents"] <= 1.2 * summary["faults"]
    assert summary["rca_top1"] >= 0.7 and summary["rca_top3"] >= 0.85
    assert summary["incidents_remembered"] == summary["incidents"]
    first = next(f["incident"] for f in summary["rca"] if f["incident"])
    similar = airis("incidents", "similar", first, "-k", "2", data_dir=tmp_path / "demo")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", similar.stdout) or "no similar" in similar.stdout


@pytest.mark.slow
def test_simulate_then_run_stores_points_and_dead_letters_bad_lines(tmp_path):
    events, truth = tmp_path / "events.jsonl", tmp_path / "truth.json"
    airis(
        "simulate",
        "--hours",
        "4",
        "--seed",
        "2",
        "--output",
        str(events),
        "--truth",
        str(truth),
        data_dir=tmp_path,
    )
    with events.open("ab") as f:
        f.write(b'{"service": "api"}\n\xff\xfe not json\n[1, 2]\n')
    done = airis("run", "--input", str(events), data_dir=tmp_path)
    assert "'metrics': 172800," in done.stderr
    assert "'dead_letters': 3" in done.stderr
    assert json.loads(truth.read_text())["seed"] == 2


@pytest.mark.slow
def test_bytewax_runner_runs_the_default_flow_into_the_configured_store(tmp_path):
    env = {**os.environ, "AIRIS_DATA_DIR": str(tmp_path)}
    env.pop("AIRIS_CLICKHOUSE_URL", None)
    env.pop("AIRIS_CHDB_PATH", None)
    # The default flow (the built-in simulator), its shortest run with faults: 4 hours.
    flow = "airis.flows.metrics_anomaly:build_flow(simulated_hours=4)"
    run = [sys.executable, "-m", "bytewax.run", flow]
    subprocess.run(run, env=env, check=True, timeout=600, capture_output=True)
    count = (
        "from airis.settings import Settings; from airis.sinks.clickhouse_store import open_store\n"
        "with open_store(Settings().store) as s:\n"
        '    print(s.query("SELECT count() AS n FROM metrics FINAL"\n'
        "                  \" WHERE NOT startsWith(signal, 'log_')\"\n"
        "                  \" AND NOT startsWith(signal, 'trace_')\")[0]['n'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", count], env=env, check=True, capture_output=True, text=True
    )
    assert int(done.stdout) == 4 * 360 * 15 * 8


def test_demo_refuses_an_end_the_store_would_drop_or_that_lies_ahead(tmp_path):
    for end in ("2020-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "yesterday"):
        done = airis("demo", "--end", end, data_dir=tmp_path, check=False)
        assert done.returncode == 2 and "--end" in done.stderr, end


def test_the_program_returns_mains_code_and_leaves_its_objects_out_of_collections():
    """`entry` (the ``airis`` script): the interpreter's teardown walks no module's objects."""
    program = (
        "import gc, sys\n"
        "from airis.cli import entry\n"
        "sys.argv = ['airis']\n"  # no command: the help, and code 2
        "code = entry()\n"
        "print(code, gc.get_freeze_count() > 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert done.stdout.split()[-2:] == ["2", "True"]
