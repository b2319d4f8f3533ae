"""Per-call costs on the flow's hot paths, each way against the one it replaced, in turns.

- a 100,000-row metrics block's timestamp and labels columns into Arrow (`arrow_array` against
  ``pa.array``): what the store's thread holds the GIL for while the flow's thread waits;
- counting a 5,000-message poll's topics (`_topic_counts` against a `Counter`);
- decoding a 5,000-message poll of JSON events (`batches_from_json`'s structs untracked by
  the garbage collector, against tracked: each tracked one counts towards a collection);
- a forecast's 3 points (as a `forecast_batch` of columns against validating every point);
- the alert manager on a quiet window of 8 signals (no other way to compare: its cost alone);
- a batch of log lines' tokens (`tokenise_many`, by the masked line's shape, against the steps
  after the masks run on every line), over 4 hours of the simulator's log lines;
- the same lines' templates (`LogTemplateMiner.add_many` keeping each template's match while
  it stays unchanged, against making every line's match anew);
- capacity exhaustion over the simulated day's memory and disk series in 125-point batches
  (`ExhaustionPredictor`, its buckets in one compiled call, skipping the fits of buckets
  that surely cannot warn, against fitting every bucket);
- an OTLP message's 1,000 timestamps (125 instants) into epoch seconds (`_epoch_seconds`
  keeping them for the later batches that share them, against working them out per batch);
- an OTLP gauge's 125 points (start time, time, double) read from its bytes
  (`_plain_columns` comparing each tag's bytes as one slice, against comparing arrays).

Run: ``.venv/bin/python benchmarks/bench_per_call.py``.
"""

from __future__ import annotations

import time
import timeit
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
from in_turns import in_turns  # a sibling script, by path
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge

from airis.events import ForecastPoint
from airis.operators.alerting.alert_manager import AlertManager
from airis.operators.planning.capacity import ExhaustionPredictor
from airis.operators.planning.events import forecast_batch
from airis.operators.planning.forecaster import Forecast
from airis.operators.planning.service_planner import Plan
from airis.operators.signals import log_tokens
from airis.operators.signals.log_templates import LogTemplateMiner
from airis.operators.types import Assessment, ServiceWindow, SignalSummary
from airis.operators.windowing.windowed_detector import _epoch_seconds
from airis.sinks.chdb_store import arrow_array
from airis.sources import fast_point
from airis.sources.kafka_input import _topic_counts
from airis.sources.otlp import _proto
from airis.sources.simulator import recent_simulation
from airis.sources.simulator.process import simulated_batches

