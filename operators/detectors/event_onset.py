"""Report an event once, at its onset, calibrated by how rarely this series has such onsets.

`EventOnset` wraps `EnsembleDetector` for NAB-style use (`airis detect`): the flow's alert step
wants a score that stays high while a fault lasts, a benchmark like NAB rewards one detection
at the start of each event.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from datetime import datetime, timedelta

from airis.operators.base import SeriesDetector
from airis.operators.detectors.ensemble_detector import EnsembleDetector, seconds_of
from airis.operators.types import Assessment

__all__ = ["EventOnset"]


class EventOnset(SeriesDetector):
    """Report an event once, at its onset, scored by how rarely this series has such onsets.

    **Onsets.** A score is passed on where it is a new maximum of the scores of the last
    ``refractory`` (a duration), or of the last ``max_points`` points if those span less time,
    and no other new maximum came in the ``gap`` points before it; elsewhere the score is 0.
    One incident therefore raises one report, at its start, rather than a run of them while
    the evidence keeps growing; a stronger event inside the refractory period still gets
    through. The rule only looks backwards. Points the inner detector reports as warming
    (score 0) and non-finite values pass unchanged and set no maximum.

    Why both limits: a day is the natural memory of an operator ("the worst thing today"),
    and it is what an hourly series needs (NAB's 350-point refractory silenced the Microsoft
    hourly series for two weeks: 32.5 → 52.3 with a day). A series sampled every minute holds
    1,440 points a day, though, and an event there is over in a few hours: measured on the
    AIOps 2018 KPIs (1- and 5-minute), a day-only refractory lost 9 points (66.1 → 57.0);
    capped at 350 points (5.8 h there) it lost none (66.3).

    **Rarity** (``calibrate``). The detector's tail probability ``p`` is a claim about one
    point, made by a model of the series; a series with recurring bursts (a CPU that jumps to
    100 % a few times a day) makes that claim again and again, a smooth one rarely. What an
    operator needs is how rarely *this* series produces an onset at least as strong: with
    ``n`` earlier onsets scoring at least as high in the ``t`` seconds since the first scored
    point, the rate is ``(n + 1) / (t + interval / p)`` per second — the claim counts as one
    onset seen over the time it promises between two (so a young series reports its
    detector's claim, an old one its own record). Per refractory span (the time within which
    the onset rule lets through one report), that rate is the expected number of such onsets
    ``r``, and the score is ``1 / (1 + r)``: 0.5 for an onset as strong as one that comes
    about once per span, 0.99 for one that comes once in a hundred. Counting per span, not
    per point or per hour, keeps the scores of 1-minute, 5-minute and hourly series on one
    scale (their spans are 5.8 h, a day and a day). The case it was written for: the daily
    bursts of NAB's ``cpu_utilization_asg_misconfiguration`` outranked the rare, modest
    onsets that are ``nyc_taxi``'s anomalies (scores in BENCHMARKS.md). Onsets are counted in
    bins of a quarter decade of tail probability: 81 counts of state.

    Parameters
    ----------
    detector
        The detector whose onsets are reported (default: `EnsembleDetector()`).
    refractory
        How far back a new score must beat every other to count as an onset.
    max_points
        The refractory never spans more points than this.
    gap
        Points after a new maximum during which a further rise is the same onset.
    calibrate
        Score an onset by its rarity in this series (above); otherwise pass the detector's
        score on.

    Examples
    --------
    >>> import random
    >>> from datetime import datetime, timedelta, timezone
    >>> rng = random.Random(42)
    >>> detector = EventOnset()
    >>> t0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> def feed(values, start):
    ...     ts = (t0 + timedelta(minutes=5 * (start + i)) for i in range(len(values)))
    ...     return [detector.update_one(t, v).score for t, v in zip(ts, values)]
    >>> _ = feed([100 + rng.gauss(0, 2) for _ in range(2000)], 0)
    >>> step = feed([160 + rng.gauss(0, 2) for _ in range(20)], 2000)
    >>> step[0] > 0.99, max(step[1:])
    (True, 0.0)
    """

    def __init__(
        self,
        detector: EnsembleDetector | None = None,
        refractory: timedelta = timedelta(hours=24),
        max_points: int = 350,
        gap: int = 5,
        calibrate: bool = True,
    ) -> None:
        self.detector = EnsembleDetector() if detector is None else detector
        self.refractory = refractory
        self.max_points = max_points
        self.gap = gap
        self.calibrate = calibrate
        self._index = 0  # finite points seen
        # (seconds, index, score), scores decreasing: the running maximum of the refractory.
        self._peaks: deque[tuple[float, int, float]] = deque()
        self._last_peak = -(10**9)
        self._first_scored = -1.0  # when the first scored point came (seconds; -1: none yet)
        # Onsets so far by the decimal logarithm of their tail probability, in bins of
        # _RARITY_BIN decades (the last holds all stronger ones): bounded state; against
        # exact counts, `airis eval univariate` moved by at most half a point.
        self._onset_bins = array("I", bytes(4 * _RARITY_BINS))

    def assess_one(self, ts: datetime, value: float) -> Assessment:
        seconds = seconds_of(ts)
        return self._rarity(
            seconds, self._onset(seconds, self.detector.assess_one(ts, value), value)
        )

    def learn_one(self, ts: datetime, value: float) -> None:
        self.update_one(ts, value)

    def update_one(self, ts: datetime, value: float) -> Assessment:
        assessment = self.detector.update_one(ts, value)
        seconds = seconds_of(ts)
        onset = self._onset(seconds, assessment, value)
        if math.isfinite(value):
            self._index += 1
            if assessment.state != "warming":
                if self._first_scored < 0:
                    self._first_scored = seconds
                self._remember(seconds, assessment.score)
        reported = self._rarity(seconds, onset)
        if reported is not onset:
            self._onset_bins[self._bin(onset.score)] += 1
        return reported

    def _expired(self, peak: tuple[float, int, float], seconds: float, index: int) -> bool:
        return (
            peak[0] <= seconds - self.refractory.total_seconds()
            or peak[1] <= index - self.max_points
        )

    def _onset(self, seconds: float, assessment: Assessment, value: float) -> Assessment:
        if assessment.state == "warming" or not math.isfinite(value):
            return assessment
        index, peaks = self._index + 1, self._peaks
        start = 0
        while start < len(peaks) and self._expired(peaks[start], seconds, index):
            start += 1
        new_max = start == len(peaks) or assessment.score > peaks[start][2]
        if new_max and index - self._last_peak > self.gap:
            return assessment
        return _with_score(assessment, 0.0)

    def _rarity(self, seconds: float, onset: Assessment) -> Assessment:
        """The onset scored by its rarity in this series; anything else unchanged."""
        interval = self.detector.interval
        if not self.calibrate or onset.score <= 0.0 or interval <= 0.0:
            return onset
        as_strong = sum(self._onset_bins[self._bin(onset.score) :])
        elapsed = max(0.0, seconds - self._first_scored) if self._first_scored >= 0 else 0.0
        per_second = (as_strong + 1) / (elapsed + interval / self.detector.tail_of(onset.score))
        span = min(self.refractory.total_seconds(), self.max_points * interval)
        return _with_score(onset, 1.0 / (1.0 + per_second * span))

    def _bin(self, score: float) -> int:
        decades = -math.log10(self.detector.tail_of(score))
        return min(_RARITY_BINS - 1, int(decades / _RARITY_BIN))

    def _remember(self, seconds: float, score: float) -> None:
        index, peaks = self._index, self._peaks
        while peaks and self._expired(peaks[0], seconds, index):
            peaks.popleft()
        if not peaks or score > peaks[0][2]:
            self._last_peak = index
        while peaks and peaks[-1][2] <= score:
            peaks.pop()
        peaks.append((seconds, index, score))


#: Width (decades of tail probability) of the bins that count onsets, and how many there are:
#: tails below 1e-20 share the last bin, where the claim outweighs any record anyway.
_RARITY_BIN = 0.25
_RARITY_BINS = 81


def _with_score(a: Assessment, score: float) -> Assessment:
    return Assessment(score, a.observed, a.expected, a.lower, a.upper, a.state, a.component,
                      a.confidence)  # fmt: skip
