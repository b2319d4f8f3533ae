"""Decoding Kafka messages: every message gives events or dead letters, never an exception."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from functools import partial

import orjson
import pytest
from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage
from confluent_kafka import KafkaError as ConfluentKafkaError
from hypothesis import given, settings
from hypothesis import strategies as st

from airis import telemetry
from airis.batches import PointRow
from airis.events import MAX_TS, LogRecord, MetricPoint, Span
from airis.sources import otlp
from airis.sources.kafka_input import (
    DEAD_LETTER_VALUE_LIMIT,
    KafkaDeadLetter,
    PartitionEvents,
    decode_messages,
    decode_partitions,
    to_dead_letter_message,
)
from airis.sources.kafka_polls import Poll, RawMessage

T0 = datetime(2026, 11, 25, tzinfo=UTC)


def message(value: bytes | None, offset: int = 0, topic: str = "in") -> KafkaSourceMessage:
    return KafkaSourceMessage(b"key", value, topic, offset=offset, partition=2)


_POINT_JSON = st.fixed_dictionaries(
    {
        "ts": st.sampled_from(
            ["2026-11-25T00:00:00Z", "2026-11-25T00:00:10.5+00:00", "2099-01-01T00:00:00Z", "x"]
        ),
        "service": st.sampled_from(["api", "db", "", "a b"]),
        "signal": st.sampled_from(["cpu", "mem"]),
        "value": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.just("1")),
    },
    optional={"labels": st.dictionaries(st.sampled_from(["k", "zone"]), st.text(max_size=5))},
)


@settings(max_examples=200, deadline=None)
@given(events=st.lists(_POINT_JSON, max_size=8))
def test_rows_hold_the_fields_of_the_points_and_the_same_dead_letters(events) -> None:
    """An unkeyed partition's decoder gives `PointRow` tuples where it would give points."""
    values = [orjson.dumps(e) for e in events]
    arrival = datetime(2026, 11, 25, 1, tzinfo=UTC).timestamp()
    decode = partial(decode_messages, signal="metrics", now=lambda: arrival)
    points = decode([RawMessage(None, v, "in", i, 0) for i, v in enumerate(values)])
    rows = decode([RawMessage(None, v, "in", i, 0) for i, v in enumerate(values)], rows=True)
    assert len(rows) == len(points)
    for row, point in zip(rows, points, strict=True):
        if isinstance(point, MetricPoint):
            assert isinstance(row, (PointRow, MetricPoint))
            assert tuple(row if isinstance(row, PointRow) else _fields(row)) == _fields(point)
        else:
            assert type(row) is type(point) and row.letter.reason == point.letter.reason


def _fields(point: MetricPoint) -> tuple:
    return (point.ts, point.service, point.signal, point.value, point.labels)


@settings(max_examples=300, deadline=None)
@given(value=st.binary(max_size=300), signal=st.sampled_from(["metrics", "logs", "traces"]))
def test_any_bytes_give_events_or_a_dead_letter_never_nothing(value, signal) -> None:
    out = decode_messages([message(value, 7)], signal)
    assert out, "a message vanished without a trace"
    dead = [e for e in out if isinstance(e, KafkaDeadLetter)]
    assert all(d.letter.reason and d.letter.origin == "in/2@7" for d in dead)


def test_a_100_mb_value_is_a_dead_letter_quickly_and_the_topic_copy_is_cut() -> None:
    huge = b"{" + b" " * 100_000_000 + b"}"
    (dead,) = decode_messages([message(huge)], "metrics")
    assert isinstance(dead, KafkaDeadLetter) and "bytes" in dead.letter.reason
    assert dead.letter.truncated and len(dead.letter.payload) <= 64 * 1024
    record = to_dead_letter_message(dead, "dlq")
    assert len(record.value) == DEAD_LETTER_VALUE_LIMIT
    assert dict(record.headers)["airis.truncated.from"] == str(len(huge)).encode()


def test_otlp_logs_and_traces_decode_from_messages() -> None:
    logs = [LogRecord(ts=T0, service="api", severity="ERROR", body="boom")]
    spans = [
        Span(trace_id="a" * 32, span_id="b" * 16, service="api", name="GET /", start=T0,
             duration_ms=12.5, status="error")
    ]  # fmt: skip
    (log,) = decode_messages([message(otlp.encode_logs(logs, "otlp_proto"))], "logs")
    (span,) = decode_messages([message(otlp.encode_traces(spans, "otlp_json"))], "traces")
    assert (log.service, log.severity, log.body) == ("api", "ERROR", "boom")
    assert (span.name, span.status, span.duration_ms) == ("GET /", "error", 12.5)


