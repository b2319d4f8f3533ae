"""Where the Kafka metrics flow's main thread spends its CPU, step by step (issue 13).

    .venv/bin/python benchmarks/bench_flow_steps.py [--bootstrap HOST:PORT] [--hours H]
        [--wire json|otlp] [--store on|off|no-insert] [--runs N] [--json FILE]

Runs the flow `airis run --kafka --no-tail` runs (one process, no snapshots) over a topic of
the simulator's telemetry, filled as `bench_kafka.py` fills its topics, with each step's Python
callback timed by the main thread's CPU clock (``time.thread_time``) and by the wall clock
(the difference: what the callback waited for the GIL, the broker or a core): a
``flat_map_batch``'s mapper, a ``branch``'s predicate, a stateful step's logic, the source
partitions' polls and the sinks' writes. What no callback holds is Bytewax's own work between
them. Each step's CPU is given per point read and as a share of the main thread's CPU from the
end of the flow's build to its exit, and the garbage collector's time in that thread beside them.
``--runs``: the median of each figure over that many runs of one topic.

Each run is paired with a run of `bench_kafka.py`'s ceiling (its source and the flow's decode
step, nothing downstream) on the same topic, timed the same way: what the source's polls and
the decode cost a point there, beside what they cost inside the flow.

``--store``: ``on`` (default) stores as the flow does; ``off`` drops what it would store (as
`bench_kafka.py`'s (f)); ``no-insert`` buffers and converts the rows to Arrow as the embedded
ClickHouse store does, and skips only the engine's insert of the ``metrics`` table: the three
apart tell the store's Python from the engine's work beside the flow.

Starts its own broker (deploy/kafka/kafka.sh) unless ``--bootstrap`` names one.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench_kafka import REPO, fill_topic, flow_env, free_port, machine  # a sibling script

#: Where the child flow writes its timings (set by the parent for the child).
REPORT_ENV = "AIRIS_BENCH_STEPS_REPORT"
STORE_ENV = "AIRIS_BENCH_STEPS_STORE"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    parser.add_argument("--wire", choices=("json", "otlp"), default="json")
    parser.add_argument("--labels", action="store_true", help="two labels a point (host, region)")
    parser.add_argument("--store", choices=("on", "off", "no-insert"), default="on")
    parser.add_argument("--runs", type=int, default=3, help="runs over one topic (default 3)")
    parser.add_argument("--json", type=Path, default=REPO / "var/bench/flow_steps.json")
    # The ceiling's own process: BOOTSTRAP TOPIC POINTS WIRE.
    parser.add_argument("--ceiling-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ceiling_child:
        return ceiling_child(*args.ceiling_child)
    broker_dir, bootstrap = None, args.bootstrap
    if bootstrap is None:
        broker_dir = Path(tempfile.mkdtemp(prefix="airis-bench-steps-"))
        port = free_port()
        kafka_sh = str(REPO / "deploy/kafka/kafka.sh")
        subprocess.run(["bash", kafka_sh, "up", "--port", str(port), "--dir", str(broker_dir)],
                       check=True)  # fmt: skip
        bootstrap = f"127.0.0.1:{port}"
    try:
        topic, points = fill_topic(bootstrap, args.hours, args.wire, labels=args.labels)
        runs, ceilings = [], []
        for i in range(args.runs):
            ceilings.append(ceiling_once(bootstrap, topic, points, args.wire))
            runs.append(run_once(bootstrap, topic, args.store))
            print(f"run {i + 1}/{args.runs}: main thread {runs[-1]['main_cpu_s']:.2f} s CPU,"
                  f" the ceiling's {ceilings[-1]['main_cpu_s']:.2f} s", flush=True)  # fmt: skip
    finally:
        if broker_dir is not None:
            subprocess.run(["bash", str(REPO / "deploy/kafka/kafka.sh"), "down", "--dir",
                            str(broker_dir)], check=False)  # fmt: skip
            shutil.rmtree(broker_dir, ignore_errors=True)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), **machine(),
        "wire": args.wire, "labels": args.labels, "store": args.store, "points": points,
        "runs": len(runs),
        **summary(runs, points), "ceiling": summary(ceilings, points),
    }  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print_table(result)
    return 0


def run_once(bootstrap: str, topic: str, store: str) -> dict:
    """One run of the probed flow over ``topic``; its timings (what the child wrote)."""
    from airis.app.kafka_admin import ensure_topics

    data_dir = Path(tempfile.mkdtemp(prefix="airis-bench-steps-flow-"))
    report = data_dir / "steps.json"
    env = flow_env(bootstrap, topic, data_dir, free_port())
    env.update({REPORT_ENV: str(report), STORE_ENV: store, "AIRIS_KAFKA_TAIL": "false",
                "PYTHONPATH": str(REPO / "benchmarks")})  # fmt: skip
    ensure_topics(bootstrap, [v for k, v in env.items() if k.endswith("_TOPIC")], 4)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bytewax.run", "bench_flow_steps:probed_flow()"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"the flow exited {done.returncode}: {done.stderr[-2000:]}")
        return json.loads(report.read_text())
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def ceiling_once(bootstrap: str, topic: str, points: int, wire: str) -> dict:
    """One run of the ceiling over ``topic`` in a process of its own; its timings."""
    out = subprocess.run(
        [sys.executable, __file__, "--ceiling-child", bootstrap, topic, str(points), wire],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def ceiling_child(bootstrap: str, topic: str, points: str, wire: str) -> int:
    """`bench_kafka.ceiling` with its polls and its decode timed as the flow's are."""
    from bench_kafka import ceiling

    from airis.sources import kafka_input, kafka_polls

    clock = _StepClock()
    decode = kafka_input.decode_partitions  # what the ceiling imports when it runs
    kafka_input.decode_partitions = clock.timed("metrics_topic.decode_metrics", decode)
    poll = kafka_polls._PollPartition.next_batch
    read = clock.timed("metrics_topic.read_metrics (next_batch)", poll)
    kafka_polls._PollPartition.next_batch = read
    hours = 0.0  # unused: the topic is given
    ceiling(bootstrap, hours, wire, (topic, int(points)))
    print(json.dumps(clock.totals()))
    return 0


