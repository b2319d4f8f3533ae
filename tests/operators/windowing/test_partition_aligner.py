"""`PartitionAligner`: one key's events from several partitions, released in time order."""

from __future__ import annotations

import copy
import pickle
import random
from datetime import UTC, datetime, timedelta

import pytest

from airis.operators.windowing.partition_aligner import PartitionAligner

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_one_partition_passes_straight_through_in_its_own_order() -> None:
    aligner = PartitionAligner(spread=1, idle_grace=60.0)
    events = [(at(s), s) for s in (0, 10, 5, 20)]  # a little disorder stays for the windows
    assert aligner.update("0", events, now=0.0) == [0, 10, 5, 20]
    assert aligner.pending == 0 and aligner.next_release_in(0.0) is None


def test_a_catch_up_read_of_four_partitions_comes_out_in_time_order_and_whole() -> None:
    # One service's points, spread at random over 4 partitions (an unkeyed producer), read
    # as a consumer catching up reads them: 50 messages of one partition, then the next.
    rng = random.Random(7)
    partitions: dict[str, list] = {str(p): [] for p in range(4)}
    for second in range(2000):
        partitions[str(rng.randrange(4))].append((None, second))
    out = _catch_up(PartitionAligner(spread=4, idle_grace=60.0), partitions, per_poll=50)
    assert out == list(range(2000))


def _catch_up(
    aligner: PartitionAligner, partitions: dict[str, list[tuple[float | None, int]]], per_poll: int
) -> list[int]:
    """Read ``(production time, event second)`` messages as a flow catching up reads them:
    ``per_poll`` of one partition, then of the next; what the aligner releases, in order."""
    out: list[int] = []
    offsets = dict.fromkeys(partitions, 0)
    now = 0.0
    while any(offsets[p] < len(messages) for p, messages in partitions.items()):
        for p, messages in partitions.items():
            chunk = messages[offsets[p] : offsets[p] + per_poll]
            offsets[p] += len(chunk)
            events = [(at(second), second) for _, second in chunk]
            out += aligner.update(p, events, now, produced=[stamp for stamp, _ in chunk])
            now += 0.01
    return out + aligner.close_all()


def test_waiting_for_partitions_that_never_deliver_is_bounded_by_the_grace() -> None:
    aligner = PartitionAligner(spread=4, idle_grace=60.0)
    assert aligner.update("0", [(at(0), "a"), (at(5), "b")], now=100.0) == []
    assert aligner.next_release_in(130.0) == pytest.approx(30.0)
    assert aligner.release(159.0) == []
    assert aligner.release(160.0) == ["a", "b"]  # nobody else has come: let them go


def test_a_partition_that_goes_quiet_stops_holding_the_others_back() -> None:
    aligner = PartitionAligner(spread=2, idle_grace=60.0)
    assert aligner.update("0", [(at(0), "a")], now=0.0) == []
    assert aligner.update("1", [(at(1), "b")], now=1.0) == ["a"]
    # "1" says nothing more; "0" goes on. Its events wait until "1" has been quiet for 60 s.
    assert aligner.update("0", [(at(2), "c"), (at(3), "d")], now=30.0) == ["b"]
    assert aligner.release(60.5) == []
    assert aligner.release(61.0) == ["c", "d"]
    assert aligner.update("0", [(at(4), "e")], now=62.0) == ["e"]  # alone now: no waiting


def test_state_survives_a_snapshot_and_the_downtime_does_not_count() -> None:
    aligner = PartitionAligner(spread=2, idle_grace=60.0)
    aligner.update("0", [(at(0), "a")], now=0.0)
    aligner.update("1", [(at(5), "b")], now=1.0)
    restored = pickle.loads(pickle.dumps(aligner))
    restored.resume(now=5000.0)  # a restart: both partitions may still deliver
    assert restored.release(5001.0) == [] and restored.pending == 1
    assert restored.update("0", [(at(9), "c")], now=5002.0) == ["b"]


def test_a_snapshot_copy_goes_on_alone_and_shares_the_held_events() -> None:
    aligner = PartitionAligner(spread=2, idle_grace=60.0, disorder=5.0)
    held = {"point": 1}
    aligner.update("0", [(at(0), held)], now=0.0, produced=[100.0])
    snapshot = copy.deepcopy(aligner)
    assert aligner.update("1", [(at(1), "b")], now=1.0, produced=[200.0]) == []
    assert aligner.release(10.0)[0] is held  # the original moves on...
    assert snapshot.pending == 1 and snapshot._unsure["0"] == [[100.0, at(0)]]  # ...the copy not
    assert snapshot.close_all()[0] is held  # events are immutable in a flow: not copied


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        PartitionAligner(spread=0)
    with pytest.raises(ValueError):
        PartitionAligner(idle_grace=-1)
    with pytest.raises(ValueError):
        PartitionAligner(disorder=-1)


def _burst(partitions: int, seed: int) -> dict[str, list[tuple[float, int]]]:
    """(production time, event second) per partition as a Collector draining a backlog writes
    them: 10 senders at once, so a partition may get a newer request before an older one."""
    rng = random.Random(seed)
    out: dict[str, list[tuple[float, int]]] = {str(p): [] for p in range(partitions)}
    for first in range(0, 600, 10):
        group = list(range(first, first + 10))
        rng.shuffle(group)  # the order 10 concurrent sends happen to land in
        for i, second in enumerate(group):
            out[str(rng.randrange(partitions))].append((1000.0 + first / 100 + i / 1000, second))
    return out


@pytest.mark.parametrize("disorder", [0.0, 5.0])
def test_a_partition_written_out_of_order_by_concurrent_senders_is_put_in_order_within_the_bound(
    disorder: float,
) -> None:
    aligner = PartitionAligner(spread=4, idle_grace=60.0, disorder=disorder)
    out = _catch_up(aligner, _burst(4, seed=3), per_poll=7)
    assert sorted(out) == list(range(600))
    # Without the bound the partitions' own disorder comes through; with it, none.
    late = sum(1 for i in range(1, len(out)) if out[i] < max(out[:i]))
    assert (late == 0) == (disorder > 0)


def test_a_tailing_partition_pays_at_most_the_bound_in_system_time() -> None:
    # Real time: a message every 10 s, produced as it arrives. Each event goes once a later
    # message has come or the partition has been quiet for the bound (5 s), never later.
    aligner = PartitionAligner(spread=1, idle_grace=60.0, disorder=5.0)
    assert aligner.update("0", [(at(0), "a")], now=0.0, produced=[0.0]) == []
    assert aligner.next_release_in(0.0) == pytest.approx(5.0)
    assert aligner.release(4.9) == []
    assert aligner.release(5.0) == ["a"]
    assert aligner.update("0", [(at(10), "b")], now=10.0, produced=[10.0]) == []
    assert aligner.update("0", [(at(20), "c")], now=20.0, produced=[20.0]) == ["b"]
    # Messages without a production time are trusted to be in order, as before.
    assert aligner.update("0", [(at(30), "d")], now=21.0, produced=[None]) == ["c", "d"]


def test_snapshots_from_before_production_times_still_load() -> None:
    aligner = PartitionAligner(spread=1, idle_grace=60.0)
    aligner.update("0", [(at(0), "a")], now=0.0)
    state = dict(aligner.__dict__)
    for name in ("disorder", "_unsure", "_produced"):
        del state[name]
    old = PartitionAligner.__new__(PartitionAligner)
    old.__setstate__(state)
    assert old.update("0", [(at(1), "b")], now=1.0, produced=[1.0]) == ["b"]
