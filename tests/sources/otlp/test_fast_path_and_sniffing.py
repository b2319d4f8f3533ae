"""The fast path for metric points, and telling encodings apart."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from otlp_helpers import DECODERS, T0, finite, microsecond_times, names, valid_payloads
from pydantic import ValidationError

from airis.events import MetricPoint
from airis.sources import fast_point
from airis.sources.otlp import (
    _proto,
    encode_logs,
    encode_metrics,
    encode_traces,
    sniff_encoding,
)

# --- the fast path for metric points ------------------------------------------------------


def around(limit: int, char: str = "x") -> st.SearchStrategy[str]:
    """Strings of ``char`` a little shorter and a little longer than ``limit``."""
    return st.sampled_from([limit - 1, limit, limit + 1]).map(lambda n: char * n)


def mostly(valid: st.SearchStrategy[Any], edge: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid three times in four: many examples are then valid but for one field."""
    return st.integers(0, 3).flatmap(lambda i: edge if i == 0 else valid)


edge_names = (
    st.text(max_size=6)
    | around(128)
    | st.tuples(around(128, "a"), st.sampled_from(["", "-", " ", "\n"])).map("".join)
    | st.sampled_from(["", "a\n", "\na", "é", "a b", "\ud800", "ﬀ", "Ａ"])
)
name_like = mostly(names, edge_names)
edge_label_values = st.one_of(
    around(1024, "v"),
    around(1024, "é"),
    around(1024, "😀"),
    st.sampled_from(["\ud800", "ok\udfff", "\udbff\udc00", "é\ud83d"]),  # lone surrogates
)
valid_labels = st.dictionaries(names, st.text(max_size=10), max_size=4)
label_like = mostly(
    valid_labels,
    # Valid labels but for one entry, or for their number.
    st.tuples(valid_labels, names, edge_label_values).map(lambda t: {**t[0], t[1]: t[2]})
    | st.tuples(valid_labels, edge_names, st.text(max_size=10)).map(lambda t: {**t[0], t[1]: t[2]})
    | st.integers(62, 66).map(lambda n: {f"k{i}": "v" for i in range(n)}),
)
any_time = mostly(
    microsecond_times,
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
    | st.sampled_from(
        [
            datetime(2000, 1, 1, tzinfo=UTC),
            datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(2100, 1, 1, tzinfo=UTC),
            datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        ]
    ),
)
any_value = mostly(finite, st.sampled_from([math.nan, math.inf, -math.inf]) | st.floats())


@given(ts=any_time, service=name_like, signal=name_like, value=any_value, labels=label_like)
@example(ts=T0, service="a", signal="b", value=1.0, labels={"k": "v" * 1025})
@example(ts=T0, service="a", signal="b", value=1.0, labels={"k": "\ud800"})
@example(ts=T0, service="a", signal="b\n", value=1.0, labels={})
@settings(max_examples=600, deadline=None)
def test_fast_check_accepts_exactly_what_the_model_accepts(
    ts: datetime, service: str, signal: str, value: float, labels: dict[str, str]
) -> None:
    fields = {"ts": ts, "service": service, "signal": signal, "value": value, "labels": labels}
    try:
        validated = MetricPoint.model_validate(fields)
    except ValidationError:
        validated = None
    fast = fast_point.valid_point_fields(ts, service, signal, value, labels)
    assert fast == (validated is not None)
    if fast:
        built = fast_point.construct_point(dict(fields))
        assert built == validated
        assert built.model_dump() == validated.model_dump()
        assert built.model_fields_set == validated.model_fields_set
        assert repr(built) == repr(validated)


@given(
    ts=st.datetimes(timezones=st.just(timezone(timedelta(hours=2))))
    | st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 1, 1)),
    value=st.integers(-5, 5),
)
def test_fast_check_declines_what_it_does_not_know(ts: datetime, value: int) -> None:
    # Other time zones, naive datetimes and ints are left to the model (which converts them).
    assert not fast_point.valid_point_fields(ts, "api", "cpu", 1.0, {})
    assert not fast_point.valid_point_fields(T0, "api", "cpu", value, {})


