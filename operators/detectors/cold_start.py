"""Evidence that needs no history: what a series may say before its detector has warmed up.

A learned detector must see a series for a while before its scores mean anything
(`EnsembleDetector` reports ``"warming"`` for its first ``settle`` points: 100 minutes of
trace windows a minute apart). Some deviations need no history to be believed, because the
kind of signal sets the scale:

* ``"ratio"`` — an error ratio lives in [0, 1] and a healthy service keeps it near its first
  minutes' value. A rise of ``d`` above that baseline scores ``1 - exp(-d / ratio_scale)``:
  with the default 0.1, a rise of 0.23 scores 0.9, 0 → 0.5 scores 0.993.
* ``"latency"`` — a latency many times its first minutes' median: ``r`` times it scores
  ``1 - r ** -2`` (0.9 at 3.2×, 0.99 at 10×).
* ``"utilisation"`` — a bounded resource in percent (cpu, memory, disk) near saturation:
  from 95 % on, rising linearly from 0.9 at 95 % to 1 at 100 % (0.98 at 99 %).

Only rises count (a dropping error ratio or latency is good news; a falling utilisation is
not saturation). The baseline is the median of the values of the first ``baseline_period``
(at least ``min_points`` of them); before that a ratio's baseline is 0 and a latency scores
nothing. Each verdict carries the rule's stated ``confidence`` (how far such a rule is
trusted without history), which the caller puts beside the score.
"""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta

from airis.operators.types import Assessment

__all__ = ["DEFAULT_CONFIDENCE", "KINDS", "SATURATION", "ColdStartPrior"]

#: The kinds of signal a prior knows, with what the prior believes without history.
KINDS = ("ratio", "latency", "utilisation")
#: How far each kind's rule is trusted without history (stated on every verdict).
DEFAULT_CONFIDENCE: dict[str, float] = {"ratio": 0.8, "latency": 0.6, "utilisation": 0.9}
#: Utilisation (percent) from which a bounded resource counts as saturating: it scores 0.9.
SATURATION = 95.0


class ColdStartPrior:
    """A rule per kind of signal that scores a value without the series' history.

    Parameters
    ----------
    kind
        ``"ratio"``, ``"latency"`` or ``"utilisation"`` (see the module docstring).
    baseline_period
        How long the first minutes last whose median is the baseline.
    min_points
        Values the baseline needs at least (a latency scores nothing before).
    ratio_scale
        Rise of a ratio above its baseline that scores ``1 - 1/e`` (0.63).
    confidence
        The confidence stated on every verdict; ``None``: `DEFAULT_CONFIDENCE` of the kind.

    Examples
    --------
    >>> import random
    >>> from datetime import UTC, datetime, timedelta
    >>> rng = random.Random(42)
    >>> prior = ColdStartPrior("ratio")
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> calm = [prior.update_one(t0 + timedelta(minutes=i), rng.choice([0.0, 0.05]))
    ...         for i in range(10)]
    >>> max(a.score for a in calm) < 0.9
    True
    >>> failing = prior.update_one(t0 + timedelta(minutes=10), 0.5)
    >>> round(failing.score, 3), failing.component, failing.confidence, failing.expected
    (0.993, 'prior/ratio', 0.8, 0.0)
    """

    def __init__(
        self,
        kind: str,
        baseline_period: timedelta = timedelta(minutes=5),
        min_points: int = 3,
        ratio_scale: float = 0.1,
        confidence: float | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"ColdStartPrior: kind must be one of {KINDS}, got {kind!r}")
        if not ratio_scale > 0:
            raise ValueError(f"ColdStartPrior: ratio_scale must be > 0, got {ratio_scale!r}")
        self.kind = kind
        self.baseline_period = baseline_period
        self.min_points = min_points
        self.ratio_scale = ratio_scale
        self.confidence = DEFAULT_CONFIDENCE[kind] if confidence is None else confidence
        self._start: datetime | None = None
        self._first: list[float] = []  # values of the baseline period
        self._baseline = math.nan  # their median, once the period is over

    def score_one(self, ts: datetime, value: float) -> Assessment:
        """The rule's verdict on ``value`` (score 0 where it has nothing to say)."""
        baseline = self._current_baseline()
        score, expected = 0.0, baseline
        if not math.isfinite(value):
            return self._verdict(0.0, value, value)
        if self.kind == "ratio":
            expected = 0.0 if math.isnan(baseline) else baseline
            rise = value - expected
            score = 1.0 - math.exp(-rise / self.ratio_scale) if rise > 0 else 0.0
        elif self.kind == "latency":
            if not math.isnan(baseline) and baseline > 0 and value > baseline:
                score = 1.0 - (value / baseline) ** -2
        else:
            # 0.9 at SATURATION, rising linearly to 1 at 100 %.
            expected = SATURATION
            headroom = (100.0 - min(value, 100.0)) / (100.0 - SATURATION)
            score = max(0.0, 1.0 - 0.1 * headroom) if value >= SATURATION else 0.0
        return self._verdict(score, value, value if math.isnan(expected) else expected)

    def learn_one(self, ts: datetime, value: float) -> None:
        """Keep ``value`` towards the baseline while the baseline period lasts."""
        if not math.isfinite(value) or not math.isnan(self._baseline):
            return
        if self._start is None:
            self._start = ts
        if ts - self._start < self.baseline_period or len(self._first) < self.min_points:
            self._first.append(value)
        else:
            self._baseline = statistics.median(self._first)
            self._first = []

    def update_one(self, ts: datetime, value: float) -> Assessment:
        """Score, then learn (as every detector does)."""
        verdict = self.score_one(ts, value)
        self.learn_one(ts, value)
        return verdict

    def _current_baseline(self) -> float:
        if not math.isnan(self._baseline):
            return self._baseline
        return statistics.median(self._first) if len(self._first) >= self.min_points else math.nan

    def _verdict(self, score: float, value: float, expected: float) -> Assessment:
        return Assessment(
            score, value, expected, expected, expected, "prior", f"prior/{self.kind}",
            self.confidence,
        )  # fmt: skip