def test_one_bad_point_in_a_batch_is_an_item_dead_letter_and_the_rest_flow() -> None:
    points = [
        MetricPoint.model_construct(ts=T0 + timedelta(seconds=i), service="api", signal="cpu",
                                    value=v, labels={})
        for i, v in enumerate([1.0, math.inf, 3.0])
    ]  # fmt: skip
    out = decode_messages([message(otlp.encode_metrics(points, "otlp_proto"))], "metrics")
    assert [type(e).__name__ for e in out] == ["MetricPoint", "MetricPoint", "KafkaDeadLetter"]
    assert out[2].scope == "item" and "finite" in out[2].letter.reason


def test_empty_and_missing_values_are_dead_letters() -> None:
    out = decode_messages([message(b""), message(None, 1)], "metrics")
    assert [d.letter.reason for d in out] == ["empty message", "empty message"]


def test_an_event_stamped_far_past_its_arrival_is_a_dead_letter_not_an_event() -> None:
    arrival = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
    soon = b'{"ts": "2026-06-01T00:05:00Z", "service": "api", "signal": "cpu", "value": 1}'
    typo = b'{"ts": "2099-06-01T00:00:00Z", "service": "api", "signal": "cpu", "value": 2}'
    out = decode_messages(
        [message(soon, 1), message(typo, 2)], "metrics", max_ahead_seconds=600, now=lambda: arrival
    )
    assert isinstance(out[0], MetricPoint) and out[0].value == 1  # 5 min ahead: clock skew
    dead = out[1]
    assert isinstance(dead, KafkaDeadLetter) and dead.scope == "item"
    assert dead.letter.reason.startswith("ts: 2099-06-01T00:00:00+00:00 is ")
    assert "ahead of its arrival (at most 600 s allowed)" in dead.letter.reason
    assert b'"value":2.0' in dead.value and dead.letter.origin == "in/2@2"


def test_a_span_or_log_line_stamped_far_past_its_arrival_is_a_dead_letter_too() -> None:
    arrival = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
    late = datetime(2099, 6, 1, tzinfo=UTC)
    span = Span(trace_id="a" * 32, span_id="b" * 16, service="api", name="GET /", start=late,
                duration_ms=1.0)  # fmt: skip
    line = LogRecord(ts=late, service="api", body="boom")
    for signal, value in [
        ("traces", otlp.encode_traces([span], "otlp_proto")),
        ("logs", otlp.encode_logs([line], "otlp_proto")),
    ]:
        (dead,) = decode_messages([message(value)], signal, now=lambda: arrival)
        assert isinstance(dead, KafkaDeadLetter) and dead.scope == "item"
        assert dead.letter.reason.startswith("ts: 2099-06-01T00:00:00+00:00 is ")


def test_a_kafka_error_from_our_source_is_a_counted_dead_letter_and_good_messages_go_on() -> None:
    good = b'{"ts": "2026-11-25T00:00:00Z", "service": "api", "signal": "cpu", "value": 1.0}'
    failed = RawMessage(b"k", b"\x00", "in", 8, 2)
    error = KafkaError(ConfluentKafkaError(ConfluentKafkaError._MSG_TIMED_OUT), failed)
    counted = telemetry.DEAD_LETTERS.labels(source="in", reason="kafka")
    before = counted._value.get()
    out = decode_messages([error, RawMessage(None, good, "in", 9, 2)], "metrics")
    dead, point = out
    assert isinstance(dead, KafkaDeadLetter) and dead.letter.reason.startswith("kafka error:")
    assert (dead.letter.origin, dead.key, dead.value) == ("in/2@8", b"k", b"\x00")
    assert isinstance(point, MetricPoint) and point.value == 1.0
    assert counted._value.get() == before + 1


