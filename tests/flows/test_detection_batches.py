"""`batch_by_key`: what the detection exchange moves, one keyed batch per key and input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from airis.batches import MetricBatch, unbatched
from airis.events import MetricPoint
from airis.flows.detection import batch_by_key
from airis.operators.signals.otlp_metrics import DERIVED_LABEL
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


@st.composite
def _inputs(draw: st.DrawFn) -> list[MetricBatch | MetricPoint]:
    """A decoder's output: batches of one service (labelled or not) and points, interleaved;
    in some inputs points with keys of their own (a log signal, a point derived from an OTLP
    aggregate: not its empty label)."""
    signals, labels = ["cpu", "mem"], [{}, {"host": "a"}, {"host": "b", "zone": "1"}, {}]
    if draw(st.booleans()):
        signals.append(LOG_SIGNALS[0])
        labels += [{DERIVED_LABEL: "http.duration"}, {DERIVED_LABEL: ""}]
    items: list[MetricBatch | MetricPoint] = []
    for i in range(draw(st.integers(1, 6))):
        service = draw(st.sampled_from(["api", "db"]))
        points = [
            MetricPoint(
                ts=T0 + timedelta(seconds=i * 10 + k),
                service=service,
                signal=draw(st.sampled_from(signals)),
                value=k,
                labels=draw(st.sampled_from(labels)),
            )
            for k in range(draw(st.integers(1, 4)))
        ]
        items += [MetricBatch.from_points(service, points)] if draw(st.booleans()) else points
    return items


@settings(max_examples=200, deadline=None)
@given(items=_inputs())
def test_labelled_batches_keep_their_points_keys_and_labels_as_points_alone_do(items) -> None:
    """Labelled batches stay columns unless a point has a key of its own: the same points
    per key, in the same order, with their labels, as the points given one by one."""
    points = [point for item in items for point in unbatched([item])]
    keyed = batch_by_key(items)
    assert _per_key(keyed) == _per_key(batch_by_key(points))
    for _, batch in keyed:
        assert all(type(labels) is dict for labels in batch.labels)


def test_a_labelled_batch_of_one_service_crosses_as_it_is() -> None:
    points = [MetricPoint(ts=T0, service="api", signal="cpu", value=1.0, labels={"host": "a"}),
              MetricPoint(ts=T0, service="api", signal="mem", value=2.0)]  # fmt: skip
    batch = MetricBatch.from_points("api", points)
    assert batch_by_key([batch])[0][1] is batch
