"""Tests of the telemetry simulator: shape, determinism, seasonality, faults, ground truth."""

from __future__ import annotations

import doctest
import json
from datetime import UTC, datetime, timedelta
from itertools import islice

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import airis.sources.simulator.metrics as simulator
from airis.events import MetricPoint
from airis.sources.simulator import SIGNALS, Simulator, pace, seasonality
from airis.sources.simulator.effects import make_fault
from airis.sources.simulator.ground_truth import FAULT_KINDS, FAULT_SIGNALS, Deploy, Fault
from airis.sources.simulator.topology import Topology

WEDNESDAY = datetime(2024, 1, 3, tzinfo=UTC)
SATURDAY = datetime(2024, 1, 6, tzinfo=UTC)


def collect(sim: Simulator) -> np.ndarray:
    """All values of a run as an array indexed [tick, service, signal]."""
    n = len(sim.services)
    out = np.empty((sim.n_ticks, n, len(SIGNALS)))
    for i, batch in enumerate(sim.ticks()):
        out[i] = np.array([e["value"] for e in batch]).reshape(n, len(SIGNALS))
    return out


def tick_of(sim: Simulator, ts: datetime) -> int:
    return int((ts - sim.start).total_seconds() // sim.interval_seconds)


def robust_shift(before: np.ndarray, during: np.ndarray, floor: float) -> float:
    """Shift of the median from ``before`` to ``during`` in robust sigmas of ``before``."""
    center = np.median(before)
    sigma = max(1.4826 * np.median(np.abs(before - center)), floor)
    return float((np.median(during) - center) / sigma)


@pytest.fixture(scope="module")
def day() -> tuple[Simulator, np.ndarray]:
    sim = Simulator(hours=24, seed=7)
    return sim, collect(sim)


# --- events -----------------------------------------------------------------------------------


def test_events_validate_as_metric_points() -> None:
    sim = Simulator(start=WEDNESDAY, hours=0.5, seed=1, faults=[])
    batches = list(sim.ticks())
    assert len(batches) == sim.n_ticks == 180
    for i, batch in enumerate(batches):
        assert len(batch) == len(sim.services) * len(SIGNALS)
        assert {(e["service"], e["signal"]) for e in batch} == {
            (s, sig) for s in sim.services for sig in SIGNALS
        }
        for event in batch:
            point = MetricPoint.model_validate(event)
            assert point.ts == sim.start + timedelta(seconds=10 * i)


def test_tables_hold_the_values_of_the_events_service_by_service() -> None:
    sim = Simulator(start=WEDNESDAY, hours=0.5, seed=1, faults=[])
    tables = list(sim.tables())
    assert len(tables) == sim.n_ticks
    for (ts, table), batch in zip(tables, sim.ticks(), strict=True):
        assert table.shape == (len(sim.services), len(SIGNALS))
        assert {e["ts"] for e in batch} == {ts}
        assert table.ravel().tolist() == [e["value"] for e in batch]


def test_values_are_in_range_and_percentiles_ordered(day) -> None:
    _, x = day
    assert np.isfinite(x).all()
    rate, p50, p95, p99, errors, cpu, memory, disk = np.moveaxis(x, -1, 0)
    assert (rate >= 0).all()
    assert (p50 > 0).all() and (p50 < p95).all() and (p95 < p99).all()
    assert ((errors >= 0) & (errors <= 1)).all()
    for percent in (cpu, memory, disk):
        assert ((percent >= 0) & (percent <= 100)).all()


def test_same_seed_same_events_other_seed_other_events() -> None:
    def run(seed: int) -> list[dict]:
        return [e for batch in Simulator(hours=4, seed=seed).ticks() for e in batch]

    first = run(3)
    assert first == run(3)
    assert first != run(4)
    sim = Simulator(hours=0.2, seed=3, faults=[])
    assert list(sim.ticks()) == list(sim.ticks())  # iterating again starts over


# --- seasonality ------------------------------------------------------------------------------


def test_daily_seasonality_day_busier_than_night(day) -> None:
    sim, x = day
    frontend = sim.topology.index("frontend")
    rate = x[:, frontend, 0].copy()
    for fault in sim.faults:
        if "frontend" in fault.affected:
            rate[tick_of(sim, fault.start) : tick_of(sim, fault.end)] = np.nan
    hour = np.arange(sim.n_ticks) * sim.interval_seconds / 3600
    night = np.nanmedian(rate[(hour >= 2) & (hour < 6)])
    afternoon = np.nanmedian(rate[(hour >= 13) & (hour < 17)])
    assert afternoon > 3 * night
    cpu = x[:, frontend, 5]
    assert np.median(cpu[(hour >= 13) & (hour < 17)]) > np.median(cpu[(hour >= 2) & (hour < 6)])


def test_weekly_seasonality_weekend_quieter() -> None:
    at = timedelta(hours=14)
    assert seasonality(SATURDAY + at) == pytest.approx(0.65 * seasonality(WEDNESDAY + at))
    rates = []
    for day_start in (WEDNESDAY, SATURDAY):
        sim = Simulator(start=day_start + at, hours=0.25, seed=5, faults=[], spikes_per_day=0)
        rates.append(np.median(collect(sim)[:, 0, 0]))
    assert 0.55 < rates[1] / rates[0] < 0.75


# --- faults -----------------------------------------------------------------------------------

# Robust sigma floor per signal, so that a flat baseline (no errors at night) cannot make a
# tiny change look large.
SIGMA_FLOOR = {"error_rate": 0.003, "request_rate": 1.0, "cpu": 1.0, "memory": 0.3, "disk": 0.1}


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_kind_moves_its_root_signal(day, kind: str) -> None:
    sim, x = day
    fault = next(f for f in sim.faults if f.kind == kind)
    j = sim.topology.index(fault.service)
    a, b = tick_of(sim, fault.start), tick_of(sim, fault.end)
    signal = FAULT_SIGNALS[kind][0]
    k = SIGNALS.index(signal)
    before, during = x[a - 180 : a, j, k], x[a:b, j, k]
    shift = robust_shift(before, during, SIGMA_FLOOR.get(signal, 0.0))
    expected_sign = -1 if kind == "dependency_outage" else 1  # its request rate collapses
    assert expected_sign * shift > 6, (fault, signal, shift)
    # ... for the whole fault, not only on average: 90 % of its ticks are beyond 4 sigmas
    center = np.median(before)
    sigma = max(1.4826 * np.median(np.abs(before - center)), SIGMA_FLOOR.get(signal, 0.0))
    beyond = expected_sign * (during - center) > 4 * sigma
    if kind not in ("memory_leak", "disk_fill"):  # ramps start from the normal level
        assert beyond.mean() > 0.9, (fault, beyond.mean())


def test_services_outside_affected_stay_normal(day) -> None:
    sim, x = day
    p50, errors = SIGNALS.index("latency_p50"), SIGNALS.index("error_rate")
    for fault in sim.faults:
        a, b = tick_of(sim, fault.start), tick_of(sim, fault.end)
        for service in set(sim.services) - set(fault.affected):
            j = sim.topology.index(service)
            ratio = np.median(x[a:b, j, p50]) / np.median(x[a - 180 : a, j, p50])
            assert 0.85 < ratio < 1.18, (fault.id, service, ratio)
            change = np.median(x[a:b, j, errors]) - np.median(x[a - 180 : a, j, errors])
            assert abs(change) < 0.01, (fault.id, service, change)


def stack(states: list) -> dict[str, np.ndarray]:
    fields = ("request_rate", "latency_ms", "error_rate", "cpu", "memory", "disk")
    return {f: np.array([getattr(s, f) for s in states]) for f in fields}


def test_faults_change_only_their_affected_services_and_only_while_active(day) -> None:
    """Against the same seed without faults, the true state differs only where and while
    a fault says so (load shifts below the visibility threshold aside)."""
    sim, _ = day
    clean = Simulator(sim.topology, sim.start, sim.hours, sim.seed, faults=[])
    faulty, normal = stack(list(sim.states())), stack(list(clean.states()))
    ok = np.ones((sim.n_ticks, len(sim.services)), dtype=bool)  # no spike in either run
    for spike in (*sim.spikes, *clean.spikes):
        ok[tick_of(sim, spike.ts), sim.topology.index(spike.service)] = False
    in_fault = np.zeros_like(ok)
    for fault in sim.faults:
        a, b = tick_of(sim, fault.start), tick_of(sim, fault.end)
        in_fault[a:b] = True
        outside = [sim.topology.index(s) for s in sim.services if s not in fault.affected]
        mask = ok[a:b, outside]
        for field, tolerance in (("request_rate", 0.1), ("latency_ms", 0.05)):
            ratio = faulty[field][a:b, outside] / normal[field][a:b, outside]
            assert (np.abs(ratio - 1)[mask] < tolerance).all(), (fault.id, field)
        diff = faulty["error_rate"][a:b, outside] - normal["error_rate"][a:b, outside]
        assert (np.abs(diff)[mask] < 0.005).all(), fault.id
    calm = ok & ~in_fault
    for field in faulty:
        assert np.allclose(faulty[field][calm], normal[field][calm]), field


def test_faults_are_reported_in_service_states() -> None:
    fault = make_fault(
        "error_burst",
        "cart-service",
        WEDNESDAY + timedelta(minutes=5),
        WEDNESDAY + timedelta(minutes=8),
    )
    sim = Simulator(start=WEDNESDAY, hours=0.2, seed=2, faults=[fault])
    states = list(sim.states())
    assert [s.tick for s in states] == list(range(sim.n_ticks))
    active = [s.ts for s in states if s.faults == (fault,)]
    assert active[0] == fault.start and active[-1] == fault.end - timedelta(seconds=10)
    assert len(active) == 18
    j = sim.topology.index("cart-service")
    assert states[35].error_rate[j] > 0.1 > states[25].error_rate[j]


def _around(fault: Fault, seed: int = 4) -> tuple[Simulator, np.ndarray, slice, slice]:
    """A run from 30 min before ``fault`` to 30 min after it, and its before/during ticks."""
    start = fault.start - timedelta(minutes=30)
    hours = (fault.duration + timedelta(hours=1)) / timedelta(hours=1)
    sim = Simulator(start=start, hours=hours, seed=seed, faults=[fault], spikes_per_day=0)
    a, b = tick_of(sim, fault.start), tick_of(sim, fault.end)
    return sim, collect(sim), slice(0, a), slice(a, b)


def test_dependency_outage_propagates_to_callers() -> None:
    t0 = WEDNESDAY + timedelta(hours=15)  # near the daily peak, where traffic is flat
    fault = make_fault("dependency_outage", "catalog-cache", t0, t0 + timedelta(minutes=20))
    sim, x, before, during = _around(fault)
    topo = sim.topology
    root = topo.index("catalog-cache")
    assert np.median(x[during, root, 0]) < 0.1 * np.median(x[before, root, 0])
    assert np.median(x[during, root, 4]) > 0.8
    callers = set(topo.callers_of("catalog-cache"))
    assert (
        set(topo.direct_callers("catalog-cache"))
        <= set(fault.affected)
        <= callers | {"catalog-cache"}
    )
    for service in fault.affected[1:]:
        j = topo.index(service)
        error_shift = robust_shift(x[before, j, 4], x[during, j, 4], SIGMA_FLOOR["error_rate"])
        assert error_shift > 6, (service, error_shift)
    for service in topo.direct_callers("catalog-cache"):
        j = topo.index(service)
        assert np.median(x[during, j, 4]) > 0.2
        assert np.median(x[during, j, 1]) > 1.8 * np.median(x[before, j, 1])
    # attenuated with distance: the frontend sees fewer errors than the direct callers
    frontend, catalog = topo.index("frontend"), topo.index("catalog-service")
    assert np.median(x[during, frontend, 4]) < np.median(x[during, catalog, 4])


def test_traffic_surge_propagates_to_callees() -> None:
    t0 = WEDNESDAY + timedelta(hours=15)  # near the daily peak, where traffic is flat
    fault = make_fault("traffic_surge", "api-gateway", t0, t0 + timedelta(minutes=20))
    sim, x, before, during = _around(fault)
    topo = sim.topology
    factor = fault.params["rate_factor"]
    root = topo.index("api-gateway")
    ratio = np.median(x[during, root, 0]) / np.median(x[before, root, 0])
    assert 0.8 * factor < ratio < 1.3 * factor
    assert set(fault.affected) == {"api-gateway", *topo.callees_of("api-gateway")}
    for service in topo.callees_of("api-gateway"):
        j = topo.index(service)
        assert np.median(x[during, j, 0]) > 1.4 * np.median(x[before, j, 0]), service
        assert np.median(x[during, j, 5]) > np.median(x[before, j, 5]) + 10, service  # cpu
    for service in ("frontend", "search-api"):  # upstream and beside: unchanged
        j = topo.index(service)
        assert 0.85 < np.median(x[during, j, 0]) / np.median(x[before, j, 0]) < 1.15


def test_memory_leak_ramps_and_restarts() -> None:
    t0 = WEDNESDAY + timedelta(hours=15)  # near the daily peak, where traffic is flat
    fault = make_fault(
        "memory_leak", "cart-service", t0, t0 + timedelta(minutes=30), params={"target": 95.0}
    )
    sim, x, before, during = _around(fault)
    memory = x[:, sim.topology.index("cart-service"), SIGNALS.index("memory")]
    ramp = memory[during]
    assert ramp[-1] > 92 and ramp[:30].mean() < ramp[-30:].mean() - 20
    assert abs(np.median(memory[during.stop + 1 :]) - np.median(memory[before])) < 3


# --- ground truth and arguments ---------------------------------------------------------------


def test_ground_truth_round_trips_and_rebuilds_the_run() -> None:
    sim = Simulator(hours=6, seed=11)
    truth = json.loads(json.dumps(sim.ground_truth()))  # plain JSON, no custom encoder
    assert truth["seed"] == 11 and truth["interval_seconds"] == 10
    assert truth["signals"] == list(SIGNALS)
    assert [Fault.from_dict(f) for f in truth["faults"]] == list(sim.faults)
    assert [Deploy.from_dict(d) for d in truth["deploys"]] == list(sim.deploys)
    assert Topology.from_dict(truth["topology"]) == sim.topology
    again = Simulator.from_ground_truth(truth)
    assert again.ground_truth() == sim.ground_truth()
    assert list(islice(again.ticks(), 30)) == list(islice(sim.ticks(), 30))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": datetime(2024, 1, 1)},  # naive
        {"seed": -1},
        {"seed": 1.5},
        {"hours": 0},
        {"interval_seconds": -10},
        {"spikes_per_day": -1},
    ],
)
def test_simulator_rejects_bad_arguments(kwargs) -> None:
    with pytest.raises(ValueError):
        Simulator(**{"hours": 1, "faults": [], **kwargs})


