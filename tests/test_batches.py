"""Events as columns (`airis.batches`): the events they hold, in order; and snapshots pickled
before the batches moved from `airis.events` still load."""

from __future__ import annotations

import copyreg
import io
import pickle
from datetime import UTC, datetime, timedelta

from airis.batches import LogBatch, MetricBatch, PickledOnce, PointRow, SpanBatch, unbatched
from airis.events import LogRecord, MetricPoint, Span

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def test_batches_pickled_under_their_former_module_load() -> None:
    row = PointRow(T0, "api", "cpu", 1.5, {})
    batch = MetricBatch.from_points(
        "api", [MetricPoint(ts=T0, service="api", signal="cpu", value=2.0)]
    )
    for state in (row, batch, [row, batch]):
        data = _pickled_as_before(state)  # classes named in plain text lines
        former = data.replace(b"airis.batches", b"airis.events")
        assert former != data
        assert pickle.loads(former) == state
        assert pickle.loads(pickle.dumps(pickle.loads(former))) == state  # and pickle again


def _pickled_as_before(state: object) -> bytes:
    """``state`` pickled (protocol 2) as before `MetricBatch` had a ``__reduce__``: its fields."""

    class AsBefore(pickle.Pickler):
        def reducer_override(self, obj: object) -> object:
            if type(obj) is not MetricBatch:
                return NotImplemented
            fields = [obj.key, obj.service, obj.ts, obj.signal, obj.value, obj.labels]
            return copyreg.__newobj__, (MetricBatch,), fields

    out = io.BytesIO()
    AsBefore(out, protocol=2).dump(state)
    return out.getvalue()


class _CountedPickles(tuple):
    """A column that counts how often it is pickled."""

    pickled = 0

    def __reduce_ex__(self, protocol: object) -> tuple:
        type(self).pickled += 1
        return tuple, (tuple(self),)


def test_a_batch_pickled_twice_pickles_its_columns_once_and_loads_equal() -> None:
    before = _CountedPickles.pickled
    values = _CountedPickles((1.0, 2.5))
    batch = MetricBatch("api", "api", (T0, T0), ("cpu", "mem"), values, ({"a": "1"}, {}))
    first, second = pickle.dumps(batch), pickle.dumps([batch, "again"])
    assert _CountedPickles.pickled == before + 1
    assert pickle.loads(first) == batch
    assert pickle.loads(second) == [batch, "again"]
    assert type(pickle.loads(first).value) is tuple


def _span(i: int, service: str = "api") -> Span:
    return Span(trace_id="a" * 32, span_id=f"{i:016x}", service=service, name="GET /",
                start=T0 + timedelta(seconds=i), duration_ms=float(i),
                attributes={"span.kind": "server"})  # fmt: skip


def test_events_and_batches_of_a_service_become_one_batch_in_order() -> None:
    spans = [_span(i) for i in range(7)]
    items = [spans[0], SpanBatch.from_events(spans[1:3]), spans[3], spans[4],
             SpanBatch.from_events(spans[5:])]  # fmt: skip
    batch = SpanBatch.of(items)
    assert batch == SpanBatch.from_events(spans)
    assert batch.events() == spans and unbatched([batch]) == spans
    assert batch.events([4, 1]) == [spans[4], spans[1]]
    assert SpanBatch.of([batch]) is batch  # nothing copied for a single batch
    assert pickle.loads(pickle.dumps(batch)) == batch


def test_a_batch_s_events_are_the_validated_ones_and_behave_like_them() -> None:
    lines = [LogRecord(ts=T0, service="api", body=f"line {i}", severity="WARN") for i in range(3)]
    batch = LogBatch.from_events(lines)
    assert batch.column("body") == ("line 0", "line 1", "line 2")
    again = batch.events()
    assert again == lines
    assert [e.model_dump() for e in again] == [e.model_dump() for e in lines]
    assert unbatched(["x", batch, "y"]) == ["x", *lines, "y"]


def test_a_pickled_once_list_pickles_its_items_once_and_arrives_as_a_plain_list() -> None:
    before = _CountedPickles.pickled
    items = PickledOnce([_CountedPickles((1.0,)), "b"])
    first, second = pickle.dumps(items), pickle.dumps(("store", items))
    assert _CountedPickles.pickled == before + 1
    assert pickle.loads(first) == [(1.0,), "b"]
    assert type(pickle.loads(first)) is list
    assert pickle.loads(second) == ("store", [(1.0,), "b"])