_KINDS = [
    b'{"ts": "2026-11-25T00:00:00Z", "service": "api", "signal": "cpu", "value": 1.5}',
    b'{"ts": "2026-11-25T00:00:10Z", "service": "db", "signal": "disk", "value": 2,'
    b' "labels": {"mount": "/"}}',
    b'{"ts": "2026-11-25T00:00:00Z", "service": "api", "signal": "cpu", "value": "2.5"}',
    b'{"ts": "2099-01-01T00:00:00Z", "service": "api", "signal": "cpu", "value": 3.0}',
    b'{"ts": "2026-11-25T00:00:00+02:00", "service": "api", "signal": "cpu", "value": 4.0}',
    b'{"ts": "2026-11-25T00:00:00Z", "service": "a b", "signal": "cpu", "value": 5.0}',
    b'{"resourceMetrics": []}',
    b'{"ts": "2026-11-25T00:00:00Z", "service": "api"',
    b"\x0a\x00",
    b"",
    # Kinds for `batches_from_json`, which decodes a whole poll at once: good ones...
    b'{"ts":"2026-11-25T00:00:10+00:00","service":"db","signal":"cpu","value":-0.5}',
    b'{"ts": "2026-11-25T00:00:10Z", "service": "db", "signal": "disk", "value": 2.0,'
    b' "labels": {"mount": "/"}}',
    b'{"ts": "2026-11-25T00:00:20Z", "service": "api", "signal": "mem", "value": 1.0,'
    b' "labels": {}}',
    # ...and what must not pass for one event: two in one message, a message that would
    # close another's object, a space first, a value too large for a float, no value, a bad
    # label key, a label that reads like OTLP to the sniffing.
    b'{"ts": "2026-11-25T00:00:00Z", "service": "api", "signal": "cpu", "value": 1.0},'
    b'{"ts": "2026-11-25T00:00:00Z", "service": "db", "signal": "cpu", "value": 1.0}',
    b'"signal": "cpu", "value": 1.0}',
    b' {"ts": "2026-11-25T00:00:00Z", "service": "api", "signal": "cpu", "value": 6.0}',
    b'{"ts": "2026-11-25T00:00:00Z", "service": "api", "signal": "cpu", "value": 1e999}',
    b'{"ts": "2026-11-25T00:00:00Z", "service": "api", "signal": "cpu", "value": null}',
    b'{"ts": "2026-11-25T00:00:00Z", "service": "api", "signal": "cpu", "value": 7.0,'
    b' "labels": {"a b": "x"}}',
    b'{"ts": "2026-11-25T00:00:00Z", "service": "api", "signal": "cpu", "value": 8.0,'
    b' "labels": {"k": "\\"resource"}}',
]


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.integers(), st.integers(-(10**400), 10**400)))
def test_an_integer_value_of_a_poll_decoded_at_once_is_the_float_pydantic_makes_of_it(
    value: int,
) -> None:
    from airis.sources.fast_point import batches_from_json

    raw = b'{"ts":"2026-11-25T00:00:00Z","service":"api","signal":"cpu","value":%d}' % value
    batches = batches_from_json([raw], datetime(2026, 11, 26, tzinfo=UTC), 4096)
    try:
        expected = MetricPoint.model_validate_json(raw).value
    except ValueError:  # beyond any float: dead-lettered one by one, with pydantic's reason
        assert batches is None
        return
    assert batches is not None
    (got,) = batches[0].value
    assert type(got) is float and got == expected


def test_a_poll_decoded_at_once_keeps_one_string_per_distinct_name() -> None:
    """A batch outlives its poll: a string per point would stay among the poll's freed
    blocks and slow the next poll's decoding (`sources/fast_point.py`)."""
    from airis.sources.fast_point import batches_from_json

    raw = [b'{"ts":"2026-11-25T00:00:00Z","service":"api","signal":"%s","value":1.0}' % name
           for name in (b"cpu", b"mem", b"cpu", b"mem", b"cpu")]  # fmt: skip
    again = batches_from_json(raw[:1], MAX_TS, 4096)
    (batch,) = batches_from_json(raw, MAX_TS, 4096)
    assert len({id(name) for name in batch.signal}) == 2
    assert batch.signal[0] is again[0].signal[0] and batch.key is again[0].key


