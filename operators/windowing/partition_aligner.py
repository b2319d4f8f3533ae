"""One key's events from several input partitions, released in event-time order.

A producer that does not key its messages (the OpenTelemetry Collector's Kafka exporter, by
default) spreads one service's events over every partition of a topic. Each partition is in
order, but a consumer that catches up reads thousands of messages of one partition, then of
the next, so one service's events arrive minutes out of order, and a per-service watermark
makes most of them late (measured: 73 % of 259,200 points replayed from a 4-partition topic).

`PartitionAligner` is the per-key half of a watermark per input partition (Flink takes the
minimum over its input channels and lets idle ones go, ``withIdleness``): it holds a key's
events until every partition that carries the key has delivered past them, then releases
them in timestamp order. A partition carries the key while it has delivered some of the
key's events within the last ``idle_grace`` seconds of system time. Until ``spread``
partitions have delivered the key (how many its producer may spread it over), and for at
most ``idle_grace`` after the key's first event, the aligner waits for the others: the first
batch of a partition read late must not find its windows closed. With ``spread=1`` (a
producer that keys by service keeps a service in one partition) nothing waits, and a single
partition's events pass straight through.

A partition is in order only as far as its producer wrote it so. The Collector's Kafka exporter
sends from a queue with several consumers at once: draining a backlog, it writes a newer
export request before an older one (measured through a real Collector: a partition going back
80 s of event time). So when each event's message was produced is known (the Kafka message's
timestamp), a partition has passed an event time only once a message produced at least
``disorder`` seconds later has come (or the partition has been quiet for ``disorder`` seconds
of system time): an older message can only be written while its newer sibling's is in flight.
That bounds the disorder in production time, which costs a tailing flow at most ``disorder``
seconds, where a bound in event time would cost as much as the backlog was long.

>>> from datetime import UTC, datetime, timedelta
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> at = [t0 + timedelta(seconds=s) for s in range(6)]
>>> aligner = PartitionAligner(spread=2, idle_grace=60.0)
>>> aligner.update("p0", [(at[2], "a"), (at[4], "b")], now=0.0)  # waits for the other partition
[]
>>> aligner.update("p1", [(at[1], "c"), (at[3], "d")], now=1.0)  # both past 3 s: up to there
['c', 'a', 'd']
>>> aligner.update("p0", [(at[5], "e")], now=50.0)  # p1 (at 3 s) still holds "b" back
[]
>>> aligner.release(now=61.5)  # p1 has been quiet for the grace: it holds nothing back now
['b', 'e']
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from heapq import heappop, heappush
from operator import itemgetter
from typing import Any

__all__ = ["PartitionAligner"]

#: The frontier of a partition that has not passed any time yet.
_NOTHING = datetime.min.replace(tzinfo=UTC)


class PartitionAligner:
    """Hold one key's ``(timestamp, event)`` pairs until every partition carrying it has
    passed them (see the module docstring).

    Parameters
    ----------
    spread
        How many partitions the key's events may come from; the aligner waits (at most
        ``idle_grace`` after the key's first event) until that many have delivered some.
    idle_grace
        System time after which a partition that has delivered nothing more of the key no
        longer holds it back.
    disorder
        How much later (production time, seconds) a message may still carry older events
        than one before it in the same partition; used for the events given their
        production times.
    """

    def __init__(self, spread: int = 1, idle_grace: float = 60.0, disorder: float = 0.0) -> None:
        if spread < 1 or idle_grace < 0 or disorder < 0:
            raise ValueError("spread must be >= 1, idle_grace and disorder >= 0")
        self.spread = spread
        self.idle_grace = idle_grace
        self.disorder = disorder
        self._frontier: dict[str, datetime] = {}  # partition → the time it has passed
        self._seen_at: dict[str, float] = {}  # partition → system time it last delivered
        self._first_at: float | None = None
        # Held events as a heap of (time, arrival number, event): ties go in arrival order.
        self._pending: list[tuple[datetime, int, Any]] = []
        self._arrivals = 0
        # partition → [production time, newest event time] of messages not yet trusted
        self._unsure: dict[str, list[list]] = {}
        self._produced: dict[str, float] = {}  # partition → newest production time

    def __setstate__(self, state: dict) -> None:
        # Snapshots from before production times were used, and before the heap.
        self.__dict__.update({"disorder": 0.0, "_unsure": {}, "_produced": {}, **state})
        if "_arrivals" not in state:
            held = sorted(self._pending, key=_timestamp)
            self._pending = [(ts, i, event) for i, (ts, event) in enumerate(held)]
            self._arrivals = len(held)

    def __deepcopy__(self, memo: dict) -> PartitionAligner:
        """A snapshot: the containers copied, the held events shared (events are immutable,
        and copying them one by one took a quarter of an unkeyed flow's time)."""
        other = copy.copy(self)
        other._frontier = dict(self._frontier)
        other._seen_at = dict(self._seen_at)
        other._pending = list(self._pending)
        other._unsure = {p: [list(run) for run in runs] for p, runs in self._unsure.items()}
        other._produced = dict(self._produced)
        return other

    @property
    def pending(self) -> int:
        """Events held back."""
        return len(self._pending)

    def update(
        self,
        partition: str,
        events: Sequence[tuple[datetime, Any]],
        now: float,
        produced: Sequence[float | None] | None = None,
    ) -> list:
        """Take ``events`` (in the partition's order; ``produced``: when each one's message
        was produced, seconds) and return what may go, in time order."""
        if not events:
            return self.release(now)
        if self._first_at is None:
            self._first_at = now
        self._seen_at[partition] = now
        if produced is None or self.disorder == 0:
            self._advance(partition, max(ts for ts, _ in events))
        else:
            self._note(partition, events, produced)
        if not self._pending and not self._unsure.get(partition) and self._alone(partition, now):
            return [event for _, event in events]  # one partition carries the key: in order
        arrival = self._arrivals
        for ts, event in events:
            heappush(self._pending, (ts, arrival, event))
            arrival += 1
        self._arrivals = arrival
        return self.release(now)

    def release(self, now: float) -> list:
        """Every held event that all partitions carrying the key have passed, in time order."""
        for partition, runs in self._unsure.items():
            if runs and now - self._seen_at[partition] >= self.disorder:  # quiet: all written
                self._trust(partition, math.inf)
        if not self._pending or self._waiting(now):
            return []
        active = [p for p, seen in self._seen_at.items() if now - seen < self.idle_grace]
        if active:
            floor = min(self._frontier.get(p, _NOTHING) for p in active)
            held, released = self._pending, []
            while held and held[0][0] <= floor:
                released.append(heappop(held)[2])
        else:
            released = self.close_all()
        self._forget_idle(now)
        return released

    def close_all(self) -> list:
        """Every held event, in time order (end of input)."""
        held, self._pending = sorted(self._pending), []
        return [event for _, _, event in held]

    def next_release_in(self, now: float) -> float | None:
        """System time until held events may go without new input (None: nothing held)."""
        if not self._pending:
            return None
        due = [seen + self.idle_grace for seen in self._seen_at.values()]
        due += [self._seen_at[p] + self.disorder for p, runs in self._unsure.items() if runs]
        if self._first_at is not None and len(self._seen_at) < self.spread:
            due.append(self._first_at + self.idle_grace)
        later = [d for d in due if d > now]
        return max(min(later) - now, 0.0) if later else 0.0

    def resume(self, now: float) -> None:
        """Restart the system-time allowances at ``now`` (after a restart from a snapshot)."""
        self._seen_at = dict.fromkeys(self._seen_at, now)
        if self._first_at is not None:
            self._first_at = now

    def _advance(self, partition: str, ts: datetime) -> None:
        before = self._frontier.get(partition)
        if before is None or ts > before:
            self._frontier[partition] = ts

    def _note(
        self, partition: str, events: Sequence[tuple[datetime, Any]], produced: Sequence
    ) -> None:
        """Hold the partition's frontier back by what its producer may still write older."""
        runs = self._unsure.setdefault(partition, [])
        newest = self._produced.get(partition, -math.inf)
        for (ts, _), stamp in zip(events, produced, strict=True):
            if stamp is None:  # a producer that does not say: trusted to write in order
                self._advance(partition, ts)
            elif runs and runs[-1][0] == stamp:  # one message's events, or one millisecond's
                runs[-1][1] = max(runs[-1][1], ts)
            else:
                runs.append([stamp, ts])
                newest = max(newest, stamp)
        self._produced[partition] = newest
        self._trust(partition, newest - self.disorder)

    def _trust(self, partition: str, until: float) -> None:
        """Advance the partition past the messages produced by ``until``."""
        runs = self._unsure[partition]
        trusted = 0
        while trusted < len(runs) and runs[trusted][0] <= until:
            self._advance(partition, runs[trusted][1])
            trusted += 1
        del runs[:trusted]

    def _alone(self, partition: str, now: float) -> bool:
        if self._waiting(now):
            return False
        return all(p == partition or now - s >= self.idle_grace for p, s in self._seen_at.items())

    def _waiting(self, now: float) -> bool:
        first = self._first_at if self._first_at is not None else -math.inf
        return len(self._seen_at) < self.spread and now - first < self.idle_grace

    def _forget_idle(self, now: float) -> None:
        # A partition idle this long holds nothing back; keep its frontier only while the
        # key has too few partitions to stop waiting (it counts towards `spread`).
        if len(self._seen_at) <= self.spread:
            return
        for partition, seen in list(self._seen_at.items()):
            if now - seen >= self.idle_grace:
                del self._seen_at[partition]
                for state in (self._frontier, self._unsure, self._produced):
                    state.pop(partition, None)


#: An event's time in the ``(time, event)`` pairs held (a C-level key for sorting them).
_timestamp = itemgetter(0)