def test_decoded_points_take_the_fast_path() -> None:
    point = MetricPoint(ts=T0, service="api", signal="cpu", value=1.0, labels={"a": "b"})
    request = ExportMetricsServiceRequest.FromString(encode_metrics([point], "otlp_proto"))
    dp = request.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0]
    labels = _proto._proto_attrs(dp.attributes)
    assert fast_point.FAST_CONSTRUCT
    assert fast_point.valid_point_fields(T0, "api", "cpu", 1.0, labels)


# A metric of plain points (a time and a double each), some spoilt by what the fast path
# must leave to the general way: another value, a flag, an attribute, a time out of range.
_SPOILERS = {
    "flag": {"flags": 1},
    "other flag": {"flags": 2},
    "attribute": {"attributes": {"region": "eu"}},
    "int": {"value": ("int", 3)},
    "no value": {"value": ("none", None)},
    "nan": {"value": ("double", math.nan)},
    "inf": {"value": ("double", -math.inf)},
    "no time": {"time_unix_nano": 0},
    "1990": {"time_unix_nano": 631_152_000_000_000_000},
    "2150": {"time_unix_nano": 5_680_281_600_000_000_000},
    "exemplar": {"exemplar": 2.5},
}


@st.composite
def _metric(draw: st.DrawFn) -> tuple[str, str, list[dict[str, Any]]]:
    values = draw(st.lists(st.sampled_from([0.5, -3.25, 1e308, 7.0]), min_size=1, max_size=6))
    points = [
        {
            "time_unix_nano": 1_767_225_600_000_000_000 + i * 10_000_001_500,  # µs truncated
            "start_time_unix_nano": draw(st.sampled_from([0, 1_767_225_500_000_000_000])),
            "flags": 0,
            "value": ("double", value),
            "attributes": {},
        }
        for i, value in enumerate(values)
    ]
    for _ in range(draw(st.integers(0, 2))):
        i = draw(st.integers(0, len(points) - 1))
        points[i] = {**points[i], **_SPOILERS[draw(st.sampled_from(sorted(_SPOILERS)))]}
    kind = draw(st.sampled_from(["gauge", "updown", "counter"]))
    return kind, draw(st.sampled_from(["cpu", "queue.size", "bad name!"])), points


_RESOURCES = st.sampled_from(
    [{"service.name": "api"}, {"service.name": "api", "host.name": "h1"}, {"service.name": "a b"}]
)


def _request(metrics: list[tuple[str, str, list[dict[str, Any]]]], resource: dict) -> bytes:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
    from otlp_helpers import kv, metrics_request

    built = []
    for kind, name, points in metrics:
        metric = m.Metric(name=name)
        data = metric.gauge if kind == "gauge" else metric.sum
        if kind != "gauge":
            data.aggregation_temporality = 2
            data.is_monotonic = kind == "counter"
        for point in points:
            dp = data.data_points.add(
                time_unix_nano=point["time_unix_nano"],
                start_time_unix_nano=point["start_time_unix_nano"],
                flags=point["flags"],
            )
            kind_of_value, value = point["value"]
            if kind_of_value == "double":
                dp.as_double = value
            elif kind_of_value == "int":
                dp.as_int = value
            dp.attributes.extend(kv(k, v) for k, v in point["attributes"].items())
            if "exemplar" in point:
                dp.exemplars.add(
                    time_unix_nano=point["time_unix_nano"], as_double=point["exemplar"]
                )
        built.append(metric)
    return metrics_request(*built, resource=resource).SerializeToString()


