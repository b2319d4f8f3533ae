"""Events as JSON Lines: write them one object per line, replay them in order.

`write_jsonl` encodes each event with orjson: timestamps become ISO 8601 strings ending in
``Z``, numpy scalars and pydantic models are accepted. `read_jsonl` gives every line back in
order, decoded into a dict; a line that is not a JSON object (bad JSON, bad UTF-8, an array,
a bare number) comes back as its raw ``bytes`` so that the flow's validation step can
dead-letter it. Reading never raises on a bad line; only blank lines are skipped. Paths
ending in ``.gz`` are compressed.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

import orjson
from pydantic import BaseModel

logger = logging.getLogger(__name__)

__all__ = ["decode_line", "encode_event", "read_jsonl", "write_jsonl"]

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY
#: Encoded lines collected before each write.
_BATCH_LINES = 4096


def encode_event(event: Mapping[str, Any] | BaseModel) -> bytes:
    """One event as a JSON object, without the trailing newline.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> encode_event({"ts": datetime(2024, 1, 1, tzinfo=UTC), "service": "api", "value": 1.5})
    b'{"ts":"2024-01-01T00:00:00Z","service":"api","value":1.5}'
    """
    return orjson.dumps(event, default=_default, option=_OPTIONS)


def decode_line(line: bytes) -> dict[str, Any] | bytes:
    """The JSON object on ``line``, or ``line`` itself if it is not one (never raises).

    Examples
    --------
    >>> decode_line(b'{"signal": "cpu"}')
    {'signal': 'cpu'}
    >>> decode_line(b'[1, 2]'), decode_line(b'{"broken": ')
    (b'[1, 2]', b'{"broken": ')
    """
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line
    return obj if isinstance(obj, dict) else line


def write_jsonl(
    path: str | os.PathLike[str], events: Iterable[Mapping[str, Any] | BaseModel]
) -> int:
    """Write ``events`` to ``path``, one JSON object per line; returns how many were written.

    The file is replaced. An event that cannot be encoded raises `TypeError` naming its
    position; the lines before it are already written.

    Parameters
    ----------
    path
        Destination; compressed with gzip if it ends in ``.gz``.
    events
        Dicts (e.g. from `airis.sources.simulator.Simulator.points`) or pydantic models.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from datetime import UTC, datetime
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "metrics.jsonl"
    >>> event = {"ts": datetime(2024, 1, 1, tzinfo=UTC), "service": "api", "signal": "cpu",
    ...          "value": 12.5}
    >>> write_jsonl(path, [event, event])
    2
    >>> next(read_jsonl(path))
    {'ts': '2024-01-01T00:00:00Z', 'service': 'api', 'signal': 'cpu', 'value': 12.5}
    """
    count = 0
    with _open(path, "wb") as out:
        batch: list[bytes] = []
        for count, event in enumerate(events, start=1):
            try:
                batch.append(encode_event(event))
            except TypeError as exc:
                out.write(b"".join(line + b"\n" for line in batch))
                raise TypeError(
                    f"write_jsonl({path!s}): event #{count} is not encodable: {exc}"
                ) from exc
            if len(batch) >= _BATCH_LINES:
                out.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            out.write(b"\n".join(batch) + b"\n")
    return count


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any] | bytes]:
    """Replay the lines of ``path`` in order: a dict per JSON object, raw bytes otherwise.

    Line endings (``\\n`` or ``\\r\\n``) are removed; blank lines are skipped. Timestamps stay
    ISO 8601 strings: validation (``airis.events.MetricPoint``) parses them.

    Parameters
    ----------
    path
        Source; read through gzip if it ends in ``.gz``.
    """
    skipped = 0
    with _open(path, "rb") as src:
        for raw in src:
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                skipped += 1
                continue
            yield decode_line(line)
    if skipped:
        logger.debug("read_jsonl(%s): skipped %d blank lines", path, skipped)


def _open(path: str | os.PathLike[str], mode: str) -> IO[bytes]:
    if os.fspath(path).endswith(".gz"):
        return gzip.open(path, mode)  # type: ignore[return-value]
    return open(path, mode)


def _default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump()
    raise TypeError(f"cannot encode {type(obj).__name__}")