# --- spikes -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spiky() -> tuple[Simulator, np.ndarray]:
    sim = Simulator(start=WEDNESDAY, hours=12, seed=9, faults=[], spikes_per_day=12)
    return sim, collect(sim)


def test_spikes_are_isolated_single_ticks(spiky) -> None:
    sim, x = spiky
    assert len(sim.spikes) > 50
    last: dict[str, int] = {}
    for spike in sim.spikes:
        i = tick_of(sim, spike.ts)
        assert i - last.get(spike.service, -100) >= 30  # at least 5 min apart per service
        last[spike.service] = i
    # In the true state, a spike changes its service at its tick and nothing else.
    without = stack(list(Simulator(sim.topology, sim.start, sim.hours, sim.seed, faults=[],
                                   spikes_per_day=0).states()))  # fmt: skip
    with_spikes = stack(list(sim.states()))
    changed = np.zeros((sim.n_ticks, len(sim.services)), dtype=bool)
    for field in with_spikes:
        changed |= ~np.isclose(with_spikes[field], without[field])
    expected = np.zeros_like(changed)
    for spike in sim.spikes:
        expected[tick_of(sim, spike.ts), sim.topology.index(spike.service)] = True
    assert (changed == expected).all()
    # In the metrics, it stands out from both neighbours (where counts are not too small).
    for spike in sim.spikes:
        i, j = tick_of(sim, spike.ts), sim.topology.index(spike.service)
        k = SIGNALS.index(spike.signals[0])
        value, prev, nxt = x[i, j, k], x[i - 1, j, k], x[i + 1, j, k]
        busy = x[i - 1, j, 0] >= 30  # requests per second
        if spike.kind == "latency" or (spike.kind == "traffic" and busy):
            assert value > 1.3 * max(prev, nxt), spike
        elif spike.kind == "errors" and busy:
            assert value > max(prev, nxt) + 0.02, spike
        elif spike.kind == "cpu":
            assert value > max(prev, nxt) + 10 or value > 95, spike