ROWS = 100_000
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def main() -> None:
    stamps = [T0 + timedelta(seconds=150 * (i // 1800)) for i in range(ROWS)]  # a stamp a tick
    distinct = [T0 + timedelta(microseconds=137 * i) for i in range(ROWS)]  # as spans' are
    labels = ({},) * ROWS
    ms, labels_type = pa.timestamp("ms", tz="UTC"), pa.map_(pa.string(), pa.string())
    compare("metrics timestamps, ms per 100,000 rows", 1e3, {
        "pa.array": call(pa.array, stamps, type=ms), "arrow_array": call(arrow_array, stamps, ms),
    })  # fmt: skip
    compare("distinct timestamps, ms per 100,000 rows", 1e3, {
        "pa.array": call(pa.array, distinct, type=ms),
        "arrow_array": call(arrow_array, distinct, ms),
    })  # fmt: skip
    compare("metrics labels, ms per 100,000 rows", 1e3, {
        "pa.array": call(pa.array, labels, type=labels_type),
        "arrow_array": call(arrow_array, labels, labels_type),
    })  # fmt: skip
    topics = ["bench-json"] * 5_000
    compare("topics of a 5,000-message poll, us", 1e6, {
        "Counter": call(Counter, topics), "_topic_counts": call(_topic_counts, topics),
    })  # fmt: skip
    polled = b"[" + b",".join(_JSON_EVENT % (i % 8, i) for i in range(5_000)) + b"]"
    compare("decoding a 5,000-event JSON poll, us", 1e6, {
        "tracked": call(_DECODE_TRACKED, polled),
        "untracked": call(fast_point._DECODE_POINTS, polled),
    })  # fmt: skip
    forecast = Forecast((40.0, 41.0, 42.0), (30.0, 31.0, 32.0), (50.0, 51.0, 52.0), 0.9, True)
    compare("a forecast's 3 points, us", 1e6, {
        "validating each": call(_validated_points, forecast),
        "forecast_batch": call(forecast_batch, "cart", [Plan(T0, 300.0, {"cpu": forecast})]),
    })  # fmt: skip
    print(f"AlertManager.update_one on a quiet window: {_quiet_windows():.2f} us")
    sim = recent_simulation(4.0, 7, datetime(2026, 12, 5, tzinfo=UTC))
    batches = [
        part.column("body") for batch in simulated_batches("logs", sim, 30) for part in batch
    ]
    lines = sum(map(len, batches))
    compare("log lines' tokens, us per line", 1e6 / lines, {
        "every line": call(lambda: [_tokens_of_every_line(b) for b in batches]),
        "tokenise_many": call(lambda: [log_tokens.tokenise_many(b) for b in batches]),
    })  # fmt: skip
    compare("log lines' templates, us per line", 1e6 / lines, {
        "made anew": call(lambda: _mined(batches, keep_matches=False)),
        "kept": call(lambda: _mined(batches, keep_matches=True)),
    })  # fmt: skip
    stamps = [T0 + timedelta(seconds=10 * (i % 125)) for i in range(1_000)]
    compare("a message's 1,000 timestamps as epoch seconds, us", 1e6, {
        "per batch": call(_epoch_seconds_per_batch, stamps),
        "kept": call(_epoch_seconds, stamps),
    })  # fmt: skip
    gauge = _gauge(125)
    compare("an OTLP gauge's 125 points from its bytes, us", 1e6, {
        "tags as arrays": call(_plain_columns_as_arrays, gauge),
        "tags as slices": call(_proto._plain_columns, gauge),
    })  # fmt: skip
    series = _capacity_series()
    points = sum(len(times) for times, _, _ in series)
    compare("capacity exhaustion, us per point", 1e6 / points, {
        "every bucket fitted": call(_predicted, series, _EveryBucketFitted),
        "quiet ones skipped": call(_predicted, series, ExhaustionPredictor),
    })  # fmt: skip


_JSON_EVENT = b'{"ts":"2026-12-01T00:00:00+00:00","service":"cart","signal":"s%d","value":%d.5}'


class _TrackedPoint(fast_point._JsonPoint, gc=True):
    """`_JsonPoint` as before 2026-12-07: tracked by the garbage collector."""


_DECODE_TRACKED = msgspec.json.Decoder(list[_TrackedPoint]).decode


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    return lambda: fn(*args, **kwargs)


def compare(label: str, unit: float, ways: dict[str, Callable[[], Any]], rounds: int = 9) -> None:
    """Each way's median time a call (``unit``: 1e3 for ms, 1e6 for µs), in turns."""

    def timed(fn: Callable[[], Any]) -> Callable[[], float]:
        number = max(1, round(0.05 / max(timeit.timeit(fn, number=1), 1e-7)))  # ~50 ms a round
        return lambda: timeit.timeit(fn, number=number) / number * unit

    medians = in_turns({way: timed(fn) for way, fn in ways.items()}, rounds, warmup=1)
    print(f"{label}: " + ", ".join(f"{way} {median:.2f}" for way, median in medians.items()))


def _validated_points(forecast: Forecast) -> list[ForecastPoint]:
    return [
        ForecastPoint(ts=T0, service="cart", signal="cpu", horizon_seconds=300 * i,
                      forecast=forecast.mean[i - 1], lower=forecast.lower[i - 1],
                      upper=forecast.upper[i - 1], model="interval_forecaster")
        for i in range(1, 4)
    ]  # fmt: skip


def _epoch_seconds_per_batch(stamps: list[datetime]) -> list[float]:
    """`_epoch_seconds` before it kept the stamps for later batches (2026-12-07)."""
    distinct = dict.fromkeys(stamps)
    for ts in distinct:
        distinct[ts] = ts.timestamp()
    return list(map(distinct.__getitem__, stamps))


def _gauge(points: int) -> Any:
    """A Gauge of ``points`` points holding a start time, a time and a double each, as the
    bench's OTLP messages do (`bench_kafka.py`)."""
    gauge, start = Gauge(), 1_764_547_200_000_000_000
    for i in range(points):
        point = gauge.data_points.add(start_time_unix_nano=start, as_double=i / 7)
        point.time_unix_nano = start + (i + 1) * 10**10
    return gauge


def _plain_columns_as_arrays(data: Any) -> tuple[Any, list[float]] | None:
    """`_proto._plain_columns` before it compared slices (2026-12-07)."""
    points = data.data_points
    if not points or points[0].attributes or points[0].exemplars:
        return None
    n, raw = len(points), data.SerializeToString()
    for layout in (_proto._TIME_AND_DOUBLE, _proto._START_TIME_AND_DOUBLE):
        if len(raw) < n * layout.itemsize:
            continue
        records = np.frombuffer(raw, layout, n)
        if (
            (records["head"] == 0x0A | (layout.itemsize - 2) << 8).all()
            and (records["time_tag"] == 0x19).all()
            and (records["value_tag"] == 0x21).all()
            and ("start_tag" not in layout.names or (records["start_tag"] == 0x11).all())
        ):
            return records["time"], records["value"].tolist()
    return None


def _tokens_of_every_line(lines: list[str]) -> list[tuple[str, ...]]:
    """`tokenise_many` before the shapes (2026-12-07): the steps after the masks on every line."""
    masked = "\n".join(log_tokens._masked(line) for line in lines)
    joined = log_tokens._split(masked, log_tokens._UNIT_IN_LINES_RE.sub)
    return [log_tokens._tokens(text) for text in joined.split("\n")]


class _NothingKept(dict):
    def __setitem__(self, key: object, value: object) -> None:
        pass


def _mined(batches: list[list[str]], keep_matches: bool) -> LogTemplateMiner:
    """A fresh miner over every batch (its matches made anew for each line unless kept)."""
    miner = LogTemplateMiner()
    if not keep_matches:
        miner._shown = _NothingKept()
    for lines in batches:
        miner.add_many(lines)
    return miner


class _EveryBucketFitted(ExhaustionPredictor):
    """`ExhaustionPredictor` without skipping the fits of quiet buckets."""

    _screens = False


def _capacity_series() -> list[tuple[list[float], list[datetime], list[float]]]:
    sim = recent_simulation(24.0, 7, datetime(2026, 12, 5, tzinfo=UTC))
    series: dict[tuple[str, str], tuple[list, list, list]] = {}
    for tick in sim.ticks():
        for event in tick:
            if event["signal"] in ("memory", "disk"):
                times, stamps, values = series.setdefault((event["service"], event["signal"]),
                                                          ([], [], []))  # fmt: skip
                times.append(event["ts"].timestamp())
                stamps.append(event["ts"])
                values.append(float(event["value"]))
    return list(series.values())


def _predicted(series: list, kind: type[ExhaustionPredictor]) -> int:
    warnings = 0
    for times, stamps, values in series:
        predictor = kind()
        for i in range(0, len(times), 125):
            warnings += len(predictor.update_many(times[i : i + 125], stamps[i : i + 125],
                                                  values[i : i + 125]))  # fmt: skip
    return warnings


def _quiet_windows(count: int = 20_000) -> float:
    """µs per window, best of 7 runs over ``count`` quiet windows."""
    verdict = Assessment(0.2, 1.0, 1.0, 0.5, 1.5, "recent", "level", 0.9)
    windows = []
    for i in range(count):
        start = T0 + timedelta(seconds=10 * i)
        signals = {f"s{k}": SignalSummary(start, verdict, 1) for k in range(8)}
        windows.append(ServiceWindow("svc", start, start + timedelta(seconds=10), signals, ()))
    best = float("inf")
    for _ in range(7):
        manager, started = AlertManager(), time.perf_counter()
        for window in windows:
            manager.update_one(window)
        best = min(best, time.perf_counter() - started)
    return best / count * 1e6


if __name__ == "__main__":
    main()