def summary(runs: list[dict], points: int) -> dict:
    """Median over the runs of the main thread's CPU, the garbage collector's and each step's
    (CPU and wall seconds, calls, CPU µs per point, share of the main thread's CPU)."""
    main_cpu = statistics.median(r["main_cpu_s"] for r in runs)
    names = {name for r in runs for name in r["steps"]}
    steps = {}
    for name in names:
        cpu, calls, wall = (
            statistics.median(r["steps"].get(name, [0.0, 0, 0.0])[i] for r in runs)
            for i in range(3)
        )
        steps[name] = {"cpu_s": round(cpu, 4), "wall_s": round(wall, 4), "calls": int(calls),
                       "us_per_point": round(cpu / points * 1e6, 4),
                       "share": round(cpu / main_cpu, 4)}  # fmt: skip
    between = statistics.median(
        r["main_cpu_s"] - sum(step[0] for step in r["steps"].values()) for r in runs
    )
    return {
        "main_cpu_s": round(main_cpu, 3),
        "main_us_per_point": round(main_cpu / points * 1e6, 4),
        "gc_s": round(statistics.median(r["gc_s"] for r in runs), 4),
        "bytewax_between_steps_s": round(between, 4),
        "steps": dict(sorted(steps.items(), key=lambda kv: -kv[1]["cpu_s"])),
    }


def print_table(result: dict) -> None:
    wire = result["wire"] + (", two labels a point" if result.get("labels") else "")
    print(f"{wire} flow, store {result['store']}, {result['points']:,} points, "
          f"median of {result['runs']} runs: main thread {result['main_cpu_s']} s CPU "
          f"({result['main_us_per_point']} µs a point), GC {result['gc_s']} s")  # fmt: skip
    _print_steps(result["steps"])
    between = result["bytewax_between_steps_s"]
    print(f"  {between / result['main_cpu_s']:6.1%}  Bytewax between the steps")
    ceiling = result["ceiling"]
    print(f"the ceiling (same topic, in turns): main thread {ceiling['main_cpu_s']} s CPU "
          f"({ceiling['main_us_per_point']} µs a point)")  # fmt: skip
    _print_steps(ceiling["steps"])


def _print_steps(steps: dict) -> None:
    """A line per step that holds at least 0.1 % of the main thread's CPU."""
    for name, step in steps.items():
        if step["share"] >= 0.001:
            print(f"  {step['share']:6.1%} {step['us_per_point']:7.3f} µs/pt "
                  f"{step['calls']:6d} calls {step['wall_s'] - step['cpu_s']:6.3f} s off CPU"
                  f"  {name}")  # fmt: skip


