"""Per-service window accumulation: scored points in, one `ServiceWindow` per closed window out.

The first three functions are the ``builder``/``folder``/``merger`` triple a windowing operator
(Bytewax's ``fold_window``) needs, without importing any engine:

- `new_summaries` starts an empty accumulator, one `SignalSummary` per signal;
- `add_point` folds one `ScoredPoint` in: it keeps, per signal, the point with the highest
  score (ties go to the earlier point) and counts the points. It mutates and returns the
  accumulator, which is what an accumulator is for, and does no allocation beyond one summary;
- `merge_summaries` combines two accumulators (session windows merge; tumbling ones never do).
  The result does not depend on which side is which.

`close_window` then turns a closed window into a `ServiceWindow` and decides which signals were
anomalous. A signal is anomalous when its worst score is at or above ``threshold`` and its
detector is past warm-up; a detector still ``"warming"`` only counts when its score is at or
above ``extreme``, so a cold start does not page anyone unless the deviation is enormous.

Each `Anomaly` records the detector as ``"{detector}/{component}"``, e.g. ``"robust/seasonal"``:
``detector`` names the model the flow runs (an argument, since the assessment does not know it)
and ``component`` is the part of it that produced the score (the assessment's ``component``).
Its id is ``event_id(service, signal, kind, start)``, so a replayed window yields the same row.

Examples
--------
>>> import random
>>> from datetime import UTC, datetime, timedelta
>>> from airis.events import MetricPoint
>>> from airis.operators.types import Assessment, ScoredPoint
>>> rng = random.Random(42)
>>> start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
>>> acc = new_summaries()
>>> for i in range(5):
...     value = rng.gauss(120.0, 5.0) + (700.0 if i == 3 else 0.0)
...     point = MetricPoint(ts=start + timedelta(seconds=2 * i), service="checkout",
...                         signal="latency_p99", value=value)
...     score = 0.97 if value > 200.0 else 0.1
...     verdict = Assessment(score, value, 120.5, 95.1, 146.0, "recent", "level", 0.9)
...     acc = add_point(acc, ScoredPoint(point, verdict))
>>> acc["latency_p99"].count, acc["latency_p99"].assessment.observed
(5, 823.5...)
>>> window = close_window("checkout", start, start + timedelta(seconds=10), acc,
...                       threshold=0.9, detector="robust")
>>> [(a.signal, a.kind, a.score, a.detector) for a in window.anomalies]
[('latency_p99', 'spike', 0.97, 'robust/level')]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, get_args

import numpy as np
from pydantic import ValidationError

from airis.batches import plain_name, plain_window
from airis.events import (
    Anomaly,
    DetectorState,
    constructed,
    event_id,
    validation_reason,
)
from airis.operators.closed_windows import ClosedWindows
from airis.operators.types import (
    COUNT,
    OFFSET,
    Assessment,
    ScoredPoint,
    ServiceWindow,
    SignalColumns,
    SignalSummary,
    anomalous_cells,
    cells_assessment,
)

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_EXTREME",
    "DEFAULT_THRESHOLD",
    "add_assessment",
    "add_point",
    "close_window",
    "close_windows",
    "merge_summaries",
    "new_summaries",
]

#: Score at or above which a window counts as anomalous (``Settings.anomaly_threshold``).
DEFAULT_THRESHOLD = 0.9
#: Score at or above which even a warming-up detector's verdict counts.
DEFAULT_EXTREME = 0.999
#: Detector name used in `Anomaly.detector` when the flow does not name its model.
DEFAULT_DETECTOR = "airis"


def new_summaries() -> dict[str, SignalSummary]:
    """An empty accumulator: the ``builder`` of a window fold."""
    return {}


def add_point(acc: dict[str, SignalSummary], scored: ScoredPoint) -> dict[str, SignalSummary]:
    """Fold one scored point into ``acc`` (mutated and returned): the ``folder`` of a fold.

    Per signal it keeps the point with the highest score (on a tie, the earlier one) and
    counts every point it was given.
    """
    point = scored.point
    return add_assessment(acc, point.signal, point.ts, scored.assessment)


def add_assessment(
    acc: dict[str, SignalSummary], signal: str, ts: datetime, assessment: Assessment
) -> dict[str, SignalSummary]:
    """`add_point` for a point given as its signal, timestamp and assessment."""
    prev = acc.get(signal)
    if prev is None:
        acc[signal] = SignalSummary(ts, assessment, 1)
    elif _beats(assessment.score, ts, prev):
        acc[signal] = SignalSummary(ts, assessment, prev.count + 1)
    else:
        acc[signal] = SignalSummary(prev.ts, prev.assessment, prev.count + 1)
    return acc


def merge_summaries(
    a: dict[str, SignalSummary], b: dict[str, SignalSummary]
) -> dict[str, SignalSummary]:
    """Combine two accumulators into a new one: the ``merger`` of a fold.

    Counts add up and the worst point wins, with the same tie rule as `add_point`, so the
    order of the arguments does not matter. Neither input is changed.
    """
    out = dict(a)
    for signal, other in b.items():
        mine = out.get(signal)
        if mine is None:
            out[signal] = other
            continue
        worst = other if _beats(other.assessment.score, other.ts, mine) else mine
        out[signal] = SignalSummary(worst.ts, worst.assessment, mine.count + other.count)
    return out


def close_window(
    service: str,
    start: datetime,
    end: datetime,
    summaries: Mapping[str, SignalSummary],
    threshold: float = DEFAULT_THRESHOLD,
    extreme: float = DEFAULT_EXTREME,
    detector: str = DEFAULT_DETECTOR,
) -> ServiceWindow:
    """The `ServiceWindow` of a closed window, with one `Anomaly` per anomalous signal.

    A signal is anomalous when its worst score is ``>= threshold`` and its detector's state
    is not ``"warming"``, or when its worst score is ``>= extreme`` whatever the state.
    Anomalies are sorted by signal name. An assessment that cannot make a valid `Anomaly`
    (a non-finite band, a score outside [0, 1]) is logged as a warning and left out; its
    summary stays in ``signals``.

    Parameters
    ----------
    service
        The window's key.
    start, end
        The window's event-time bounds (timezone-aware).
    summaries
        The window's accumulator, as built by `add_point` (copied, not kept), or the
        `SignalColumns` of `OpenWindows` (kept: nothing changes them).
    threshold
        Score at or above which a signal counts as anomalous.
    extreme
        Score at or above which it counts even while its detector warms up.
    detector
        The name of the detector model, combined with the assessment's component.
    """
    _check_thresholds(threshold, extreme)
    if type(summaries) is SignalColumns:
        flagged = summaries.flagged(threshold, extreme)
        verdict_of = summaries.assessment
    else:
        summaries = dict(summaries)
        flagged = [
            s for s in sorted(summaries) if _counts(summaries[s].assessment, threshold, extreme)
        ]
        verdict_of = lambda signal: summaries[signal].assessment  # noqa: E731
    verdicts = [(signal, verdict_of(signal)) for signal in flagged]
    anomalies = _anomalies(service, start, end, verdicts, detector) if verdicts else ()
    return ServiceWindow(service, start, end, summaries, anomalies)


def close_windows(
    closed: ClosedWindows,
    indices: Sequence[int],
    threshold: float = DEFAULT_THRESHOLD,
    extreme: float = DEFAULT_EXTREME,
    detector: str = DEFAULT_DETECTOR,
) -> dict[int, ServiceWindow]:
    """`close_window` of each window ``indices`` of ``closed`` (by index): the same windows
    and anomalies, with the anomalous signals of all of them found in one pass over their
    cells. What the windowing calls for the windows whose worst score may make anomalies.
    """
    _check_thresholds(threshold, extreme)
    cells = closed.cells[indices]  # window × slot × cell
    counts = anomalous_cells(cells, threshold, extreme)
    counts &= cells[:, :, COUNT] > 0  # a slot without a point keeps an old window's score
    names = closed.names
    by_name = sorted(range(len(names)), key=names.__getitem__)  # each window's in name order
    windows, slots = np.nonzero(counts[:, by_name])
    slots = np.asarray(by_name, dtype=np.intp)[slots]
    rows = cells[windows, slots, :OFFSET].tolist()
    flagged: dict[int, list[tuple[str, Assessment]]] = {}
    components = closed.components
    for window, slot, row in zip(windows.tolist(), slots.tolist(), rows, strict=True):
        flagged.setdefault(window, []).append((names[slot], cells_assessment(row, components)))
    made = {}
    for window, i in enumerate(indices):
        start = closed.start(i)
        end = start + closed.window
        verdicts = flagged.get(window)
        anomalies = _anomalies(closed.service, start, end, verdicts, detector) if verdicts else ()
        made[i] = ServiceWindow(closed.service, start, end, closed.columns(i), anomalies)
    return made


def _check_thresholds(threshold: float, extreme: float) -> None:
    if not 0.0 < threshold <= extreme <= 1.0:
        raise ValueError(
            f"close_window: need 0 < threshold <= extreme <= 1, got threshold={threshold!r}, "
            f"extreme={extreme!r}"
        )


def _anomalies(
    service: str,
    start: datetime,
    end: datetime,
    verdicts: Sequence[tuple[str, Assessment]],
    detector: str,
) -> tuple[Anomaly, ...]:
    """One `Anomaly` per anomalous signal of a window (``verdicts``, by name), made without
    validation where `_surely_valid` vouches for it; one it cannot make is logged and left
    out."""
    anomalies = []
    # What every anomaly of the window shares, worked out once: the start as `event_id`
    # formats a datetime (so the same ids), and whether the bounds and the service fit.
    started = start.isoformat()
    window_fits = plain_window(service, start, end)
    for signal, verdict in verdicts:
        kind = verdict.direction
        fields = {
            "id": event_id(service, signal, kind, started), "service": service,
            "signal": signal, "kind": kind, "window_start": start, "window_end": end,
            "score": verdict.score, "observed": verdict.observed, "expected": verdict.expected,
            "lower": verdict.lower, "upper": verdict.upper, "state": verdict.state,
            "detector": f"{detector}/{verdict.component}" if verdict.component else detector,
        }  # fmt: skip
        if window_fits and _surely_valid(fields):  # a detector's, nearly always: no validation
            anomalies.append(constructed(Anomaly, fields, _ANOMALY_FIELDS))
            continue
        try:  # in doubt, the model validates, and says why not
            anomalies.append(Anomaly(**fields))
        except ValidationError as ex:
            logger.warning(
                "close_window: %s/%s at %s has an unusable assessment, left out: %s",
                service,
                signal,
                start.isoformat(),
                validation_reason(ex),
            )
    return tuple(anomalies)


def _surely_valid(fields: dict[str, Any]) -> bool:
    """Whether `Anomaly` would accept ``fields`` as they are (then it is made without
    validation, at a fraction of the cost), given a window that is `plain_window`."""
    floats = [fields[name] for name in ("score", "observed", "expected", "lower", "upper")]
    return (
        all(type(value) is float and math.isfinite(value) for value in floats)
        and 0.0 <= fields["score"] <= 1.0
        and fields["state"] in _STATES
        and fields["kind"] in ("spike", "dip")
        and type(fields["detector"]) is str
        and plain_name(fields["signal"])
    )


_STATES = frozenset(get_args(DetectorState))
_ANOMALY_FIELDS = set(Anomaly.model_fields)  # shared: a frozen event never changes it


def _counts(verdict: Assessment, threshold: float, extreme: float) -> bool:
    """Whether a signal's worst verdict makes it anomalous (`close_window`)."""
    score = verdict.score
    return score >= extreme or (score >= threshold and verdict.state != "warming")


def _beats(score: float, ts: datetime, incumbent: SignalSummary) -> bool:
    """Whether a point (score, ts) is worse than the incumbent summary's point."""
    best = incumbent.assessment.score
    return score > best or (score == best and ts < incumbent.ts)
