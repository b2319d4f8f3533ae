"""Kafka benchmarks behind BENCHMARKS.md (issue 3): ceiling, whole flow, latency, memory.

    .venv/bin/python benchmarks/bench_kafka.py [--bootstrap HOST:PORT] [--hours H] [--json FILE]

Starts its own broker (deploy/kafka/kafka.sh) unless ``--bootstrap`` names one. Each
measurement reads a fresh topic holding the simulator's telemetry (15 services × 8 signals,
seed 7, with its faults):

(a) ceiling: our Kafka source + the flow's decode step (`decode_partitions`) + a sink that
    drops everything, one process: JSON single-point messages, and OTLP protobuf batches of
    1,000 points (one message per service and 125 ticks, keyed by service: the size the
    issue's target names, what a Collector's batch processor sends);
(b) the whole metrics flow (`airis run --kafka --no-tail`: decode, detect, window, alert,
    alerts/anomalies to Kafka, every point to the embedded ClickHouse), JSON with 1 and 2
    processes, OTLP batches with 1, and JSON without keys with 1 (each service spread over
    the 4 partitions: the partition alignment's cost); wall time of the run, start-up
    included, and the steady rate: the points read between the scrapes of the flow's
    /metrics that first saw 10% and 90% of the input, over the time between them (since
    2026-12-06; before, 80% of the input over that time, which a poll of OTLP batches
    holding a fifth of the input made swing by ±30%); the items exchanged per point (keyed
    batches of one service's points over points read);
(c) event-to-alert latency at half of (b)'s 1-process rate (15,000 points/s without (b);
    ``--rate R`` for another): the simulator is produced at that rate while the flow tails the
    topic; for each alert, the time from producing the first event after its deciding
    window's end (the event that lets the window close) to receiving the alert from the
    alerts topic. The producer and the broker share the machine with the flow;
(d) peak memory with 100,000 active series (``--series N`` for another count), in a separate
    process: the detection steps of the flow (no Kafka) over 12,500 services × 8 signals
    (``--signals golden``: the simulator's, four of them forecast by planning): the peak
    while the input is read and the peak with its end (every open window closes at once),
    and pickled detector state/series (run by `benchmarks/bench_memory.py`, as is (e));
(e) where that memory goes: the same run over 500 services under ``tracemalloc``, the bytes
    per series still allocated at the end of the input, by source file;
(f) what the store costs (not in the default set: ``--only f``): (b)'s JSON flow on one
    process, with and without storing (a sink that drops what it would store), alternating
    on one topic, two runs each;
(s) the JSON flow's share of the ceiling (not in the default set: ``--only s``): (a)'s JSON
    ceiling and (b)'s JSON flow on one process, in turns on one topic, three pairs: each
    pair's share and the median;
(l) labelled points (not in the default set: ``--only l``): (b)'s JSON flow on one process on
    points with two labels each and on points without, in turns, two runs each;
(p) two processes against one (not in the default set: ``--only p``): (b)'s JSON flow on one
    process and on two, in turns on one topic, three pairs: each pair's ratio and the median.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_memory import SERIES, SIGNAL_SETS, memory, null_sink  # noqa: E402  (a sibling script, by path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours per topic")
    parser.add_argument("--json", type=Path, default=REPO / "var/bench/kafka.json")
    parser.add_argument("--only", default="abcde", help="measurements to run (default abcde)")
    parser.add_argument("--series", type=int, default=SERIES, help=f"(d)'s series ({SERIES:,})")
    parser.add_argument("--rate", type=float, help="(c)'s points/s (default: half of (b)'s)")
    parser.add_argument(
        "--signals",
        choices=sorted(SIGNAL_SETS),
        default="generic",
        help="(d) and (e): each service's 8 signals: sig0..sig7, which planning does not "
        "forecast (default), or the golden signals, four of them forecast",
    )
    args = parser.parse_args()
    results: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), **machine()}
    broker_dir = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker_dir = Path(tempfile.mkdtemp(prefix="airis-bench-kafka-"))
        port = free_port()
        subprocess.run(
            ["bash", str(REPO / "deploy/kafka/kafka.sh"), "up", "--port", str(port),
             "--dir", str(broker_dir)],
            check=True,
        )  # fmt: skip
        bootstrap = f"127.0.0.1:{port}"
    try:
        if "a" in args.only:
            results["a_ceiling"] = {
                "json": ceiling(bootstrap, args.hours, "json"),
                "otlp": ceiling(bootstrap, args.hours, "otlp"),
            }
        if "b" in args.only:
            results["b_flow"] = {
                f"{p}_process": whole_flow(bootstrap, args.hours, p) for p in (1, 2)
            }
            results["b_flow"]["otlp_1_process"] = whole_flow(bootstrap, args.hours, 1, "otlp")
            results["b_flow"]["json_unkeyed_1_process"] = whole_flow(
                bootstrap, args.hours, 1, keyed=False
            )
        if "c" in args.only:
            steady = results.get("b_flow", {}).get("1_process", {}).get("steady_points_per_s")
            rate = args.rate or (steady / 2 if steady else 15_000.0)
            results["c_latency"] = latency(bootstrap, rate)
        import bench_kafka_pairs  # a sibling script, by path: (s), (f), (l), (p)

        for letter, (key, measure) in bench_kafka_pairs.MEASUREMENTS.items():
            if letter in args.only:
                results[key] = measure(bootstrap, args.hours)
        if "d" in args.only:
            results["d_memory"] = memory(series=args.series, signals=args.signals)
        if "e" in args.only:
            results["e_memory_by_file"] = memory("--memory-by-file-child", signals=args.signals)
    finally:
        if broker_dir is not None:
            subprocess.run(
                ["bash", str(REPO / "deploy/kafka/kafka.sh"), "down", "--dir", str(broker_dir)],
                check=False,
            )
            shutil.rmtree(broker_dir, ignore_errors=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    return 0


def machine() -> dict:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill_topic(
    bootstrap: str,
    hours: float,
    wire: str,
    partitions: int = 4,
    keyed: bool = True,
    labels: bool = False,
) -> tuple[str, int]:
    """A new topic with ``hours`` of simulated metrics; messages keyed by service unless not
    ``keyed`` (then a service's messages spread over every partition, as an unkeyed producer
    writes them); with ``labels``, two labels a point (host and region, as exporters send)."""
    from airis.app.kafka_admin import ensure_topics
    from airis.app.kafka_producer import encode_tick, produce
    from airis.sources.simulator import recent_simulation

    topic = f"bench-{wire}-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [topic], partitions)
    ticks = recent_simulation(hours, 7).ticks()
    if labels:
        host = {"host": "node-1", "region": "eu-west-1"}
        ticks = ([{**e, "labels": host} for e in tick] for tick in ticks)
    if wire == "otlp":  # one message per service and OTLP_TICKS ticks
        ticks = _merged(ticks, OTLP_TICKS)
    batches = (
        (
            len(tick),
            [(topic, key if keyed else None, value) for key, value in encode_tick(tick, wire)],
        )
        for tick in ticks
    )
    points, _ = produce(batches, bootstrap)
    return topic, points


#: Ticks per OTLP message: 125 ticks of a service's 8 signals are 1,000 points.
OTLP_TICKS = 125


def _merged(ticks, n: int):
    """Every ``n`` ticks as one (their events in order)."""
    merged: list = []
    for i, tick in enumerate(ticks, 1):
        merged += tick
        if i % n == 0:
            yield merged
            merged = []
    if merged:
        yield merged


# --- (a) ---------------------------------------------------------------------------------------


def ceiling(bootstrap: str, hours: float, wire: str, filled: tuple[str, int] | None = None) -> dict:
    """Consume + decode only, one process, one worker (on a new topic, or on ``filled``)."""
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import run_main

    from airis.settings import Settings
    from airis.sources.kafka_input import decode_partitions, kafka_source

    topic, points = filled or fill_topic(bootstrap, hours, wire)
    settings = Settings(kafka_bootstrap=bootstrap, kafka_metrics_topic=topic, kafka_tail=False)
    flow = Dataflow("bench_ceiling")
    messages = op.input("read", flow, kafka_source(settings.kafka, topic))
    seen: list[float] = []

    def decode(batch):
        if not seen:
            seen.append(time.perf_counter())  # the first decode's start
        out = decode_partitions(batch, "metrics")  # the flow's decode step
        seen.append(time.perf_counter())
        return out

    decoded = op.flat_map_batch("decode", messages, decode)
    op.output("drop", op.filter("none", decoded, lambda _e: False), null_sink())
    started = time.perf_counter()
    run_main(flow)
    elapsed = time.perf_counter() - started
    result = {
        "points": points,
        "seconds": round(elapsed, 2),
        "points_per_s": round(points / elapsed),
        # from the first decode's start to the last one's end: without start-up and
        # connection time (a poll of large OTLP messages may hold a whole partition)
        "steady_points_per_s": round(points / (seen[-1] - seen[0])) if len(seen) > 1 else None,
    }
    print(f"(a) ceiling {wire}: {result}", flush=True)
    return result


# --- (b) ---------------------------------------------------------------------------------------


def flow_env(bootstrap: str, topic: str, data_dir: Path, port: int, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRIS_")}
    suffix = uuid.uuid4().hex[:8]
    env.update(
        AIRIS_DATA_DIR=str(data_dir),
        AIRIS_KAFKA_BOOTSTRAP=bootstrap,
        AIRIS_KAFKA_METRICS_TOPIC=topic,
        AIRIS_KAFKA_LOGS_TOPIC=f"bench-logs-{suffix}",
        AIRIS_KAFKA_TRACES_TOPIC=f"bench-traces-{suffix}",
        AIRIS_KAFKA_ALERTS_TOPIC=f"bench-alerts-{suffix}",
        AIRIS_KAFKA_ANOMALIES_TOPIC=f"bench-anomalies-{suffix}",
        AIRIS_KAFKA_INCIDENTS_TOPIC=f"bench-incidents-{suffix}",
        AIRIS_KAFKA_DEAD_LETTER_TOPIC=f"bench-dlq-{suffix}",
        AIRIS_METRICS_PORT=str(port),
        **extra,
    )
    return env


def events_in(
    ports: list[int],
    gc_full: dict[int, float] | None = None,
    batches: dict[int, float] | None = None,
    read: dict[int, float] | None = None,
) -> float:
    """Events read so far by the flow's processes (their ``/metrics``); ``gc_full`` gets each
    process's full garbage collections (prometheus-client's ``python_gc_collections_total``),
    ``batches`` its keyed batches (``airis_keyed_batches_total``: the items exchanged).
    ``read``: each process's count at its last answer, kept while it does not answer (busy,
    or gone at the end of a run before the others), and counted in the total."""
    read = {} if read is None else read
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
                text = r.read().decode()
        except _NOT_UP:
            continue
        read[port] = _sum_metric(text, "airis_events_in_total{")
        if gc_full is not None:
            gc_full[port] = _sum_metric(text, 'python_gc_collections_total{generation="2"}')
        if batches is not None:
            batches[port] = _sum_metric(text, "airis_keyed_batches_total ")
    return sum(read.get(port, 0.0) for port in ports)


def _sum_metric(text: str, prefix: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


#: (b)'s reads of the flow's ``/metrics``: each holds the flow's GIL about 1 ms (BENCHMARKS.md,
#: 2026-12-07), so every 50 ms only near the 10 % and 90 % marks (an OTLP poll can move the
#: count by a fifth of the input), else every 0.5 s. Prometheus scrapes every 15-60 s.
SCRAPE_NEAR_MARK_S = 0.05
SCRAPE_EVERY_S = 0.5


def whole_flow(
    bootstrap: str,
    hours: float,
    processes: int,
    wire: str = "json",
    keyed: bool = True,
    filled: tuple[str, int] | None = None,
    store: bool = True,
) -> dict:
    """(b) on a new topic, or on ``filled`` (topic, points); without ``store``, the same flow
    with a sink that drops what it would store, in one process (what (f) compares)."""
    topic, points = filled or fill_topic(bootstrap, hours, wire, keyed=keyed)
    data_dir = Path(tempfile.mkdtemp(prefix="airis-bench-flow-"))
    port = free_port()
    env = flow_env(bootstrap, topic, data_dir, port)
    cmd = [sys.executable, "-m", "airis.cli", "run", "--kafka", "--no-tail", "-p", str(processes)]
    if not store:
        from airis.app.kafka_admin import ensure_topics  # what `airis run` does first

        ensure_topics(bootstrap, [v for k, v in env.items() if k.endswith("_TOPIC")], 4)
        (data_dir / "bytewax-0").mkdir()
        env.update(
            AIRIS_KAFKA_TAIL="false",
            PYTHONPATH=str(REPO / "benchmarks"),
            BYTEWAX_DATAFLOW_API_ENABLED="true",  # /metrics, as `airis run` serves it
            BYTEWAX_DATAFLOW_API_PORT=str(port),
            BYTEWAX_DATAFLOW_API_CACHE_PATH=str(data_dir / "bytewax-0"),
        )
        cmd = [sys.executable, "-m", "bytewax.run", "bench_kafka:flow_without_store()"]
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    marks: dict[float, tuple[float, float]] = {}  # fraction -> (time, points read then)
    gc_full: dict[int, float] = {}  # the last scrape's, per process
    batches: dict[int, float] = {}
    read: dict[int, float] = {}  # per process, as last seen
    exchanged = (0.0, 0.0)  # (keyed batches, points) at the last scrape that saw points
    try:
        while proc.poll() is None:
            seen = events_in([port + i for i in range(processes)], gc_full, batches, read)
            if seen:
                exchanged = (sum(batches.values()), seen)
            now = time.perf_counter()
            for frac in (0.1, 0.9):
                if frac not in marks and seen >= points * frac:
                    marks[frac] = (now, seen)
            near = 0.1 not in marks or (0.9 not in marks and seen >= 0.6 * points)
            with contextlib.suppress(subprocess.TimeoutExpired):  # returns when the flow ends
                proc.wait(SCRAPE_NEAR_MARK_S if near else SCRAPE_EVERY_S)
    finally:  # a bench that fails must not leave the flow's processes running
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"airis run -p {processes} exited {proc.returncode}")
    # What was read between the scrapes that first saw 10 % and 90 % of the input: the
    # points a poll decodes arrive at once (an OTLP poll can hold a fifth of the input), so
    # the counts at those scrapes, not 10 % and 90 %, are what was read in between.
    steady = None
    if len(marks) == 2 and marks[0.9][0] > marks[0.1][0]:
        steady = (marks[0.9][1] - marks[0.1][1]) / (marks[0.9][0] - marks[0.1][0])
    shutil.rmtree(data_dir, ignore_errors=True)
    result = {
        "points": points,
        "seconds": round(elapsed, 2),
        "points_per_s": round(points / elapsed),
        "steady_points_per_s": round(steady) if steady else None,
        # each one walks every object, the detector state included (see airis/runtime.py)
        "full_gc_collections": int(sum(gc_full.values())),
        # items handed to the keyed detection step (the exchange between processes) per point
        "exchanged_per_point": round(exchanged[0] / exchanged[1], 5) if exchanged[1] else None,
    }
    what = "(b) whole flow" if store else "(f) whole flow without the store"
    print(f"{what}, {wire}, {processes} process(es): {result}", flush=True)
    return result


def flow_without_store():
    """The Kafka metrics flow with a store sink that drops everything ((f))."""
    from airis.flows.kafka_metrics import build_flow

    return build_flow(store_sink=null_sink())


# --- (c) ---------------------------------------------------------------------------------------


def latency(bootstrap: str, rate: float, minutes: float = 2.0) -> dict:
    """Produce at ``rate`` points/s while the flow tails; alert latency per alert."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    from airis.app.kafka_admin import ensure_topics
    from airis.app.kafka_producer import encode_tick
    from airis.sources.simulator import recent_simulation

    sim = recent_simulation(24, 7)
    per_tick = len(sim.services) * 8
    topic = f"bench-latency-{uuid.uuid4().hex[:8]}"
    data_dir = Path(tempfile.mkdtemp(prefix="airis-bench-latency-"))
    port = free_port()
    env = flow_env(bootstrap, topic, data_dir, port)
    ensure_topics(bootstrap, [topic], 4)
    ensure_topics(bootstrap, [env["AIRIS_KAFKA_ALERTS_TOPIC"]], 1)
    flow = subprocess.Popen(
        [sys.executable, "-m", "airis.cli", "run", "--kafka"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    received: list[tuple[float, dict]] = []
    stop = threading.Event()

    def consume() -> None:
        c = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False}
        )
        c.assign([TopicPartition(env["AIRIS_KAFKA_ALERTS_TOPIC"], 0, -2)])
        while not stop.is_set():  # poll, not consume(n, t): that waits out t unless n come
            m = c.poll(0.05)
            if m is not None and m.error() is None:
                received.append((time.time(), orjson.loads(m.value())))
        c.close()

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    while not _metrics_up(port):  # the flow is up once it serves /metrics
        if flow.poll() is not None:
            raise RuntimeError(f"airis run --kafka exited {flow.returncode}")
        time.sleep(0.2)
    time.sleep(2.0)  # let its consumers get their partitions
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
    produced_at: list[tuple[datetime, float]] = []
    budget = minutes * 60 * rate
    sent = 0
    started = time.monotonic()
    for tick in sim.ticks():
        for key, value in encode_tick(tick, "json"):
            producer.produce(topic, value=value, key=key)
        producer.poll(0)
        produced_at.append((tick[0]["ts"], time.time()))
        sent += per_tick
        ahead = sent / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
        if sent >= budget:
            break
    producer.flush(30)
    time.sleep(5)
    stop.set()
    reader.join(5)
    os.killpg(flow.pid, signal.SIGTERM)
    flow.wait(30)
    shutil.rmtree(data_dir, ignore_errors=True)

    latencies = []
    for recv, body in received:
        decided = body["annotations"].get("updatedAt") or body["startsAt"]
        window_end = datetime.fromisoformat(decided.replace("Z", "+00:00"))
        sent_at = next((wall for ts, wall in produced_at if ts >= window_end), None)
        if sent_at is not None:
            latencies.append(recv - sent_at)
    latencies.sort()
    result = {
        "rate_points_per_s": round(rate),
        "alerts": len(latencies),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1) if latencies else None,
        "max_ms": round(1000 * latencies[-1], 1) if latencies else None,
    }
    print(f"(c) latency: {result}", flush=True)
    return result


def _metrics_up(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).close()
        return True
    except _NOT_UP:
        return False


#: What asking a port nobody serves yet can raise. Connecting to a free local port in the
#: ephemeral range can meet itself (TCP simultaneous open) and read back its own request.
_NOT_UP = (OSError, http.client.HTTPException)


if __name__ == "__main__":
    sys.exit(main())
