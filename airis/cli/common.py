"""What the command modules share: the console, the shared data folder, time arguments and
JSON output."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

__all__ = ["SHARED_DATA", "console", "recent_utc", "utc_time", "write_json"]

#: Progress and errors go to standard error; results (tables) to standard output.
console = Console(stderr=True)

#: The shared evaluation data, beside the repository (`../shared/data`).
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def utc_time(text: str) -> datetime:
    """An ISO 8601 time, in UTC (a time without an offset is taken as UTC)."""
    try:
        ts = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def recent_utc(text: str) -> datetime:
    """An ISO 8601 time in the past 29 days (the stores' shortest TTL, 30 days, drops older
    rows)."""
    ts = utc_time(text)
    now = datetime.now(UTC)
    if not now - timedelta(days=29) <= ts <= now:
        raise argparse.ArgumentTypeError(
            f"{ts.isoformat()} is not within the last 29 days: the store would drop its rows "
            "(a 30-day TTL) or it lies in the future"
        )
    return ts


def write_json(path: Path | None, result: object) -> None:
    """Write ``result`` as indented JSON to ``path`` (nothing when ``path`` is None)."""
    if path is None:
        return
    import orjson

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    console.print(f"→ {path}")
