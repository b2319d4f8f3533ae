"""A real broker restarted mid-stream under a tailing `airis run --kafka` (issue 13).

Before the idle grace, system time moved a service's watermark while the broker was away, so
a 22-s restart dead-lettered 29 % of the points that followed as late. Here the broker (our
own, not the session's) goes down for 22 s between two halves of the producer's stream; the
flow must come back by itself, call nothing late and raise exactly the alerts of a run of
the same telemetry without Kafka.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from bytewax.testing import TestingSink, run_main

from airis.app.kafka_admin import ensure_topics
from airis.app.kafka_producer import produce_ticks
from airis.events import Alert
from airis.flows import metrics_anomaly
from airis.sinks.kafka_output import consume_topic
from airis.sources.iterable_source import simulator_source
from airis.sources.simulator import recent_simulation

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
OUTAGE_S = 22.0
#: Shorter than the default 60 s so the test need not wait as long for the last windows;
#: longer than the flow's quiet time around the restart (the outage, the broker's start-up
#: and the producer's reconnection), which is the point.
GRACE_S = 45.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kafka(*args: str) -> None:
    done = subprocess.run(
        ["bash", str(KAFKA_SH), *args], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def own_broker(tmp_path: Path, kafka_bootstrap: str) -> Iterator[tuple[str, list[str]]]:
    """A broker of this test's own (``kafka_bootstrap`` only makes sure the jars are there),
    and the ``up`` arguments that restart it on the same port and data."""
    up = ["up", "--port", str(_free_port()), "--dir", str(tmp_path / "kafka")]
    up += ["--owner-pid", str(os.getpid())]
    _kafka(*up)
    try:
        yield f"127.0.0.1:{up[2]}", up
    finally:
        _kafka("down", "--dir", str(tmp_path / "kafka"))


def _metric(port: int, name: str, **labels: str) -> float:
    """Sum of a counter on a running flow's /metrics (0 until it answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_22_s_broker_restart_makes_nothing_late_and_loses_no_alert(
    own_broker: tuple[str, list[str]], tmp_path: Path
) -> None:
    bootstrap, up = own_broker
    sim = recent_simulation(4.0, 5)
    ticks = list(sim.ticks())
    points = sum(len(t) for t in ticks)
    reference: list = []
    run_main(metrics_anomaly.build_flow(simulator_source(sim), TestingSink(reference)))
    expected = {a.id for a in reference if isinstance(a, Alert)}
    assert expected, "the telemetry must raise alerts for the test to mean anything"

    suffix = uuid.uuid4().hex[:8]
    topics = {name: f"restart-{name}-{suffix}" for name in ("metrics", "alerts", "dlq")}
    ensure_topics(bootstrap, list(topics.values()), partitions=2)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRIS_")}
    env.update(
        AIRIS_DATA_DIR=str(tmp_path / "data"),
        AIRIS_KAFKA_BOOTSTRAP=bootstrap,
        AIRIS_KAFKA_METRICS_TOPIC=topics["metrics"],
        AIRIS_KAFKA_LOGS_TOPIC=f"restart-logs-{suffix}",
        AIRIS_KAFKA_TRACES_TOPIC=f"restart-traces-{suffix}",
        AIRIS_KAFKA_ALERTS_TOPIC=topics["alerts"],
        AIRIS_KAFKA_ANOMALIES_TOPIC=f"restart-anomalies-{suffix}",
        AIRIS_KAFKA_INCIDENTS_TOPIC=f"restart-incidents-{suffix}",
        AIRIS_KAFKA_DEAD_LETTER_TOPIC=topics["dlq"],
        AIRIS_METRICS_PORT=str(port),
        AIRIS_IDLE_GRACE_SECONDS=str(GRACE_S),
    )
    # To a file, not a pipe: while the broker is away librdkafka logs every failed connection,
    # and a pipe nobody reads would fill up and stop the flow.
    log = (tmp_path / "flow.log").open("wb")
    flow = subprocess.Popen(
        [sys.executable, "-m", "airis.cli", "run", "--kafka"],  # tailing, as in production
        env=env,
        start_new_session=True,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        half = len(ticks) // 2
        produce_ticks(ticks[:half], bootstrap, topics["metrics"], "json", rate=10_000)
        first_half = sum(len(t) for t in ticks[:half])
        _wait(lambda: _metric(port, "airis_events_in_total") >= first_half, flow, 120)

        went_down = time.monotonic()
        _kafka("down", "--dir", up[4])
        time.sleep(max(OUTAGE_S - (time.monotonic() - went_down), 0.0))
        _kafka(*up)
        print(f"broker away for {time.monotonic() - went_down:.1f} s")

        produce_ticks(ticks[half:], bootstrap, topics["metrics"], "json", rate=10_000)
        _wait(lambda: _metric(port, "airis_events_in_total") >= points, flow, 300)
        # The last windows close by system time once the stream has been quiet for the grace.
        _wait(lambda: _alert_ids(bootstrap, topics["alerts"]) >= expected, flow, GRACE_S + 90)

        assert _metric(port, "airis_dead_letters_total") == 0
        assert _metric(port, "airis_events_in_total") == points
        assert _alert_ids(bootstrap, topics["alerts"]) == expected
        assert flow.poll() is None, "the flow must have ridden out the restart"
    finally:
        if flow.poll() is None:
            os.killpg(flow.pid, signal.SIGTERM)
        flow.wait(60)
        log.close()
        print((tmp_path / "flow.log").read_text(errors="replace")[-3000:])


def _alert_ids(bootstrap: str, topic: str) -> set[str]:
    return {
        orjson.loads(m.value())["id"] for m in consume_topic(bootstrap, topic, idle_timeout=2.0)
    }


def _wait(done, flow: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert flow.poll() is None, "the flow stopped"
        assert time.monotonic() < deadline, f"not reached within {seconds:.0f} s"
        time.sleep(0.5)
