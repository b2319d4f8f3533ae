"""Tests of fault records and schedules: day rules, scaling, validation, custom faults."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from airis.sources.simulator import Simulator
from airis.sources.simulator.effects import make_fault
from airis.sources.simulator.ground_truth import FAULT_KINDS, Deploy, Fault
from airis.sources.simulator.schedule import (
    MIN_GAP,
    QUIET,
    WARMUP,
    default_fault_schedule,
    default_schedule,
)

WEDNESDAY = datetime(2024, 1, 3, tzinfo=UTC)


# --- schedules --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_default_schedule_day_rules(seed: int) -> None:
    start = WEDNESDAY
    schedule = default_schedule(start, 24, seed)
    faults = schedule.faults
    assert len(faults) >= 8
    assert {f.kind for f in faults} == set(FAULT_KINDS)
    assert len({f.service for f in faults}) >= 6
    assert len({f.id for f in faults}) == len(faults)
    assert faults[0].start >= start + WARMUP
    assert faults[-1].end <= start + timedelta(hours=24) - MIN_GAP
    for f in faults:
        low = 45 if f.kind in ("memory_leak", "disk_fill") else 10
        assert timedelta(minutes=low) <= f.duration <= timedelta(minutes=60), f
        assert f.affected[0] == f.service
    for prev, nxt in pairwise(faults):
        assert nxt.start - prev.end >= MIN_GAP
    quiet_start, quiet_end = schedule.quiet
    assert quiet_end - quiet_start >= QUIET
    assert start + WARMUP <= quiet_start and quiet_end <= start + timedelta(hours=24)
    for f in faults:
        assert f.end + MIN_GAP <= quiet_start or quiet_end + MIN_GAP <= f.start
    bad = next(f for f in faults if f.kind == "bad_deploy")
    faulty = [d for d in schedule.deploys if d.faulty]
    assert faulty == [Deploy(bad.start, bad.service, bad.params["version"], True)]
    rollback = [d for d in schedule.deploys if d.ts == bad.end and d.service == bad.service]
    assert rollback == [Deploy(bad.end, bad.service, bad.params["previous_version"])]
    assert len(schedule.deploys) >= 3  # plus harmless ones
    assert default_fault_schedule(start, 24, seed) == list(faults)


@pytest.mark.parametrize("hours", [4, 5, 8, 12, 48])
def test_default_schedule_scales_with_length(hours: float) -> None:
    start = WEDNESDAY
    schedule = default_schedule(start, hours, seed=2)
    faults = schedule.faults
    assert 1 <= len(faults) <= max(8, 8 * hours / 24)
    if hours >= 24:
        assert {f.kind for f in faults} == set(FAULT_KINDS)
    assert faults[0].start >= start + WARMUP
    assert faults[-1].end <= start + timedelta(hours=hours) - MIN_GAP
    for prev, nxt in pairwise(faults):
        assert nxt.start - prev.end >= MIN_GAP
    assert schedule.quiet[1] - schedule.quiet[0] >= min(QUIET, timedelta(hours=(hours - 2) / 4))


def test_too_short_runs_need_explicit_faults() -> None:
    with pytest.raises(ValueError, match="at least 4 h"):
        default_schedule(WEDNESDAY, 3.5, seed=0)
    with pytest.raises(ValueError, match=r"faults=\[\]"):
        Simulator(hours=2, seed=0)
    assert Simulator(hours=2, seed=0, faults=[]).faults == ()


# --- fault records ----------------------------------------------------------------------------


def test_fault_validation_and_custom_faults() -> None:
    t0 = WEDNESDAY
    with pytest.raises(ValueError, match="unknown kind"):
        Fault("x", "meteor", "user-db", t0, t0 + MIN_GAP, ("user-db",))
    with pytest.raises(ValueError, match="not after start"):
        Fault("x", "disk_fill", "user-db", t0, t0, ("user-db",))
    with pytest.raises(ValueError, match="root"):
        Fault("x", "disk_fill", "user-db", t0, t0 + MIN_GAP, ("order-db",))
    t1 = t0 + timedelta(hours=3)
    fault = make_fault(
        "bad_deploy",
        "catalog-service",
        t1,
        t1 + timedelta(minutes=20),
        params={"version": "v9.0.0"},
    )
    sim = Simulator(start=t0, hours=4, seed=0, faults=[fault])
    assert [(d.version, d.faulty) for d in sim.deploys] == [("v9.0.0", True), ("v1.0.0", False)]
    assert sim.quiet == (t0 + WARMUP, fault.start - MIN_GAP)


def test_docstring_examples() -> None:
    from airis.sources.simulator import effects, ground_truth, schedule

    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    results = [doctest.testmod(m, optionflags=flags) for m in (ground_truth, effects, schedule)]
    assert sum(r.attempted for r in results) >= 10
    assert [r.failed for r in results] == [0, 0, 0]
