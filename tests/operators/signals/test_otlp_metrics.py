"""Tests of OtlpMetricPoints: cumulative and delta aggregates → per-interval points."""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from airis.events import AggregatePoint, MetricPoint
from airis.operators.signals.otlp_metrics import (
    DERIVED_LABEL,
    OtlpMetricPoints,
    histogram_quantile,
    is_error,
)
from airis.sources.otlp import decode_metrics

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def sec(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def counter(ts: float, value: float, start: float | None = -1000.0, **extra: Any) -> AggregatePoint:
    fields: dict[str, Any] = {
        "ts": sec(ts),
        "start": None if start is None else sec(start),
        "service": "api",
        "signal": "orders",
        "kind": "sum",
        "temporality": "cumulative",
        "value": value,
    }
    return AggregatePoint(**{**fields, **extra})


def hist(
    ts: float,
    buckets: list[int],
    total: float,
    bounds: tuple[float, ...] = (0.1, 0.2, 0.5),
    signal: str = "http.server.request.duration",
    **extra: Any,
) -> AggregatePoint:
    fields: dict[str, Any] = {
        "ts": sec(ts),
        "start": sec(-1000),
        "service": "api",
        "signal": signal,
        "kind": "histogram",
        "temporality": "cumulative",
        "unit": "s",
        "value": total,
        "count": sum(buckets),
        "bounds": bounds,
        "buckets": tuple(buckets),
    }
    return AggregatePoint(**{**fields, **extra})


def run(points: list[AggregatePoint], **params: Any) -> dict[str, list[tuple[float, float]]]:
    """Derived series: signal → [(seconds after T0, value)], the open slot closed at the end."""
    otlp = OtlpMetricPoints(**params)
    out, refused = otlp.update_many(points)
    assert refused == []
    out += otlp.close_all()
    series: dict[str, list[tuple[float, float]]] = {}
    for p in out:
        assert p.labels == {DERIVED_LABEL: "otlp"}
        series.setdefault(p.signal, []).append(((p.ts - T0).total_seconds(), p.value))
    return series


def test_a_cumulative_counter_becomes_a_rate_and_survives_a_reset() -> None:
    values = [100, 150, 250, 30, 90]  # the process restarted between 20 s and 30 s
    series = run([counter(10 * i, v) for i, v in enumerate(values)])
    # The first point only sets the baseline (its start is 1000 s old); then 50/10, 100/10;
    # the reset counts the new value since the restart (30/10), then 60/10.
    assert series == {"orders.rate": [(10, 5.0), (20, 10.0), (30, 3.0), (40, 6.0)]}


def test_a_changed_start_time_is_a_reset_over_the_time_since_the_new_start() -> None:
    points = [counter(0, 500), counter(10, 600), counter(20, 700, start=15)]
    # At 20 s the counter restarted at 15 s (the value still grew): 700 in 5 s.
    assert run(points)["orders.rate"] == [(10, 10.0), (20, 140.0)]


def test_a_first_point_with_a_recent_start_counts_from_that_start() -> None:
    assert run([counter(10, 50, start=0), counter(20, 80, start=0)])["orders.rate"] == [
        (10, 5.0),
        (20, 3.0),
    ]
    # Without a start time, or with an old one, the first point is only the baseline.
    assert run([counter(10, 50, start=None), counter(20, 80, start=None)])["orders.rate"] == [
        (20, 3.0)
    ]
    old = run([counter(10, 50, start=0), counter(20, 80, start=0)], first_interval_seconds=5)
    assert old["orders.rate"] == [(20, 3.0)]


def test_delta_temporality_is_taken_as_is() -> None:
    points = [
        counter(10, 20, start=0, temporality="delta"),
        counter(20, 40, start=10, temporality="delta"),
        counter(30, 10, start=None, temporality="delta"),  # no start: since the last point
    ]
    assert run(points)["orders.rate"] == [(10, 2.0), (20, 4.0), (30, 1.0)]


def test_histogram_quantiles_match_numpy_on_a_known_sample() -> None:
    rng = random.Random(42)
    bounds = tuple(round(0.001 * i, 3) for i in range(1, 400))  # 1 ms buckets up to 0.4 s
    sample = [rng.lognormvariate(-3.0, 0.4) for _ in range(20_000)]
    buckets = [0] * (len(bounds) + 1)
    for x in sample:
        buckets[np.searchsorted(bounds, x)] += 1  # (b[i-1], b[i]]: the first bound >= x
    total = float(sum(sample))
    empty = [0] * len(buckets)
    series = run(
        [
            hist(0, empty, 0.0, bounds, "job.seconds"),
            hist(10, buckets, total, bounds, "job.seconds"),
        ]
    )
    for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        [(_, derived)] = series[f"job.seconds.{name}"]
        assert derived == pytest.approx(np.quantile(sample, q), abs=0.001)  # one bucket
    assert series["job.seconds.mean"] == [(10, pytest.approx(np.mean(sample)))]
    assert series["job.seconds.rate"] == [(10, 2000.0)]


def test_histogram_quantile_interpolates_as_prometheus_does() -> None:
    assert histogram_quantile(0.5, (1.0, 2.0, 4.0), [0, 0, 10, 0]) == 3.0
    assert histogram_quantile(0.25, (1.0, 2.0), [10, 10, 0]) == 0.5  # first bucket from 0
    assert histogram_quantile(0.99, (1.0, 2.0), [1, 1, 98]) == 2.0  # +Inf bucket
    assert histogram_quantile(0.5, (-1.0, 2.0), [10, 0, 0]) == -1.0  # first bucket below 0
    assert histogram_quantile(0.5, (1.0,), [0, 0]) is None


def test_exponential_histograms_from_otlp_give_quantiles_near_numpy() -> None:
    rng = random.Random(42)
    sample = [rng.lognormvariate(2.0, 0.5) for _ in range(5000)]
    scale = 4  # base 2 ** (1 / 16): buckets about 4.4 % wide
    base = 2 ** (2**-scale)
    indexes = [int(np.ceil(np.log(x) / np.log(base))) - 1 for x in sample]
    offset = min(indexes)
    counts = np.bincount(np.array(indexes) - offset).tolist()
    messages = []
    for tick, (n, total) in enumerate([(0, 0.0), (len(sample), sum(sample))]):
        request = ExportMetricsServiceRequest()
        rm = request.resource_metrics.add()
        rm.resource.attributes.append(
            KeyValue(key="service.name", value=AnyValue(string_value="api"))
        )
        metric = rm.scope_metrics.add().metrics.add(name="payload.kib")
        metric.exponential_histogram.aggregation_temporality = 1  # delta
        dp = metric.exponential_histogram.data_points.add(
            time_unix_nano=int((sec(10 * tick) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
            * 10**9,
            start_time_unix_nano=int(
                (sec(10 * tick - 10) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
            )
            * 10**9,
            count=n,
            sum=total,
            scale=scale,
        )
        dp.positive.offset = offset
        dp.positive.bucket_counts.extend(counts if n else [])
        messages.append(request.SerializeToString())
    points = [p for m in messages for p in decode_metrics(m, "otlp_proto").events]
    series = run(points)
    for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        [(_, derived)] = series[f"payload.kib.{name}"]
        assert derived == pytest.approx(np.quantile(sample, q), rel=0.045)
    assert series["payload.kib.rate"] == [(0, 0.0), (10, 500.0)]


def test_semantic_conventions_become_the_simulators_request_signals() -> None:
    bounds = (0.05, 0.1, 0.5)
    ok = {"http.response.status_code": "200"}
    failed = {"http.response.status_code": "503"}
    rpc_ok = {"rpc.grpc.status_code": "0"}
    rpc_failed = {"rpc.grpc.status_code": "14"}
    points = [
        hist(0, [0, 0, 0, 0], 0.0, bounds, labels=ok),
        hist(0, [0, 0, 0, 0], 0.0, bounds, labels=failed),
        hist(0, [0, 0, 0], 0.0, (50.0, 100.0), "rpc.server.duration", unit="", labels=rpc_ok),
        hist(0, [0, 0, 0], 0.0, (50.0, 100.0), "rpc.server.duration", unit="", labels=rpc_failed),
        hist(10, [60, 20, 0, 0], 4.0, bounds, labels=ok),
        hist(10, [0, 0, 10, 0], 3.0, bounds, labels=failed),
        hist(10, [0, 10, 0], 600.0, (50.0, 100.0), "rpc.server.duration", unit="", labels=rpc_ok),
        hist(10, [0, 0, 0], 0.0, (50.0, 100.0), "rpc.server.duration", unit="", labels=rpc_failed),
    ]
    series = run(points)
    assert set(series) == {
        "request_rate",
        "latency_p50",
        "latency_p95",
        "latency_p99",
        "error_rate",
    }
    assert series["request_rate"][-1] == (10, 10.0)  # 100 requests in 10 s
    assert series["error_rate"][-1] == (10, 0.1)  # the 503s; gRPC status 14 had none
    # Seconds and milliseconds merged in milliseconds: ranks 50 → 60 of 60 in (0, 50] ms.
    assert series["latency_p50"][-1] == (10, pytest.approx(50 * 50 / 60))
    # 95 → the 10 slow 503s in (100, 500] ms: 100 + 400 * (95 - 90) / 10.
    assert series["latency_p95"][-1] == (10, pytest.approx(300.0))


def test_error_attributes_of_the_conventions() -> None:
    assert is_error({"http.status_code": "500"})
    assert is_error({"error.type": "timeout"})
    assert is_error({"rpc.grpc.status_code": "2"})
    assert not is_error({"http.response.status_code": "404"})
    assert not is_error({"http.response.status_code": "abc"})


def test_instances_reporting_at_different_moments_add_up() -> None:
    a = {"service.instance.id": "a"}
    b = {"service.instance.id": "b"}
    points = []
    for i in range(6):
        points.append(counter(10 * i + 1, 100 * i, labels=a))  # 10/s
        points.append(counter(10 * i + 6, 300 * i, labels=b))  # 30/s
    rates = [value for _ts, value in run(points)["orders.rate"]]
    assert rates == [40.0] * 5


def test_a_signal_is_emitted_only_for_slots_in_which_it_changed() -> None:
    points = [counter(0, 0), counter(60, 600)]  # exported once a minute
    other = [counter(30, 5, signal="ticks"), counter(40, 6, signal="ticks")]
    series = run(sorted([*points, *other], key=lambda p: p.ts))
    assert series == {"ticks.rate": [(40, 0.1)], "orders.rate": [(60, 10.0)]}


def test_old_duplicate_and_over_the_cap_points_are_refused_with_a_reason() -> None:
    otlp = OtlpMetricPoints(max_series=1)
    _, refused = otlp.update_many(
        [counter(10, 5), counter(20, 6), counter(20, 6), counter(15, 5), counter(30, 1, signal="b")]
    )
    assert [(p.ts, why.split(" (")[0].split(":")[0]) for p, why in refused] == [
        (sec(20), "not newer than the series' last point"),
        (sec(15), "not newer than the series' last point"),
        (sec(30), "series cap reached"),
    ]
    assert otlp.refused == 3


def test_idle_series_are_evicted() -> None:
    otlp = OtlpMetricPoints(idle_seconds=60)
    otlp.update_many([counter(0, 1), counter(10, 2, signal="b"), counter(20, 3, signal="b")])
    otlp.update_many([counter(70, 4, signal="b"), counter(80, 5, signal="b")])
    assert otlp.evicted == 1
    assert [key[0] for key in otlp._series] == ["b"]


def test_a_rescaled_exponential_histogram_keeps_rate_and_mean() -> None:
    first = hist(0, [1, 2, 3, 4, 0], 10.0, (1.0, 2.0, 4.0, 8.0), signal="x")
    # Downscaled: bounds merge pairwise; the earlier counts move onto them exactly.
    second = hist(10, [3, 9, 0], 30.0, (2.0, 8.0), signal="x")
    series = run([first, second])
    assert series["x.rate"] == [(10, pytest.approx(0.2))]
    assert series["x.mean"] == [(10, 10.0)]
    # Earlier (1, 2, 3, 4) on (2, 8] → (3, 7, 0): the interval added (0, 2, 0).
    assert series["x.p50"] == [(10, 5.0)]


def test_the_state_pickles_and_resumes() -> None:
    otlp = OtlpMetricPoints()
    otlp.update_many([counter(0, 0), counter(10, 100)])
    restored = pickle.loads(pickle.dumps(otlp))
    out, _ = restored.update_many([counter(20, 300)])
    out += restored.close_all()
    assert [(p.ts, p.value) for p in out] == [(sec(10), 10.0), (sec(20), 20.0)]
    assert all(isinstance(p, MetricPoint) for p in out)