def test_a_poll_decoded_at_once_keeps_one_dict_per_distinct_labels() -> None:
    """Points with equal labels share one dict (checked once); others keep their own."""
    from airis.sources.fast_point import batches_from_json

    raw = [b'{"ts":"2026-11-25T00:00:00Z","service":"api","signal":"cpu","value":1.0,'
           b'"labels":%s}' % labels
           for labels in (b'{"host":"a"}', b'{"host":"b"}', b'{"host":"a"}', b"{}",
                          b'{"host":"a","zone":"1"}', b'{"zone":"1","host":"a"}')]  # fmt: skip
    (batch,) = batches_from_json(raw, MAX_TS, 4096)
    assert [dict(labels) for labels in batch.labels] == [
        {"host": "a"}, {"host": "b"}, {"host": "a"}, {}, {"host": "a", "zone": "1"},
        {"zone": "1", "host": "a"},
    ]  # fmt: skip
    assert batch.labels[0] is batch.labels[2] and batch.labels[1] is not batch.labels[0]
    assert batch.labels[4] is not batch.labels[5]  # another order: its own dict, the same labels
    for bad in (b'{"k":1}', b"null", b'["k"]', b'{"k":{"a":"b"}}'):  # pydantic says why
        event = raw[0].replace(b'{"host":"a"}', bad)
        assert batches_from_json([raw[0], event], MAX_TS, 4096) is None


#: The kinds above that `batches_from_json` takes as they are (the last one too, unless told to
#: refuse what reads like OTLP JSON).
_RESOURCE_LABEL = len(_KINDS) - 1
_WHOLE_POLL_KINDS = [0, 1, 10, 11, 12, _RESOURCE_LABEL]


@settings(max_examples=100, deadline=None)
@given(
    good=st.lists(st.sampled_from(_WHOLE_POLL_KINDS), min_size=1, max_size=12),
    bad=st.sampled_from([k for k in range(len(_KINDS)) if k not in _WHOLE_POLL_KINDS]),
    at=st.integers(0, 12),
)
def test_a_poll_of_our_events_is_decoded_at_once_unless_one_message_is_not_one(
    good, bad, at
) -> None:
    """`batches_from_json` takes a poll whose every message is one event the fast path vouches
    for, and refuses the whole poll for any one message that is not (then they are decoded
    one by one: the tests around this one prove that this gives the same items)."""
    from airis.sources.fast_point import batches_from_json

    limit = datetime(2026, 11, 25, 0, 10, tzinfo=UTC)
    values = [_KINDS[k] for k in good]
    batches = batches_from_json(values, limit, 4096)
    assert batches is not None
    expected = [MetricPoint.model_validate_json(v) for v in values]
    by_service = {p.service: [q for q in expected if q.service == p.service] for p in expected}
    assert [b.key for b in batches] == list(by_service)
    assert [list(b.points()) for b in batches] == list(by_service.values())
    assert all(type(value) is float for b in batches for value in b.value)
    assert batches_from_json([*values[:at], _KINDS[bad], *values[at:]], limit, 4096) is None
    assert batches_from_json(values, limit, max(map(len, values)) - 1) is None
    assert batches_from_json(values, limit, 4096, b'"service"') is None
    otlp_like = batches_from_json(values, limit, 4096, b'"resource')
    assert (otlp_like is None) == (_RESOURCE_LABEL in good)


@settings(max_examples=200, deadline=None)
@given(kinds=st.lists(st.integers(0, len(_KINDS) - 1), max_size=12))
def test_the_inline_json_path_decodes_as_the_general_way(kinds) -> None:
    """`decode_messages` decodes our JSON metric events inline; `_decode_one` and
    `_reject_ahead` are the general way every message can take. Same items, same order."""
    from airis.sources.kafka_input import _decode_one, _reject_ahead

    arrival = datetime(2026, 11, 25, tzinfo=UTC)
    limit = arrival + timedelta(seconds=600)
    messages = [message(_KINDS[k], i) for i, k in enumerate(kinds)]
    inline = decode_messages(messages, "metrics", max_ahead_seconds=600,
                             now=lambda: arrival.timestamp())  # fmt: skip
    general: list = []
    for m in messages:
        first = len(general)
        _decode_one(m, "metrics", "auto", general)
        _reject_ahead(m, "metrics", general, first, arrival, limit)

    def comparable(item):  # dead letters carry their time of receipt
        if isinstance(item, KafkaDeadLetter):
            return (item.letter.reason, item.letter.origin, item.value, item.scope)
        return item

    assert [comparable(e) for e in inline] == [comparable(e) for e in general]