def test_no_run_of_three_anomalous_points_without_a_fault(spiky) -> None:
    """What a detector that needs 3 anomalous points in a row would see: nothing to alert on."""
    _, x = spiky
    kept = [SIGNALS.index(s) for s in ("request_rate", "latency_p50", "latency_p95", "latency_p99")]
    series = np.concatenate([np.log(x[:, :, kept]), x[:, :, 5:]], axis=2)  # + cpu, memory, disk
    residual = series[15:-15] - np.median(sliding_window_view(series, 31, axis=0), axis=-1)
    sigma = 1.4826 * np.median(np.abs(residual), axis=0)
    flagged = np.abs(residual) > 6 * sigma
    assert flagged.sum() > 20  # the spikes are there ...
    runs = flagged[:-2] & flagged[1:-1] & flagged[2:]
    assert not runs.any()  # ... but never three in a row


# --- pacing and docs --------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(("speed", "wait"), [(1.0, 10.0), (4.0, 2.5)])
def test_pace_waits_for_simulated_time(speed: float, wait: float) -> None:
    batches = list(Simulator(hours=0.02, seed=0, faults=[]).ticks())
    clock = FakeClock()
    out = list(pace(batches, speed, clock=clock, sleep=clock.sleep))
    assert out == batches
    assert clock.slept == pytest.approx([wait] * (len(batches) - 1))


def test_pace_passes_through_without_speed_and_checks_it() -> None:
    events = [{"ts": "2024-01-01T00:00:00Z"}, {"ts": "2024-01-01T00:00:30Z"}, b"garbage"]
    clock = FakeClock()
    assert list(pace(events, None, clock=clock, sleep=clock.sleep)) == events
    assert clock.slept == []
    assert list(pace(events, 10.0, clock=clock, sleep=clock.sleep)) == events
    assert clock.slept == pytest.approx([3.0])
    with pytest.raises(ValueError, match="speed"):
        pace(events, 0.0)


def test_docstring_examples() -> None:
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    from airis.sources.simulator import pacing, traffic

    results = [doctest.testmod(m, optionflags=flags) for m in (simulator, traffic, pacing)]
    assert sum(r.attempted for r in results) > 10
    assert [r.failed for r in results] == [0, 0, 0]
