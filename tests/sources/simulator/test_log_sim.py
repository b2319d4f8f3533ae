"""Tests of the log simulator: determinism, alignment, validity, faults and deploys in the logs."""

from __future__ import annotations

import doctest
import random
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from hypothesis import given, strategies

import airis.sources.simulator.log_messages as log_messages
import airis.sources.simulator.logs as log_sim
from airis.events import LogRecord
from airis.sources.simulator import Simulator, recent_simulation
from airis.sources.simulator.effects import make_fault
from airis.sources.simulator.logs import FAULT_TEMPLATES, LogSimulator, fault_kind_of
from airis.sources.simulator.topology import ROLES

T0 = datetime(2024, 1, 3, 10, tzinfo=UTC)  # a Wednesday morning


def minutes(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


@cache
def faulty_sim() -> Simulator:
    """2.5 h with an error burst, an outage, a bad deploy, a memory leak and a disk fill."""
    faults = [
        make_fault("error_burst", "cart-service", minutes(20), minutes(40)),
        make_fault("dependency_outage", "catalog-db", minutes(60), minutes(80)),
        make_fault(
            "bad_deploy",
            "order-service",
            minutes(100),
            minutes(120),
            params={"version": "v2.1.0", "previous_version": "v2.0.3"},
        ),
        make_fault("memory_leak", "user-service", minutes(90), minutes(135)),
        make_fault("disk_fill", "order-db", minutes(10), minutes(55)),
    ]
    return Simulator(start=T0, hours=2.5, seed=3, faults=faults)


@cache
def faulty_logs() -> tuple[tuple[LogRecord, ...], ...]:
    return tuple(tuple(b) for b in LogSimulator(faulty_sim()).ticks())


def tick_of(sim: Simulator, ts: datetime) -> int:
    return int((ts - sim.start).total_seconds() // sim.interval_seconds)


def test_doctests() -> None:
    result = doctest.testmod(log_sim, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@given(strategies.integers(min_value=0, max_value=2**32))
def test_request_ids_are_the_uuid_module_s_version_4_text(seed: int) -> None:
    expected = str(uuid.UUID(int=random.Random(seed).getrandbits(128), version=4))
    assert log_messages._uuid(random.Random(seed)) == expected


def test_every_role_has_a_full_catalogue() -> None:
    assert set(log_messages.ROLE_TEMPLATES) == set(ROLES)
    for templates in log_messages.ROLE_TEMPLATES.values():
        assert {"info", "slow", "warn", "error"} <= set(templates)


def test_deterministic_for_a_seed() -> None:
    sim = recent_simulation(4, seed=5, end=datetime(2024, 3, 6, 12, tzinfo=UTC))
    first = [b for _, b in zip(range(60), LogSimulator(sim).ticks(), strict=False)]
    again = [b for _, b in zip(range(60), LogSimulator(sim).ticks(), strict=False)]
    other = [b for _, b in zip(range(60), LogSimulator(sim, seed=6).ticks(), strict=False)]
    assert first == again
    assert first != other
    assert sum(map(len, first)) > 60 * 15


def test_batches_align_with_ticks_and_validate() -> None:
    sim = faulty_sim()
    batches = faulty_logs()
    states = list(sim.states())
    assert len(batches) == len(states) == sim.n_ticks
    for st, batch in zip(states, batches, strict=True):
        assert all(st.ts <= r.ts < st.ts + timedelta(seconds=sim.interval_seconds) for r in batch)
        assert [r.ts for r in batch] == sorted(r.ts for r in batch)
    records = [r for b in batches for r in b]
    for r in records[::50]:
        assert LogRecord.model_validate(r.model_dump()) == r
    assert {r.service for r in records} == set(sim.services)
    assert {"INFO", "WARN", "ERROR"} <= {r.severity for r in records}
    traced = [r for r in records if r.trace_id]
    assert len(traced) > len(records) / 2
    assert all(len(r.trace_id) == 32 and len(r.span_id or "") == 16 for r in traced)


def test_rows_are_valid_log_records_in_log_record_s_field_order() -> None:
    bad = make_fault(
        "bad_deploy", "cart-service", T0 + timedelta(minutes=5), T0 + timedelta(minutes=20)
    )
    sim = Simulator(start=T0, hours=0.5, seed=4, faults=[bad])  # fault and deploy lines too
    rows = [row for tick in LogSimulator(sim).tick_rows() for row in tick]
    records = [r for tick in LogSimulator(sim).ticks() for r in tick]
    assert len(rows) == len(records) > 100
    assert any(r.attributes for r in records) and any(r.trace_id for r in records)
    for row, record in zip(rows, records, strict=True):
        valid = LogRecord.model_validate(dict(zip(LogRecord.model_fields, row, strict=True)))
        assert valid == record


def test_volume_follows_request_rate() -> None:
    night = Simulator(start=T0.replace(hour=3), hours=0.5, seed=1, faults=[])
    peak = Simulator(start=T0.replace(hour=16), hours=0.5, seed=1, faults=[])
    n_night = sum(map(len, LogSimulator(night).ticks()))
    n_peak = sum(map(len, LogSimulator(peak).ticks()))
    assert n_peak > 3 * n_night  # traffic is 5x higher at 16:00 than at 04:00
    assert sum(map(len, LogSimulator(peak, lines_per_tick_per_service=0).ticks())) == 0


@pytest.mark.parametrize("kind", ["error_burst", "bad_deploy"])
def test_error_lines_rise_during_error_faults(kind: str) -> None:
    sim = faulty_sim()
    fault = next(f for f in sim.faults if f.kind == kind)
    during, outside = [0, 0], [0, 0]
    for batch in faulty_logs():
        for r in batch:
            if r.service != fault.service:
                continue
            bucket = during if fault.active_at(r.ts) else outside
            bucket[0] += r.severity == "ERROR"
            bucket[1] += 1
    assert during[1] > 100 and outside[1] > 500
    assert during[0] / during[1] > 0.3
    assert outside[0] / outside[1] < 0.05


def test_fault_lines_only_while_active_and_only_on_affected_services() -> None:
    sim = faulty_sim()
    states = list(sim.states())
    seen: dict[str, set[str]] = {}
    for batch in faulty_logs():
        for r in batch:
            kind = fault_kind_of(r.body)
            if kind is None:
                continue
            active = states[tick_of(sim, r.ts)].faults
            assert any(f.kind == kind and r.service in f.affected for f in active), r
            seen.setdefault(kind, set()).add(r.service)
    assert set(seen) == {f.kind for f in sim.faults}
    outage = next(f for f in sim.faults if f.kind == "dependency_outage")
    assert seen["dependency_outage"] == set(outage.affected)
    refused = [
        r
        for b in faulty_logs()
        for r in b
        if r.body.startswith("connection refused to catalog-db at ")
    ]
    assert refused and {r.service for r in refused} <= set(
        sim.topology.direct_callers("catalog-db")
    )
    assert seen["memory_leak"] == {"user-service"}
    assert seen["disk_fill"] == {"order-db"}


def test_fault_templates_are_told_apart() -> None:
    ctx = {
        "ms": "12.0",
        "via": "x",
        "root": "y",
        "root_ip": "10.0.0.1",
        "root_port": "1",
        "mem": "93",
        "disk": "97",
        "rps": "900",
        "stem": "order",
        "Stem": "Order",
        "service": "order-service",
    }
    rnd = random.Random(0)
    for kind, groups in FAULT_TEMPLATES.items():
        for lines in groups.values():
            for _, template in lines:
                assert fault_kind_of(log_messages.render(template, rnd, ctx)) == kind


def test_deploy_lines() -> None:
    sim = faulty_sim()
    deploys = [r for b in faulty_logs() for r in b if r.attributes.get("event") == "deploy"]
    bad = next(f for f in sim.faults if f.kind == "bad_deploy")
    assert [(r.ts, r.service, r.body) for r in deploys] == [
        (bad.start, bad.service, "deployed version v2.1.0"),
        (bad.end, bad.service, "deployed version v2.0.3 (rollback of v2.1.0)"),
    ]
    sim2 = Simulator(start=T0, hours=4, seed=2)  # the default schedule: harmless deploys too
    lines = [r for r in LogSimulator(sim2, lines_per_tick_per_service=0).records()]
    assert sorted((r.ts, r.service) for r in lines) == sorted(
        (d.ts, d.service) for d in sim2.deploys if d.ts < sim2.end
    )
    assert all(r.body.startswith("deployed version v") for r in lines)


def test_rejects_bad_rate() -> None:
    with pytest.raises(ValueError, match="lines_per_tick_per_service"):
        LogSimulator(faulty_sim(), lines_per_tick_per_service=-1)