@settings(max_examples=200, deadline=None)
@given(kinds=st.lists(st.integers(0, len(_KINDS) - 1), max_size=12))
def test_columns_hold_the_same_points_in_order_between_the_other_items(kinds) -> None:
    """With ``columns``, the fast path's points come as per-service `MetricBatch` items,
    flushed before any other item: expanded, the same items in the same order."""
    from airis.batches import MetricBatch

    arrival = datetime(2026, 11, 25, tzinfo=UTC)
    messages = [message(_KINDS[k], i) for i, k in enumerate(kinds)]

    def decode(columns: bool) -> list:
        return decode_messages(messages, "metrics", max_ahead_seconds=600,
                               now=lambda: arrival.timestamp(), columns=columns)  # fmt: skip

    def comparable(item):
        if isinstance(item, KafkaDeadLetter):
            return [(item.letter.reason, item.letter.origin, item.value, item.scope)]
        if isinstance(item, MetricBatch):
            assert item.key == item.service and len(item) > 0
            return [p.model_dump() for p in item.points()]
        return [item.model_dump()]

    def by_service_between_others(items: list) -> list:
        """Runs of points between other items, as per-service lists (the order columns keep)."""
        runs: list = [[]]
        for item in items:
            if isinstance(item, MetricPoint | MetricBatch):
                runs[-1].extend(comparable(item))
            else:
                runs += [comparable(item), []]
        return [sorted(r, key=lambda p: p["service"]) if r and "service" in r[0] else r
                for r in runs]  # fmt: skip

    plain, columns = decode(False), decode(True)
    assert by_service_between_others(columns) == by_service_between_others(plain)
    if 0 in kinds:  # a plain JSON point the fast path vouches for
        assert any(isinstance(e, MetricBatch) for e in columns)


def test_an_unkeyed_partition_s_events_carry_when_their_message_was_produced() -> None:
    # The partition alignment bounds a partition's disorder by production time (issue 13):
    # each event, a batch's several points included, gets its own message's time; dead
    # letters take none; a keyed partition needs none.
    points = [
        MetricPoint.model_construct(ts=T0 + timedelta(seconds=i), service="api", signal="cpu",
                                    value=v, labels={})
        for i, v in enumerate([1.0, math.inf, 3.0])
    ]  # fmt: skip
    batch = otlp.encode_metrics(points, "otlp_proto")
    one = b'{"ts": "2026-11-25T00:00:09Z", "service": "api", "signal": "cpu", "value": 4}'
    unkeyed = [
        RawMessage(None, batch, "in", 0, 1, 100.0),
        RawMessage(None, b"?", "in", 1, 1, 101.0),
        RawMessage(None, one, "in", 2, 1, 102.5),
        RawMessage(None, one, "in", 3, 1, None),
    ]
    dead, polled = decode_partitions(unkeyed, "metrics")[-2:]
    assert isinstance(dead, KafkaDeadLetter) and isinstance(polled, PartitionEvents)
    assert [e.value for _, e in polled.events] == [1.0, 3.0, 4.0, 4.0]
    assert polled.produced == [100.0, 100.0, 102.5, None]
    stamped = KafkaSourceMessage(None, one, "in", offset=4, partition=1, timestamp=(1, 7_000))
    assert decode_partitions([stamped], "metrics")[0].produced == [7.0]
    keyed = [RawMessage(b"api", one, "in", 0, 1, 100.0)]
    assert decode_partitions(keyed, "metrics")[0].produced is None


def _as_poll(messages: list[RawMessage], errors: dict[int, str]) -> Poll:
    return Poll(
        "in", 1, [m.key for m in messages], [m.value for m in messages],
        [m.offset for m in messages], [m.timestamp for m in messages], errors,
    )  # fmt: skip