# --- the child: the flow, its callbacks timed --------------------------------------------------


def probed_flow():
    """`build_flow(snapshots=False)` with its callbacks timed (what ``bytewax.run`` runs)."""
    from airis.flows.kafka_metrics import build_flow

    store = os.environ.get(STORE_ENV, "on")
    if store == "off":
        from bench_memory import null_sink  # a sibling script

        flow = build_flow(snapshots=False, store_sink=null_sink())
    else:
        if store == "no-insert":
            _skip_metrics_inserts()
        flow = build_flow(snapshots=False)
    clock = _StepClock()
    clock.time_steps(flow)
    atexit.register(clock.report, Path(os.environ[REPORT_ENV]))
    return flow


class _StepClock:
    """CPU and wall seconds and calls per step, in the main thread (the one worker's)."""

    def __init__(self) -> None:
        self.cpu: collections.Counter[str] = collections.Counter()
        self.wall: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()
        self.gc_s = 0.0
        self._gc_started = 0.0
        self._main = threading.main_thread()
        self._started = time.thread_time()
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, _info: dict) -> None:
        if threading.current_thread() is self._main:
            if phase == "start":
                self._gc_started = time.thread_time()
            else:
                self.gc_s += time.thread_time() - self._gc_started

    def timed(self, name: str, fn):
        cpu, wall, calls = self.cpu, self.wall, self.calls
        clock, now = time.thread_time, time.perf_counter

        def call(*args, **kw):
            started, began = clock(), now()
            try:
                return fn(*args, **kw)
            finally:
                cpu[name] += clock() - started
                wall[name] += now() - began
                calls[name] += 1

        return call

    def time_steps(self, step) -> None:
        """Wrap the callbacks of ``step`` and of every step inside it."""
        for sub in getattr(step, "substeps", None) or ():
            self.time_steps(sub)
        name = getattr(step, "step_id", "?").split(".", 1)[-1]
        for attr in ("mapper", "predicate"):
            if callable(getattr(step, attr, None)):
                object.__setattr__(step, attr, self.timed(name, getattr(step, attr)))
        if callable(getattr(step, "builder", None)):
            object.__setattr__(step, "builder", self._timed_logic(name, step.builder))
        for attr, method in (("source", "next_batch"), ("sink", "write_batch")):
            part = getattr(step, attr, None)
            if part is not None:
                self._time_parts(f"{name} ({method})", part, method)

    def _timed_logic(self, name: str, builder):
        def build(resume_state):
            logic = builder(resume_state)
            for method in ("on_batch", "on_notify", "on_eof", "notify_at"):
                setattr(logic, method, self.timed(name, getattr(logic, method)))
            return logic

        return build

    def _time_parts(self, name: str, source_or_sink, method: str) -> None:
        for maker in ("build", "build_part"):
            make = getattr(source_or_sink, maker, None)
            if make is None:
                continue

            def build(*args, make=make):
                part = make(*args)
                setattr(part, method, self.timed(name, getattr(part, method)))
                return part

            setattr(source_or_sink, maker, build)

    def totals(self) -> dict:
        """The main thread's CPU since this clock started, the GC's in it, and each step's."""
        main_cpu = time.thread_time() - self._started  # called from the main thread
        steps = {name: [cpu, self.calls[name], self.wall[name]] for name, cpu in self.cpu.items()}
        return {"main_cpu_s": main_cpu, "gc_s": self.gc_s, "steps": steps}

    def report(self, path: Path) -> None:
        path.write_text(json.dumps(self.totals()))  # atexit runs in the main thread


def _skip_metrics_inserts() -> None:
    """``--store no-insert``: the embedded store converts ``metrics`` blocks to Arrow as for
    an insert, and does not insert them (every other table is inserted)."""
    from airis.sinks import chdb_store

    insert = chdb_store.ChdbStore._insert

    def convert_only(self, table, columns, data):
        if table != "metrics":
            return insert(self, table, columns, data)
        key = (table, tuple(columns))
        types = self._arrow_types.get(key)
        if types is None:
            types = self._arrow_types[key] = self._column_types(table, key[1])
        for values, arrow in zip(data, types, strict=True):
            chdb_store.arrow_array(values, arrow)
        return None

    chdb_store.ChdbStore._insert = convert_only


if __name__ == "__main__":
    sys.exit(main())
