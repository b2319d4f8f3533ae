"""`airis simulate --kafka`, `airis run --kafka` and `airis alerts tail`, as a user runs them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def airis(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "airis.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"airis {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done


def test_simulate_run_and_tail_show_the_faults_as_alerts(kafka_bootstrap, kafka_topic, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRIS_")}
    env.update(
        AIRIS_DATA_DIR=str(tmp_path),
        AIRIS_KAFKA_BOOTSTRAP=kafka_bootstrap,
        AIRIS_KAFKA_METRICS_TOPIC=f"metrics-{tmp_path.name}",
        AIRIS_KAFKA_LOGS_TOPIC=f"logs-{tmp_path.name}",
        AIRIS_KAFKA_TRACES_TOPIC=f"traces-{tmp_path.name}",
        AIRIS_KAFKA_ALERTS_TOPIC=f"alerts-{tmp_path.name}",
        AIRIS_KAFKA_ANOMALIES_TOPIC=f"anomalies-{tmp_path.name}",
        AIRIS_KAFKA_INCIDENTS_TOPIC=f"incidents-{tmp_path.name}",
        AIRIS_KAFKA_DEAD_LETTER_TOPIC=f"dlq-{tmp_path.name}",
        AIRIS_METRICS_PORT=str(_free_port()),
        COLUMNS="200",
    )
    truth = tmp_path / "truth.json"
    made = airis(
        "simulate", "--kafka", "--hours", "4", "--seed", "3", "--format", "otlp",
        "--truth", str(truth), env=env,
    )  # fmt: skip
    assert "produced 172,800 points" in made.stderr
    airis("run", "--kafka", "--no-tail", env=env)
    tail = airis("alerts", "tail", "--from-beginning", "--idle-timeout", "3", env=env)

    lines = [line for line in tail.stdout.splitlines() if "FIRING" in line or "RESOLVED" in line]
    assert lines, tail.stdout
    faults = json.loads(Path(truth).read_text())["faults"]
    alerted = {line.split()[3].split("/")[0] for line in lines if "FIRING" in line}
    for fault in faults:  # every fault's root or an affected service raised an alert
        assert alerted & ({fault["service"]} | set(fault["affected"])), fault

    again = airis("alerts", "tail", "--idle-timeout", "3", env=env)
    assert "FIRING" not in again.stdout  # the group's offsets were committed: nothing new


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