@pytest.mark.parametrize("keyed", [True, False])
def test_a_poll_of_columns_decodes_as_its_messages_would(keyed: bool) -> None:
    """What our Kafka source yields (one `Poll` per poll, no object per message) against the
    same messages one by one: the same events, dead letters and produced times."""
    one = b'{"ts": "2026-11-25T00:00:09Z", "service": "api", "signal": "cpu", "value": 4}'
    other = one.replace(b"cpu", b"mem")
    points = [MetricPoint(ts=T0, service="db", signal="cpu", value=2.0)]
    values = [one, b"?", otlp.encode_metrics(points, "otlp_proto"), None, other, one]
    messages = [
        RawMessage(b"k" if keyed else None, v, "in", i, 1, 100.0 + i) for i, v in enumerate(values)
    ]
    failed = messages[3]
    expected_in = [*messages[:3], KafkaError("broker gone", failed), *messages[4:]]
    expected = decode_partitions(expected_in, "metrics", now=lambda: T0.timestamp())
    got = decode_partitions(
        [_as_poll(messages, {3: "broker gone"})], "metrics", now=lambda: T0.timestamp()
    )

    def comparable(items: list) -> list:
        return [
            (type(i).__name__, i.letter.reason, i.offset)
            if isinstance(i, KafkaDeadLetter)
            else (i.partition, i.keyed, [(t, repr(e)) for t, e in i.events], i.produced)
            for i in items
        ]

    assert comparable(got) == comparable(expected)
    assert [type(i).__name__ for i in got].count("KafkaDeadLetter") == 2


_OTLP_VALUES = [1.0, -2.5, math.inf, 0.0]
_OTLP_TIMES = [T0, T0 + timedelta(seconds=10), datetime(2099, 1, 1, tzinfo=UTC)]


@settings(max_examples=150, deadline=None)
@given(
    messages=st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["api", "db", "a b"]),
                st.sampled_from(["cpu", "mem"]),
                st.integers(0, len(_OTLP_VALUES) - 1),
                st.integers(0, len(_OTLP_TIMES) - 1),
                st.sampled_from([{}, {"mount": "/"}]),
            ),
            min_size=1,
            max_size=8,
        ),
        max_size=4,
    ),
    encoding=st.sampled_from(["otlp_proto", "otlp_json"]),
)
def test_otlp_points_as_columns_are_the_points_and_dead_letters_of_the_plain_way(
    messages, encoding
) -> None:
    """An OTLP message's points as per-service `MetricBatch` items (issue 13: no object per
    point): expanded, the same points per service in the same order, the same dead letters
    (points that are not finite, not valid names or too far ahead of arrival)."""
    from airis.batches import MetricBatch

    arrival = datetime(2026, 11, 25, 1, tzinfo=UTC)
    raw = []
    for i, points in enumerate(messages):
        batch = [MetricPoint.model_construct(ts=_OTLP_TIMES[t], service=s, signal=g,
                                             value=_OTLP_VALUES[v], labels=labels)
                 for s, g, v, t, labels in points]  # fmt: skip
        raw.append(message(otlp.encode_metrics(batch, encoding), i))

    def decode(columns: bool) -> tuple[dict, list]:
        out = decode_messages(raw, "metrics", max_ahead_seconds=600,
                              now=lambda: arrival.timestamp(), columns=columns)  # fmt: skip
        points: dict[str, list] = {}
        dead = []
        for item in out:
            if isinstance(item, KafkaDeadLetter):
                dead.append((item.letter.reason, item.letter.origin, item.value, item.scope))
                continue
            expanded = item.points() if isinstance(item, MetricBatch) else [item]
            for p in expanded:
                points.setdefault(p.service, []).append(p.model_dump())
        return points, sorted(dead)

    plain, columns = decode(False), decode(True)
    assert columns == plain
    assert sum(map(len, plain[0].values())) + len(plain[1]) >= sum(map(len, messages))


@pytest.mark.parametrize("topics", [["a"] * 5, ["a", "b", "a", "a", "b"], ["b"] + ["a"] * 4])
def test_events_read_are_counted_per_topic(topics: list[str]) -> None:
    def read(topic: str) -> float:
        return telemetry.EVENTS_IN.labels(source=topic)._value.get()

    before = {topic: read(topic) for topic in set(topics)}
    good = b'{"ts": "2026-11-25T00:00:00Z", "service": "api", "signal": "cpu", "value": 1}'
    out = decode_messages(
        [message(good, i, topic) for i, topic in enumerate(topics)], "metrics", columns=True,
        now=lambda: T0.timestamp(),
    )  # fmt: skip
    assert sum(len(batch) for batch in out) == len(topics)  # the fast path: one batch
    for topic in set(topics):
        assert read(topic) - before[topic] == topics.count(topic)
