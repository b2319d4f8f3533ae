"""`airis detect`: stream a univariate CSV series through an online detector.

The default is `EnsembleDetector` (the metrics flow's detector too, in the same configuration)
behind `EventOnset`, which reports a score only at the onset of an event. `airis eval
univariate` measures it on every labelled univariate dataset (BENCHMARKS.md).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from airis.operators.base import SeriesDetector
from airis.operators.detectors.event_onset import EventOnset

__all__ = ["detect_csv", "parse_timestamp"]


def parse_timestamp(text: str) -> datetime:
    """Parse NAB's ``2014-04-01 00:00:00`` (UTC) or any ISO 8601 timestamp."""
    ts = datetime.fromisoformat(text.strip())
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def detect_csv(
    source: Path,
    target: Path,
    make_detector: Callable[[], SeriesDetector] = EventOnset,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Score every row of ``source`` (``timestamp,value``) online; return the row count.

    Each row is scored before the detector learns it, so a score never depends on later
    rows. Writes ``timestamp,value,anomaly_score``, one row per input row, in input order.
    Raises `ValueError` naming the line of the first row that cannot be parsed.
    """
    detector = make_detector()
    rows = 0
    with source.open(newline="") as fin, target.open("w", newline="") as fout:
        reader = csv.reader(fin)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
            raise ValueError(f"{source}: expected a header 'timestamp,value', got {header!r}")
        writer = csv.writer(fout, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for line, row in enumerate(reader, start=2):
            try:
                ts, value = parse_timestamp(row[0]), float(row[1])
            except (IndexError, ValueError) as exc:
                raise ValueError(f"{source}:{line}: cannot parse {row!r}: {exc}") from exc
            # A gap (NaN) is reported as normal and not learned, so it cannot poison the state.
            score = detector.update_one(ts, value).score if math.isfinite(value) else 0.0
            writer.writerow([row[0], row[1], f"{score:.6f}"])
            rows += 1
            if progress is not None and rows % 10_000 == 0:
                progress(rows)
    return rows
