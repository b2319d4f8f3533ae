"""`batch_by_key`: what the detection exchange moves, one keyed batch per key and input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from airis.batches import MetricBatch
from airis.events import MetricPoint
from airis.flows.detection import batch_by_key
from airis.signals import LOG_SIGNALS

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _point(i: int, service: str, signal: str) -> MetricPoint:
    return MetricPoint(ts=T0 + timedelta(seconds=i), service=service, signal=signal, value=i)


def _per_key(keyed: list[tuple[str, MetricBatch]]) -> dict[str, list[MetricPoint]]:
    out: dict[str, list[MetricPoint]] = {}
    for key, batch in keyed:
        assert batch.key == key
        out.setdefault(key, []).extend(batch.points())
    return out


def test_decoded_columns_and_points_give_the_same_batches_as_points_alone() -> None:
    api_1 = [_point(0, "api", "cpu"), _point(1, "api", "mem")]
    api_2 = [_point(2, "api", "cpu")]
    db = [_point(0, "db", "cpu")]
    web = [_point(0, "web", "cpu"), _point(1, "web", LOG_SIGNALS[0])]  # a log signal: own key
    items = [MetricBatch.from_points("api", api_1), *db, MetricBatch.from_points("api", api_2),
             MetricBatch.from_points("web", web)]  # fmt: skip
    before = REGISTRY.get_sample_value("airis_keyed_batches_total") or 0.0
    keyed = batch_by_key(items)
    assert REGISTRY.get_sample_value("airis_keyed_batches_total") - before == 4
    assert sorted(k for k, _ in keyed) == ["api", "db", "web", "web/logs"]  # api's two: one
    assert _per_key(keyed) == _per_key(batch_by_key([*api_1, *db, *api_2, *web]))
