"""Metric points as columns: what crosses between workers and partitions in bulk.

A `MetricBatch` holds many already-validated points of one detection key as one tuple per
field; a `PointRow` is one point's validated fields without the model. Both exist so that the
data path moves and pickles plain values instead of a model per point.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from airis.events import MetricPoint

__all__ = ["MetricBatch", "PointRow", "unbatched"]


@dataclass(frozen=True, slots=True)
class MetricBatch:
    """Many already-validated points of one detection key, as columns.

    What crosses between workers: a flow groups the points of one batch of input by key
    (`from_points`), so an exchange moves one item per key and batch, and pickles lists of
    plain values instead of a model per point. ``key`` is the service, or the service with a
    ``/logs``, ``/traces`` or ``/otlp`` suffix for points that keep windows of their own.
    ``labels`` is empty when no point has labels (the common case), else one dict per point.

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> batch = MetricBatch.from_points("api", [
    ...     MetricPoint(ts=t, service="api", signal="cpu", value=1.0),
    ...     MetricPoint(ts=t, service="api", signal="mem", value=2.0)])
    >>> len(batch), batch.signal, batch.labels
    (2, ('cpu', 'mem'), ())
    >>> batch.point(1) == MetricPoint(ts=t, service="api", signal="mem", value=2.0)
    True
    """

    key: str
    service: str
    ts: tuple[datetime, ...]
    signal: tuple[str, ...]
    value: tuple[float, ...]
    labels: tuple[dict[str, str], ...] = ()

    @classmethod
    def from_points(cls, key: str, points: Sequence[MetricPoint | PointRow]) -> MetricBatch:
        """The points (all of one service, in arrival order) as one batch."""
        labels = tuple(p.labels for p in points)
        return cls(
            key,
            points[0].service,
            tuple(p.ts for p in points),
            tuple(p.signal for p in points),
            tuple(p.value for p in points),
            labels if any(labels) else (),
        )

    def __len__(self) -> int:
        return len(self.ts)

    def point(self, i: int) -> MetricPoint:
        """Point ``i`` again (its fields were validated when it was first built)."""
        return MetricPoint.model_construct(
            ts=self.ts[i],
            service=self.service,
            signal=self.signal[i],
            value=self.value[i],
            labels=self.labels[i] if self.labels else {},
        )

    def points(self) -> Iterator[MetricPoint]:
        """Every point, in order."""
        return (self.point(i) for i in range(len(self.ts)))


class PointRow(NamedTuple):
    """A metric point's fields, validated as a `MetricPoint`'s would be, without the model:
    what an unkeyed partition's decoder holds for the alignment, which gives it on as part of
    a `MetricBatch` (`MetricBatch.from_points` reads either)."""

    ts: datetime
    service: str
    signal: str
    value: float
    labels: dict[str, str]


def unbatched(items: Iterable[Any]) -> list[Any]:
    """``items`` with each `MetricBatch` replaced by its points, in order (what a flow stored,
    read point by point)."""
    return [p for item in items for p in (item.points() if type(item) is MetricBatch else (item,))]
