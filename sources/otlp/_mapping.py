"""What every walker shares: names, labels, timestamps, ids, OTLP's code tables, the output."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from airis.events import (
    MAX_LABELS,
)
from airis.sources.fast_point import (
    PointColumns,
)
from airis.sources.otlp._types import MAX_NAME, UNKNOWN_SERVICE, Rejected

# --- shared mapping -----------------------------------------------------------------------

_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.:/-]")
_NAME_CACHE: dict[str, str] = {}
_NAME_CACHE_MAX = 8192
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NO_TS = "ts: no timestamp (time_unix_nano and start_time_unix_nano are 0)"
_NO_VALUE_FLAG = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK


def _sanitise(name: str) -> str:
    """``name`` with characters outside our Name pattern replaced by ``_``, cut to 128.

    Names repeat across points, so results are cached (the cache is cleared when full).
    """
    clean = _NAME_CACHE.get(name)
    if clean is None:
        clean = _BAD_NAME_CHARS.sub("_", name)[:MAX_NAME]
        if len(_NAME_CACHE) >= _NAME_CACHE_MAX:
            _NAME_CACHE.clear()
        _NAME_CACHE[name] = clean
    return clean


def _with_suffix(base: str, suffix: str) -> str:
    """A derived signal name; the base is cut so that the suffix always survives."""
    return base[: MAX_NAME - len(suffix)] + suffix if suffix else base


def _service(attrs: dict[str, str]) -> str:
    return _sanitise(attrs.get("service.name") or "") or UNKNOWN_SERVICE


def _text(value: Any) -> str:
    """An attribute value as text: strings as is, anything else as compact JSON."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    return orjson.dumps(value).decode()


def _finite_or_text(value: float) -> float | str:
    """A double ready for JSON: non-finite ones spelled as the protobuf JSON mapping does."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _limit(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        return dict(sorted(labels.items())[:MAX_LABELS])
    return labels


def _ns_to_datetime(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _datetime_to_ns(ts: datetime) -> int:
    return (ts - _EPOCH) // _MICROSECOND * 1000


def _hex_id(raw: bytes) -> str | None:
    """An optional id (log context, parent span): empty or all zeros means none."""
    return raw.hex() if raw.strip(b"\x00") else None


_PEER_KEYS = ("peer.service", "server.address", "net.peer.name")


def _peer_service(attributes: dict[str, str]) -> str | None:
    for key in _PEER_KEYS:
        value = attributes.get(key)
        if value:
            return _sanitise(value)
    return None


#: Timestamps already made, by their nanoseconds: shared by the messages of a process (a
#: message's points share a handful, and so do the services that report at the same
#: instants), emptied when full.
_TIMES: dict[int, datetime] = {}
_TIMES_KEPT = 100_000


class _Out:
    """Events and rejections of one message, and the timestamps made (`_TIMES`)."""

    __slots__ = ("columns", "events", "last_stamps", "rejected", "times")

    def __init__(self, columns: PointColumns | None = None) -> None:
        self.events: list[Any] = []
        self.rejected: list[Rejected] = []
        if len(_TIMES) >= _TIMES_KEPT:
            _TIMES.clear()
        self.times = _TIMES
        self.columns = columns  # points go here instead of `events`, when given
        #: The last times given as bytes (`_Metric.plain_points`) and their timestamps: the
        #: metrics of one resource mostly list the same collection times.
        self.last_stamps: tuple[bytes, list[datetime]] = (b"", [])

    def ts(self, ns: int) -> datetime:
        ts = self.times.get(ns)
        if ts is None:
            ts = self.times[ns] = _ns_to_datetime(ns)
        return ts

    def reject(self, reason: str, item: dict[str, Any]) -> None:
        self.rejected.append(Rejected(reason, item))
