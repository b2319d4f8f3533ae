"""Per-point cost of the metrics flow's detection steps, in one process, without Kafka.

`detect_and_alert` with the default settings (detection and windows, the model step with no
production version registered, capacity planning, alerts, incidents) runs under Bytewax on
one simulated day (15 services × 8 signals every 10 s, 1,036,800 points), its input already
decoded into one `MetricBatch` per service and poll, as the Kafka source's decoding hands it
on. Two poll sizes: 8 ticks (64 points a service: the small polls of a flow that keeps up with
a tailed topic) and 125 ticks (1,000 points a service: one OTLP message, and about what a
service's batch holds when the flow reads a filled JSON topic, `bench_kafka.py`'s (b): one
batch per 1,180 points on 2026-12-07). The outputs go nowhere. What it measures is everything
after decoding: the broker's and the machine's noise in `bench_kafka.py`'s whole flow hide
differences of a few per cent.

Run: ``.venv/bin/python benchmarks/bench_detection_flow.py [hours, default 24]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_memory import null_sink  # a sibling script, by path

from airis.batches import MetricBatch
from airis.flows.detection import detect_and_alert, detection_configs
from airis.settings import Settings
from airis.sources.simulator import recent_simulation

POLL_TICKS = (8, 125)
#: An hour of ticks run first, unmeasured.
WARM_UP_TICKS = 360


def main() -> None:
    hours = float(sys.argv[1]) if len(sys.argv) > 1 else 24.0
    ticks = list(recent_simulation(hours, 7).ticks())
    run(as_polls(ticks[:WARM_UP_TICKS], POLL_TICKS[0]))  # numba's caches load, imports settle
    for per_poll in POLL_TICKS:
        polls = as_polls(ticks, per_poll)
        points = sum(len(batch) for poll in polls for batch in poll)
        seconds = run(polls)
        print(
            f"detection steps (detect_and_alert, {per_poll} ticks a poll, one process): "
            f"{seconds / points * 1e6:.2f} us/point ({points / seconds:,.0f} points/s, "
            f"{points:,} points in {seconds:.2f} s)",
            flush=True,
        )


def as_polls(ticks: list[list[dict]], per_poll: int) -> list[list[MetricBatch]]:
    """Every ``per_poll`` ticks as one `MetricBatch` per service (in order of first point)."""
    polls: list[list[MetricBatch]] = []
    for first in range(0, len(ticks), per_poll):
        columns: dict[str, tuple[list, list, list]] = {}
        for tick in ticks[first : first + per_poll]:
            for event in tick:
                ts, signal, value = columns.setdefault(event["service"], ([], [], []))
                stamp = event["ts"]
                ts.append(stamp if isinstance(stamp, datetime) else datetime.fromisoformat(stamp))
                signal.append(event["signal"])
                value.append(float(event["value"]))
        polls.append(
            [MetricBatch(s, s, tuple(t), tuple(n), tuple(v)) for s, (t, n, v) in columns.items()]
        )
    return polls


def run(polls: list[list[MetricBatch]]) -> float:
    """Seconds to run the detection steps over ``polls`` (one Bytewax batch each)."""
    with tempfile.TemporaryDirectory(prefix="airis-bench-") as models:  # none registered
        flow = Dataflow("bench_detection")
        batches = [batch for poll in polls for batch in poll]
        source = op.input("in", flow, TestingSource(batches, batch_size=len(polls[0])))
        settings = Settings(model_dir=Path(models))
        detected = detect_and_alert("detect", source, **detection_configs(settings))
        everything = op.merge(
            "all", detected.anomalies, detected.alerts, detected.late, detected.incidents,
            detected.candidates, detected.store_only,
        )  # fmt: skip
        op.output("drop", everything, null_sink())
        started = time.perf_counter()
        run_main(flow)
        return time.perf_counter() - started


if __name__ == "__main__":
    main()