@pytest.mark.parametrize(
    ("shortcut", "declined"),
    [("_plain", False), ("_plain_columns", None)],
    ids=["at once against point by point", "from bytes against field by field"],
)
@settings(max_examples=300, deadline=None)
@given(st.lists(_metric(), min_size=1, max_size=3), _RESOURCES)
def test_a_shortcut_for_plain_points_decodes_as_the_way_without_it(
    shortcut: str, declined: object, metrics, resource
) -> None:
    """`_plain` (a gauge's points in one go) against the general way, and `_plain_columns`
    (its points read from the metric's bytes) against reading each point's fields: the same
    columns and rejections, whatever the times, values, flags, attributes, exemplars, names
    and resource labels."""
    from unittest.mock import patch

    from airis.sources.otlp import decode_metrics

    payload = _request(metrics, resource)
    with_it = decode_metrics(payload, "otlp_proto", columns=True)
    with patch.object(_proto, shortcut, return_value=declined):
        without_it = decode_metrics(payload, "otlp_proto", columns=True)
    assert with_it.events == without_it.events
    assert with_it.rejected == without_it.rejected


@pytest.mark.parametrize("start", [0, 1_767_225_500_000_000_000])
def test_plain_columns_read_times_and_doubles_from_bytes(start: int) -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    gauge = m.Gauge()
    times = [1_767_225_600_000_000_000 + i * 10**10 for i in range(3)]
    for ts, value in zip(times, [0.5, -0.0, 1e308], strict=True):
        gauge.data_points.add(time_unix_nano=ts, start_time_unix_nano=start, as_double=value)
    read, values = _proto._plain_columns(gauge)
    assert (read.tolist(), values) == (times, [0.5, -0.0, 1e308])
    total = m.Sum(data_points=gauge.data_points, aggregation_temporality=2)
    read, values = _proto._plain_columns(total)
    assert (read.tolist(), values) == (times, [0.5, -0.0, 1e308])


@pytest.mark.parametrize(
    "spoil",
    [
        lambda dp: setattr(dp, "flags", 1),
        lambda dp: setattr(dp, "as_int", 3),
        lambda dp: setattr(dp, "time_unix_nano", 0),
        lambda dp: dp.attributes.add(key="region").value.__setattr__("string_value", "eu"),
        lambda dp: dp.exemplars.add(as_double=1.0),
        lambda dp: dp.MergeFromString(b"\x78\x01"),  # field 15, unknown to the schema
    ],
    ids=["flag", "int", "no time", "attribute", "exemplar", "unknown field"],
)
@pytest.mark.parametrize("which", [0, 1, 2])
def test_plain_columns_leave_a_point_with_anything_else_to_the_caller(spoil, which) -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    gauge = m.Gauge()
    for i in range(3):
        gauge.data_points.add(time_unix_nano=1_767_225_600_000_000_000 + i, as_double=1.0)
    spoil(gauge.data_points[which])
    assert _proto._plain_columns(gauge) is None


def test_a_gauge_of_plain_points_takes_no_call_per_point() -> None:
    from unittest.mock import patch

    from airis.sources.otlp import _records, decode_metrics

    point = {"time_unix_nano": 1_767_225_600_000_000_000, "start_time_unix_nano": 0, "flags": 0,
             "value": ("double", 0.5), "attributes": {}}  # fmt: skip
    payload = _request([("gauge", "cpu", [point, point])], {"service.name": "api"})
    with patch.object(_records._Metric, "data_point", side_effect=AssertionError("per point")):
        (batch,) = decode_metrics(payload, "otlp_proto", columns=True).events
    assert (batch.service, batch.signal, batch.value, batch.labels) == (
        "api", ("cpu", "cpu"), (0.5, 0.5), ()
    )  # fmt: skip


