"""Kafka benchmarks (d) and (e), run by `benchmarks/bench_kafka.py`: peak memory with 100,000
active series through the flow's detection steps (no Kafka), and where that memory goes.

Each service has 8 signals: by default ``sig0``..``sig7`` (``generic``), which capacity
planning does not forecast, or the simulator's golden signals (``golden``), four of which
(request rate, cpu, memory, disk) it forecasts with a daily profile each.

The flow runs without recovery, built as `airis run` builds it then: its keyed steps take no
snapshots (`airis.flows.snapshots.kept`). Each measurement runs in a child process of its own
(``--memory-child``, ``--memory-by-file-child``), so that its memory is its own.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from airis.signals import SERVICE_SIGNALS  # noqa: E402  (after the path above)


def null_sink():
    from bytewax.outputs import DynamicSink, StatelessSinkPartition

    class Part(StatelessSinkPartition):
        def write_batch(self, items):
            pass

    class Sink(DynamicSink):
        def build(self, step_id, worker_index, worker_count):
            return Part()

    return Sink()


# --- (d) ---------------------------------------------------------------------------------------

SERIES = 100_000
SIGNALS_PER_SERVICE = 8
POINTS_PER_SERIES = 24
#: Each service's signals, by the name of the set.
SIGNAL_SETS = {
    "generic": tuple(f"sig{k}" for k in range(SIGNALS_PER_SERVICE)),
    "golden": SERVICE_SIGNALS,
}


def memory(child: str = "--memory-child", series: int = SERIES, signals: str = "generic") -> dict:
    """Run a memory child in a fresh process so its memory is its own; (d) over ``series``
    active series, each service with the signal set ``signals``."""
    args = [child, str(series)] if child == "--memory-child" else [child]
    args.append(signals)
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{child} exited {done.returncode}: {done.stderr[-2000:]}")
    result = orjson.loads(done.stdout.strip().splitlines()[-1])
    print(f"({'d' if child == '--memory-child' else 'e'}) memory: {result}", flush=True)
    return result


def _series_events(services: int, start: datetime, names: tuple[str, ...], at_end=None):
    """Every series' ``POINTS_PER_SERIES`` points, 2 h apart; ``at_end()`` after the last."""
    for step in range(POINTS_PER_SERIES):
        ts = start + timedelta(hours=2 * step)
        for s in range(services):
            for k, name in enumerate(names):
                yield {
                    "ts": ts,
                    "service": f"svc-{s}",
                    "signal": name,
                    "value": 50.0 + (s + k + step) % 7,
                }
    if at_end is not None:
        at_end()


def _memory_by_file_child(signals: str, services: int = 500) -> None:
    import gc
    import tracemalloc

    from bytewax.testing import TestingSource, run_main

    from airis.flows.metrics_anomaly import build_flow
    from airis.flows.snapshots import kept
    from airis.operators.detectors.detector_bank import DetectorBank
    from airis.settings import Settings

    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    flow = build_flow(TestingSource([], batch_size=1), null_sink(), Settings())  # imports
    del flow
    # The detectors' compiled kernel is typed and loaded once per process, not per series.
    DetectorBank().assess_many(["warm"], [start], [1.0])
    snapshots = []

    def at_end() -> None:  # the flow's state is alive while its source still runs
        gc.collect()
        snapshots.append(tracemalloc.take_snapshot())

    gc.collect()
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    events = _series_events(services, start, SIGNAL_SETS[signals], at_end)
    with kept(False):  # run without recovery, as `airis run` without one: no snapshots
        flow = build_flow(TestingSource(events, batch_size=5000), null_sink(), Settings())
    run_main(flow)
    series = services * SIGNALS_PER_SERVICE
    stats = snapshots[0].compare_to(base, "filename")
    by_file = {
        _short(stat.traceback[0].filename): round(stat.size_diff / series)
        for stat in stats
        if stat.size_diff / series >= 10
    }
    print(orjson.dumps({
        "series": series,
        "signals": signals,
        "bytes_per_series": round(sum(s.size_diff for s in stats) / series),
        "bytes_per_series_by_file": by_file,
    }).decode())  # fmt: skip


def _short(filename: str) -> str:
    for marker in ("site-packages/", str(REPO) + "/", "/lib/python"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def _memory_child(series: int, signals: str) -> None:
    import pickle

    from bytewax.testing import TestingSource, run_main

    from airis.flows.metrics_anomaly import build_flow
    from airis.flows.snapshots import kept
    from airis.operators.detectors.detector_bank import DetectorBank
    from airis.settings import Settings

    services = series // SIGNALS_PER_SERVICE
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    base_rss = _proc_status_kib("VmRSS")

    started = time.perf_counter()
    names = SIGNAL_SETS[signals]
    # The peak while the input is read, and with the end of input, when every service's open
    # windows close at once (a flow that tails its topics never gets there).
    read: list[int] = []
    events = _series_events(services, start, names, lambda: read.append(_proc_status_kib("VmHWM")))
    with kept(False):  # run without recovery, as `airis run` without one: no snapshots
        flow = build_flow(TestingSource(events, batch_size=5000), null_sink(), Settings())
    run_main(flow)
    elapsed = time.perf_counter() - started
    peak_rss = _proc_status_kib("VmHWM")  # the process's peak resident set

    bank = DetectorBank()
    from airis.events import MetricPoint

    for step in range(POINTS_PER_SERIES):
        for k, name in enumerate(names):
            bank.update_one(MetricPoint(ts=start + timedelta(hours=2 * step), service="svc",
                                        signal=name, value=50.0 + (k + step) % 7))  # fmt: skip
    state_bytes = len(pickle.dumps(bank)) / SIGNALS_PER_SERVICE
    # The points above are fewer than a detector's warm-up: measure a series past it too
    # (two days of 5-minute points), which is what a running flow holds for almost every series.
    steady = DetectorBank()
    for step in range(576):
        for k, name in enumerate(names):
            ts = start + timedelta(minutes=5 * step)
            value = 50.0 + (k + step) % 7
            steady.update_one(MetricPoint(ts=ts, service="svc", signal=name, value=value))
    steady_bytes = len(pickle.dumps(steady)) / SIGNALS_PER_SERVICE
    print(orjson.dumps({
        "series": series,
        "signals": signals,
        "points": series * POINTS_PER_SERIES,
        "seconds": round(elapsed, 1),
        "peak_rss_mib": round(peak_rss / 1024),
        "peak_rss_mib_before_end_of_input": round(read[0] / 1024),
        "rss_before_mib": round(base_rss / 1024),
        "rss_growth_mib_per_100k_series": round((peak_rss - base_rss) / 1024 * 100_000 / series),
        "pickled_state_bytes_per_series": round(state_bytes),
        "pickled_state_bytes_per_series_past_warmup": round(steady_bytes),
    }).decode())  # fmt: skip


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--memory-child"] and len(args) == 3 and args[2] in SIGNAL_SETS:
        _memory_child(int(args[1]), args[2])
    elif args[:1] == ["--memory-by-file-child"] and len(args) == 2 and args[1] in SIGNAL_SETS:
        _memory_by_file_child(args[1])
    else:
        sets = "|".join(SIGNAL_SETS)
        sys.exit(
            f"usage: {sys.argv[0]} --memory-child SERIES {{{sets}}}"
            f" | --memory-by-file-child {{{sets}}}"
        )
