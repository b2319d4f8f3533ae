"""Building `MetricPoint` objects without pydantic's validation when that changes nothing.

Validating a point with pydantic costs about as much as everything else a flow does to decode
it. `valid_point_fields` is an exact pre-check: for the inputs it accepts (UTC datetimes,
strings, finite floats, dicts of strings) `MetricPoint.model_validate` would accept the same
fields and keep them unchanged, so `construct_point` may build the point directly. Anything it
declines goes through pydantic, which decides and says why.
``tests/sources/otlp/test_fast_path_and_sniffing.py`` proves the equivalence with hypothesis.

>>> raw = b'{"ts": "2026-01-01T00:00:00Z", "service": "api", "signal": "cpu", "value": 2.5}'
>>> point_from_json(raw) == MetricPoint.model_validate_json(raw)
True
>>> point_from_json(b'{"ts": "2026-01-01T00:00:00Z", "service": "api", "signal": "cpu",'
...                 b' "value": "2.5"}') is None  # a string value: pydantic decides
True
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from airis.batches import MetricBatch
from airis.events import MAX_LABELS, MAX_TS, MIN_TS, NAME_PATTERN, MetricPoint, constructed

__all__ = [
    "FAST_CONSTRUCT",
    "PointColumns",
    "batches_from_json",
    "construct_point",
    "fields_from_json",
    "point_from_fields",
    "point_from_json",
    "valid_point_fields",
]

MAX_LABEL_VALUE = 1024
_NAME_CACHE_MAX = 8192
_TS_CACHE_MAX = 4096


# Validating a MetricPoint costs about as much as all the rest of decoding it, so points whose
# fields pass the exact checks below are built without pydantic's validation. The verdict of
# `valid_point_fields` equals the model's for the inputs we give it (UTC datetimes, strings,
# floats, dicts of strings): tests/sources/otlp/test_fast_path_and_sniffing.py proves that
# with hypothesis. Anything it declines goes through `MetricPoint.model_validate`, which
# decides and gives the reason.

_SURROGATES = re.compile("[\ud800-\udfff]")  # pydantic refuses strings with lone surrogates
_KNOWN_NAMES: set[str] = set()  # names already checked; cleared when full
_SEEN_TIMESTAMPS: dict[str, datetime] = {}  # timestamps already parsed; cleared when full
_POINT_FIELDS = ("ts", "service", "signal", "value", "labels")
_JSON_KEYS = frozenset(_POINT_FIELDS)
# Building without validation is what `model_construct` does; it is only right for a plain
# model (no extras allowed, no post-init hook, not a root model).
FAST_CONSTRUCT = (
    tuple(MetricPoint.model_fields) == _POINT_FIELDS
    and MetricPoint.model_config.get("extra") != "allow"
    and not MetricPoint.__pydantic_post_init__
    and not MetricPoint.__pydantic_root_model__
)


def _is_name(value: object) -> bool:
    if type(value) is not str:
        return False
    if value in _KNOWN_NAMES:
        return True
    if NAME_PATTERN.fullmatch(value) is None:
        return False
    if len(_KNOWN_NAMES) >= _NAME_CACHE_MAX:
        _KNOWN_NAMES.clear()
    _KNOWN_NAMES.add(value)
    return True


def valid_point_fields(
    ts: object, service: object, signal: object, value: object, labels: object
) -> bool:
    """Whether `MetricPoint.model_validate` accepts these fields and keeps them unchanged."""
    if not _valid_stamp(ts):
        return False
    if not (type(value) is float and math.isfinite(value)):
        return False
    known = _KNOWN_NAMES
    if not (type(service) is str and (service in known or _is_name(service))):
        return False
    if not (type(signal) is str and (signal in known or _is_name(signal))):
        return False
    return type(labels) is dict and (not labels or _valid_labels(labels))


def _valid_stamp(ts: object) -> bool:
    return type(ts) is datetime and ts.tzinfo is UTC and MIN_TS <= ts < MAX_TS


def _valid_labels(labels: dict) -> bool:
    if len(labels) > MAX_LABELS:
        return False
    known = _KNOWN_NAMES
    # One loop with the checks inline, not all(<generator>): this runs for every point.
    for key, text in labels.items():
        if not (
            type(key) is str
            and (key in known or _is_name(key))
            and type(text) is str
            and len(text) <= MAX_LABEL_VALUE
            and (text.isascii() or _SURROGATES.search(text) is None)
        ):
            return False
    return True


def construct_point(fields: dict[str, Any], fields_set: set[str] | None = None) -> MetricPoint:
    """A MetricPoint from fields `valid_point_fields` accepted, as `model_construct` builds
    one but without its per-field bookkeeping (four times faster).

    ``fields`` must hold every field, in the model's order; ``fields_set`` names those the
    input gave explicitly (default: all of them).
    """
    return constructed(MetricPoint, fields, fields_set or set(_POINT_FIELDS))


#: ISO 8601 in UTC that `datetime.fromisoformat` and pydantic read identically.
_UTC_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|\+00:00)")


def point_from_json(raw: bytes) -> MetricPoint | None:
    """The point in ``raw`` (one JSON event) if the fast path can vouch for it, else None.

    None means "ask pydantic" (``MetricPoint.model_validate_json``): it is also what
    malformed JSON, unexpected keys or a non-UTC timestamp get.
    """
    parsed = fields_from_json(raw)
    if parsed is None:
        return None
    ts, service, signal, value, labels, given = parsed
    ordered = {"ts": ts, "service": service, "signal": signal, "value": value, "labels": labels}
    return construct_point(ordered, set(given))


class _JsonPoint(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """Our JSON metric event as decoded in C: the types checked, unknown keys refused. The
    timestamp stays text (`_utc_timestamp` decides, as for any event), and an integer value
    stays an integer (the fast path takes floats only: pydantic decides for the rest).

    Not tracked by the garbage collector (``gc=False``): a poll decodes thousands at once,
    each would count towards the next collection, and strings, numbers and a dict of
    strings can make no reference cycle (`benchmarks/bench_per_call.py` times both)."""

    ts: str
    service: str
    signal: str
    value: float | int
    labels: dict[str, str] | msgspec.UnsetType = msgspec.UNSET


_DECODE_POINT = msgspec.json.Decoder(_JsonPoint).decode
_GIVEN = ("ts", "service", "signal", "value")


def fields_from_json(
    raw: bytes,
) -> tuple[datetime, str, str, float, dict, tuple[str, ...]] | None:
    """``(ts, service, signal, value, labels, the fields given)`` of the point in ``raw`` if
    the fast path can vouch for it (as `point_from_json`), else None: the fields without the
    model, for a decoder that builds columns."""
    if not FAST_CONSTRUCT:
        return None
    try:
        event = _DECODE_POINT(raw)
    except msgspec.DecodeError:  # malformed, a wrong type, a missing or unknown key
        return None
    ts = _utc_timestamp(event.ts)
    if ts is None:
        return None
    labels, given = event.labels, _GIVEN
    if labels is msgspec.UNSET:
        labels = {}
    else:
        given = (*_GIVEN, "labels")
    if not valid_point_fields(ts, event.service, event.signal, event.value, labels):
        return None
    return ts, event.service, event.signal, event.value, labels, given  # type: ignore[return-value]


class _JsonPointOfPoll(_JsonPoint, forbid_unknown_fields=True, gc=False):
    """`_JsonPoint` with its labels left as their JSON text: a poll's points mostly repeat a
    few label sets, and each distinct text is decoded and checked once (`batches_from_json`)."""

    labels: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET  # type: ignore[assignment]


_DECODE_POINTS = msgspec.json.Decoder(list[_JsonPointOfPoll]).decode
_DECODE_LABELS = msgspec.json.Decoder(dict[str, str]).decode
# The decoder makes a string per name per event. A batch outlives its poll (the store buffers
# it), and a string per point that survives among the poll's freed events and timestamps (one
# size of block) scatters the allocator's next blocks over many half-used pools: decoding the
# next poll then cost a quarter more in the flow than alone (`bench_flow_steps.py`). The
# batches hold one string per distinct name instead.
_intern = sys.intern


def batches_from_json(
    values: Sequence[bytes | None], limit: datetime, max_bytes: int, refuse: bytes = b""
) -> list[MetricBatch] | None:
    """The points of ``values`` (one JSON event each, as `fields_from_json` reads them), as a
    `MetricBatch` per service in order of first point, if the fast path vouches for every
    one of them, none is stamped after ``limit``, no value is longer than ``max_bytes`` and
    none holds ``refuse`` (if given); else None (decode them one by one).

    One decoding call for all of them and checks per distinct timestamp and name: most of a
    poll of single-point messages shares a few of each. An integer value becomes the float
    that `MetricPoint` validation makes of it.

    >>> raw = [b'{"ts":"2026-01-01T00:00:00Z","service":"api","signal":"cpu","value":0.5}',
    ...        b'{"ts":"2026-01-01T00:00:00Z","service":"db","signal":"cpu","value":0.7}']
    >>> [(b.key, b.value) for b in batches_from_json(raw, MAX_TS, 4096)]
    [('api', (0.5,)), ('db', (0.7,))]
    >>> batches_from_json([*raw, b'{"ts":"2026-01-01T00:00:00Z","value":1}'], MAX_TS, 4096)
    >>> batches_from_json([*raw, None], MAX_TS, 4096)
    """
    raw = [value for value in values if type(value) is bytes]
    if not FAST_CONSTRUCT or len(raw) != len(values):
        return None
    if any(value[:1] != b"{" or len(value) > max_bytes for value in raw):
        return None
    joined = b"[" + b",".join(raw) + b"]"
    if refuse and refuse in joined:
        return None
    try:  # a value starting with "{" that is not one whole event fails here, or the count does
        events = _DECODE_POINTS(joined)
    except msgspec.DecodeError:
        return None
    if len(events) != len(values):
        return None
    stamps: dict[str, datetime] = {}
    for text in {event.ts for event in events}:
        ts = _utc_timestamp(text)
        if ts is None or not _valid_stamp(ts) or ts > limit:
            return None
        stamps[text] = ts
    by_service: dict[str, list[_JsonPoint]] = {}
    # A poll's points with the same labels' text share one dict, decoded and checked once: a
    # dict of strings per point would outlive the poll as names did (see `_intern`).
    shared: dict[bytes, dict[str, str]] = {}
    labelled = whole = False
    for event in events:
        if type(event.value) is not float:
            whole = True  # an integer: pydantic takes it as its float, and so do we below
        if (raw := event.labels) is not msgspec.UNSET:
            text = bytes(raw)
            if (labels := shared.get(text)) is None:
                try:
                    labels = _DECODE_LABELS(text)
                except msgspec.DecodeError:  # not an object of strings
                    return None
                if labels and not _valid_labels(labels):
                    return None
                shared[text] = labels
            event.labels = labels
            labelled = True
        group = by_service.get(event.service)
        if group is None:
            by_service[event.service] = [event]
        else:
            group.append(event)
    names = {event.signal for event in events}.union(by_service)
    if not all(map(_is_name, names)):
        return None
    out = []
    for service, group in by_service.items():
        try:
            value = tuple([float(e.value) if whole else e.value for e in group])
        except OverflowError:  # an integer beyond any float: pydantic says why
            return None
        if not all(map(math.isfinite, value)):
            return None
        ts = tuple([stamps[event.ts] for event in group])
        signals = tuple([_intern(event.signal) for event in group])
        labels = _labels_of(group) if labelled else ()
        key = _intern(service)
        out.append(MetricBatch(key, key, ts, signals, value, labels))
    return out


def _labels_of(events: list[_JsonPoint]) -> tuple[dict[str, str], ...]:
    """Each event's labels (``{}`` where it gives none), or ``()`` if none has any, as
    `PointColumns` gives them."""
    labels = tuple([{} if e.labels is msgspec.UNSET else e.labels for e in events])
    return labels if any(labels) else ()


def _utc_timestamp(text: object) -> datetime | None:
    """The UTC datetime of an ISO 8601 string `_UTC_ISO` accepts, else None. A scrape stamps
    many points alike: the strings already seen skip the pattern and the parsing."""
    if type(text) is not str:
        return None
    ts = _SEEN_TIMESTAMPS.get(text)
    if ts is not None:
        return ts
    if _UTC_ISO.fullmatch(text) is None:
        return None
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:  # e.g. month 13: pydantic words the reason
        return None
    if len(_SEEN_TIMESTAMPS) >= _TS_CACHE_MAX:
        _SEEN_TIMESTAMPS.clear()
    _SEEN_TIMESTAMPS[text] = ts
    return ts


def point_from_fields(fields: dict[str, Any]) -> MetricPoint | None:
    """The point of an event dict whose ``ts`` is already a UTC datetime, or None (ask pydantic).

    >>> from datetime import UTC, datetime
    >>> point_from_fields({"ts": datetime(2026, 1, 1, tzinfo=UTC), "service": "api",
    ...                    "signal": "cpu", "value": 1.0}).value
    1.0
    """
    valid = fields_from_dict(fields)
    if valid is None:
        return None
    ts, service, signal, value, labels = valid
    ordered = {"ts": ts, "service": service, "signal": signal, "value": value, "labels": labels}
    return construct_point(ordered, set(fields))


def fields_from_dict(fields: dict[str, Any]) -> tuple[datetime, str, str, float, dict] | None:
    """``(ts, service, signal, value, labels)`` of an event dict `point_from_fields` accepts,
    else None: the fields without the model, for a decoder that builds columns."""
    if not FAST_CONSTRUCT or not fields.keys() <= _JSON_KEYS or len(fields) < 4:
        return None
    ts, service, signal = fields.get("ts"), fields.get("service"), fields.get("signal")
    value, labels = fields.get("value"), fields.get("labels", {})
    if not valid_point_fields(ts, service, signal, value, labels):
        return None
    return ts, service, signal, value, labels  # type: ignore[return-value]


class PointColumns:
    """Points whose fields `valid_point_fields` accepted, per service, as columns, until they
    are flushed as `MetricBatch` items (keyed by the service): a decoder's output without a
    `MetricPoint` per point.

    >>> from datetime import UTC, datetime
    >>> columns = PointColumns()
    >>> columns.add(datetime(2026, 1, 1, tzinfo=UTC), "api", "cpu", 0.5, {})
    >>> out = []
    >>> columns.flush(out)
    >>> out[0].key, out[0].signal, out[0].value, out[0].labels, bool(columns)
    ('api', ('cpu',), (0.5,), (), False)
    """

    __slots__ = ("_by_service",)

    def __init__(self) -> None:
        self._by_service: dict[str, tuple[list, list, list, list]] = {}

    def __bool__(self) -> bool:
        return bool(self._by_service)

    def add(self, ts: datetime, service: str, signal: str, value: float, labels: dict) -> None:
        columns = self._by_service.get(service)
        if columns is None:
            columns = self._by_service[service] = ([], [], [], [])
        columns[0].append(ts)
        columns[1].append(_intern(signal))  # one string per name (see `_intern`)
        columns[2].append(value)
        columns[3].append(labels)

    def extend(
        self, service: str, ts: list[datetime], signal: str, values: list[float], labels: dict
    ) -> None:
        """`add` of many points of one signal, each with a copy of ``labels`` of its own."""
        columns = self._by_service.get(service)
        if columns is None:
            columns = self._by_service[service] = ([], [], [], [])
        columns[0].extend(ts)
        columns[1].extend([signal] * len(ts))
        columns[2].extend(values)
        # No labels (most points): None stands for the `{}` that `flush` makes only if another
        # point of the service has labels; else the column is dropped.
        columns[3].extend([labels.copy() for _ in ts] if labels else [None] * len(ts))

    def flush(self, out: list[Any]) -> None:
        """Append a `MetricBatch` per service (in order of first point) to ``out``; empty."""
        for service, (ts, signal, value, labels) in self._by_service.items():
            kept = tuple([{} if each is None else each for each in labels]) if any(labels) else ()
            out.append(MetricBatch(service, service, tuple(ts), tuple(signal), tuple(value),
                                   kept))  # fmt: skip
        self._by_service = {}