def test_metrics_that_list_the_same_times_share_their_timestamps_and_others_do_not() -> None:
    """The metrics of a message that list the same times get the timestamps worked out for
    the first; a metric whose times differ in any point gets its own."""
    from airis.sources.otlp import decode_metrics

    def points(shift_ns: int) -> list[dict]:
        t0_ns = 1_767_225_600_000_000_000
        return [{"time_unix_nano": t0_ns + 10**10 * i + (shift_ns if i == 2 else 0),
                 "start_time_unix_nano": 0, "flags": 0, "value": ("double", float(i)),
                 "attributes": {}} for i in range(4)]  # fmt: skip

    metrics = [("gauge", "cpu", points(0)), ("gauge", "memory", points(0)),
               ("gauge", "disk", points(1_000)), ("gauge", "load", points(0))]  # fmt: skip
    (batch,) = decode_metrics(_request(metrics, {"service.name": "api"}), "otlp_proto",
                              columns=True).events  # fmt: skip
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    same = [t0 + timedelta(seconds=10 * i) for i in range(4)]
    moved = [*same[:2], same[2] + timedelta(microseconds=1), same[3]]
    assert list(batch.ts) == same + same + moved + same
    assert batch.signal == ("cpu",) * 4 + ("memory",) * 4 + ("disk",) * 4 + ("load",) * 4


def test_the_timestamps_made_are_shared_by_messages_and_bounded(monkeypatch) -> None:
    """Services that report at the same instants share their timestamps' objects across
    messages; the cache is emptied once it holds `_TIMES_KEPT` (here 10), so a process that
    decodes for months does not keep every instant it saw."""
    from airis.sources.otlp import _mapping, decode_metrics

    monkeypatch.setattr(_mapping, "_TIMES", {})
    monkeypatch.setattr(_mapping, "_TIMES_KEPT", 10)

    def message(first: int) -> bytes:
        points = [{"time_unix_nano": 1_767_225_600_000_000_000 + 10**9 * (first + i),
                   "start_time_unix_nano": 0, "flags": 0, "value": ("double", 0.5),
                   "attributes": {}} for i in range(8)]  # fmt: skip
        return _request([("gauge", "cpu", points)], {"service.name": "api"})

    (one,) = decode_metrics(message(0), "otlp_proto", columns=True).events
    (two,) = decode_metrics(message(0), "otlp_proto", columns=True).events
    assert one.ts == two.ts and all(a is b for a, b in zip(one.ts, two.ts, strict=True))
    for first in range(8, 64, 8):
        (batch,) = decode_metrics(message(first), "otlp_proto", columns=True).events
        assert batch.ts == tuple(
            datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=first + i) for i in range(8)
        )
        assert len(_mapping._TIMES) <= 10 + 8  # what was kept, and one message's own


# --- sniffing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"resourceMetrics":[]}', "otlp_json"),
        (b' \n\t{"resourceLogs": []}', "otlp_json"),
        (b'{"resourceSpans": []}', "otlp_json"),
        (b'{"resource_metrics": []}', "otlp_json"),
        (b'{"ts": "2026-01-01T00:00:00Z", "service": "api", "signal": "cpu", "value": 1}', "json"),
        (b'{"service": "x", "note": "' + b"y" * 5000 + b'", "resourceMetrics": []}', "json"),
        (b"{}", "json"),
        (b"{", "json"),
        (b"", "otlp_proto"),
        (b"   ", "otlp_proto"),
        (b"\x0a\x2c\x0a\x2a", "otlp_proto"),
        (b"[1, 2]", "otlp_proto"),
        (memoryview(b'  {"resourceMetrics": []}'), "otlp_json"),
    ],
)
def test_sniff_encoding(payload: bytes, expected: str) -> None:
    assert sniff_encoding(payload) == expected


@pytest.mark.parametrize("signal", DECODERS)
def test_sniffing_tells_encoded_messages_apart(signal: str) -> None:
    encode = {"metrics": encode_metrics, "logs": encode_logs, "traces": encode_traces}[signal]
    assert sniff_encoding(encode([], "otlp_json")) == "otlp_json"
    assert sniff_encoding(valid_payloads()[signal]) == "otlp_proto"
