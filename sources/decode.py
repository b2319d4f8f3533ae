"""Decoding raw input into validated events, or into dead letters that say why not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from airis.events import MAX_TEXT, DeadLetter, MetricPoint, validation_reason
from airis.sources.fast_point import PointColumns, fields_from_dict, point_from_fields

__all__ = ["dead_letter", "decode_metric", "decode_metrics"]


def decode_metric(raw: Any, source: str) -> MetricPoint | DeadLetter:
    """Validate one metric event given as a dict, JSON text or JSON bytes.

    Never raises: anything that is not a valid `MetricPoint` comes back as a `DeadLetter`
    carrying the original payload and the reason.

    >>> decode_metric({"ts": "2026-01-01T00:00:00Z", "service": "api", "signal": "cpu",
    ...                "value": 12.5}, "demo").value
    12.5
    >>> decode_metric(b'{"service": "api"}', "demo").reason
    'ts: Field required; signal: Field required; value: Field required'
    """
    try:
        if isinstance(raw, dict):
            return point_from_fields(raw) or MetricPoint.model_validate(raw)
        if isinstance(raw, (bytes, bytearray, memoryview, str)):
            return MetricPoint.model_validate_json(raw)
        return dead_letter(raw, source, f"unsupported input type {type(raw).__name__}")
    except ValidationError as exc:
        return dead_letter(raw, source, validation_reason(exc))
    except (ValueError, TypeError, RecursionError) as exc:
        return dead_letter(raw, source, f"undecodable: {exc}")


def decode_metrics(items: list[Any], source: str, passthrough: tuple[type, ...] = ()) -> list[Any]:
    """`decode_metric` over a batch of ``items``, valid event dicts as columns: one
    `MetricBatch` per service and run of them between other items (which are decoded one by
    one, in place; those of a ``passthrough`` type, already validated, stay as they are).

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> out = decode_metrics([{"ts": t, "service": "api", "signal": "cpu", "value": 1.0},
    ...                       {"ts": t, "service": "db", "signal": "cpu", "value": 2.0},
    ...                       {"service": "api"},
    ...                       {"ts": t, "service": "api", "signal": "mem", "value": 3.0}], "demo")
    >>> [(type(e).__name__, getattr(e, "key", None)) for e in out]
    [('MetricBatch', 'api'), ('MetricBatch', 'db'), ('DeadLetter', None), ('MetricBatch', 'api')]
    >>> out[0].signal, out[3].value
    (('cpu',), (3.0,))
    """
    out: list[Any] = []
    pending = PointColumns()
    for item in items:
        fields = fields_from_dict(item) if type(item) is dict else None
        if fields is not None:
            pending.add(*fields)
            continue
        if pending:
            pending.flush(out)
        out.append(item if isinstance(item, passthrough) else decode_metric(item, source))
    if pending:
        pending.flush(out)
    return out


def dead_letter(raw: Any, source: str, reason: str, now: datetime | None = None) -> DeadLetter:
    """A dead letter for ``raw``, its payload kept as text and cut to `MAX_TEXT` characters."""
    payload, cut = _as_text(raw)
    truncated = cut or len(payload) > MAX_TEXT
    return DeadLetter(
        received_at=now or datetime.now(UTC),
        source=source,
        reason=reason[:MAX_TEXT],
        payload=payload[:MAX_TEXT],
        truncated=truncated,
    )


def _as_text(raw: Any) -> tuple[str, bool]:
    """The payload as text, and whether bytes were cut before decoding."""
    if isinstance(raw, str):
        return raw, False
    if isinstance(raw, (bytes, bytearray, memoryview)):
        limit = MAX_TEXT * 4  # a UTF-8 character is at most 4 bytes
        head = bytes(raw[:limit]).decode("utf-8", errors="backslashreplace")
        return head, len(raw) > limit
    try:
        return orjson.dumps(raw, default=str, option=orjson.OPT_NON_STR_KEYS).decode(), False
    except (TypeError, orjson.JSONEncodeError):
        return repr(raw), False
