"""Snapshots of a keyed step's state as pickled bytes, and a `stateful_map` that takes them.

Bytewax asks every key's logic for a snapshot at the end of each epoch it touched (every 10 s,
or the snapshot interval with recovery), with recovery or without, and needs a copy the
step cannot change afterwards. `copy.deepcopy` walks the state object by object: about
140 µs for one service's detector, and a quarter of the time of the flow over 100,000
series (BENCHMARKS.md, the row on keyed steps' snapshots). The pickle that recovery writes
is such a copy too, made about three times faster; Bytewax then pickles the bytes as they
are.

Snapshots taken before this module were the state objects themselves: `thawed` takes both.
Without recovery nothing reads them: steps built inside ``kept(False)`` take none.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulLogic

S = TypeVar("S")
V = TypeVar("V")
W = TypeVar("W")

__all__ = [
    "TakeSnapshot",
    "frozen",
    "keeps_snapshots",
    "kept",
    "snapshotter",
    "stateful_map",
    "thawed",
]

#: How a step takes its snapshot of a state: `frozen`, or nothing (``kept(False)``).
TakeSnapshot = Callable[[object], bytes | None]

_KEPT: ContextVar[bool] = ContextVar("airis_snapshots_kept", default=True)


def frozen(state: object) -> bytes:
    """``state`` as a snapshot nothing can change: its pickle.

    >>> thawed(frozen({"cpu": [1.0, 2.0]}))
    {'cpu': [1.0, 2.0]}
    """
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def thawed(snapshot: S | bytes | None) -> S | None:
    """The state of a snapshot: a `frozen` one, or one taken as the object itself."""
    return pickle.loads(snapshot) if isinstance(snapshot, bytes) else snapshot


@contextmanager
def kept(snapshots: bool) -> Iterator[None]:
    """Whether the steps built inside take snapshots: ``False`` only for a flow that runs
    without recovery (a resumed run would start those steps afresh)."""
    token = _KEPT.set(snapshots)
    try:
        yield
    finally:
        _KEPT.reset(token)


def keeps_snapshots() -> bool:
    """Whether the steps and sinks built now take snapshots (`kept`)."""
    return _KEPT.get()


def snapshotter() -> TakeSnapshot:
    """How a step built now takes its snapshots: `frozen`, or not at all (``kept(False)``).

    >>> with kept(False):
    ...     snapshot = snapshotter()
    >>> snapshot({"cpu": 1.0}) is None, snapshotter() is frozen
    (True, True)
    """
    return frozen if _KEPT.get() else _none


def _none(_state: object) -> None:
    return None


@operator
def stateful_map(
    step_id: str,
    up: Stream[tuple[str, V]],
    mapper: Callable[[S | None, V], tuple[S | None, W]],
) -> Stream[tuple[str, W]]:
    """Bytewax's `stateful_map`, with `frozen` snapshots instead of deep copies (none when
    built inside ``kept(False)``). Its steps inside have the same ids, so a snapshot of
    Bytewax's resumes here."""
    return _stateful_flat_map("stateful_flat_map", up, mapper)


@operator
def _stateful_flat_map(
    step_id: str, up: Stream[tuple[str, V]], mapper: Callable[[Any, V], tuple[Any, W]]
) -> Stream[tuple[str, W]]:
    snapshot = snapshotter()
    return op.stateful("stateful", up, lambda r: _MapLogic(mapper, thawed(r), snapshot))


class _MapLogic(StatefulLogic[Any, Any, Any]):
    def __init__(
        self,
        mapper: Callable[[Any, Any], tuple[Any, Any]],
        state: Any,
        take_snapshot: TakeSnapshot,
    ) -> None:
        self.mapper = mapper
        self.state = state
        self.take_snapshot = take_snapshot

    def on_item(self, value: Any) -> tuple[Iterable[Any], bool]:
        state, out = self.mapper(self.state, value)
        if state is None:
            return (out,), self.DISCARD
        self.state = state
        return (out,), self.RETAIN

    def snapshot(self) -> bytes | None:
        return self.take_snapshot(self.state)
