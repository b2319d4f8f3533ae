"""Ways of doing one step timed in turns within one process.

On a noisy machine, separate runs drift by more than a difference of a few percent; timed in
turns, each round alternating which way goes first, the medians still show it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable


def in_turns(
    ways: dict[str, Callable[[], float]], rounds: int, warmup: int = 0
) -> dict[str, float]:
    """Each way's median over ``rounds`` calls (a call returns its own measure), the ways'
    order alternating round by round; the first ``warmup`` rounds are not counted."""
    measures: dict[str, list[float]] = {way: [] for way in ways}
    for i in range(warmup + rounds):
        for way in sorted(ways, reverse=bool(i % 2)):
            measure = ways[way]()
            if i >= warmup:
                measures[way].append(measure)
    return {way: statistics.median(m) for way, m in measures.items()}
