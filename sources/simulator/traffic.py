"""The traffic and behaviour of each simulated service: the daily and weekly load curve, and
each service's drawn profile (capacity, latency, errors, resources)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from airis.sources.simulator.schedule import (
    STREAM_PROFILE,
    stream_rng,
)
from airis.sources.simulator.topology import ROLE_PROFILES, Topology

# Profile ranges common to every role (the per-role ones are in `airis.sources.simulator.topology`).
_COMMON_PROFILE: dict[str, tuple[float, float]] = {
    "cpu_idle": (2.0, 8.0),
    "gc_amplitude": (0.3, 0.8),  # percentage points of memory (about 1-3 noise sigmas)
    "gc_period": (900.0, 3600.0),  # seconds
}

# Daily curve: NIGHT of peak at TROUGH_HOUR (UTC), peak twelve hours later.
_NIGHT = 0.2


_TROUGH_HOUR = 4.0


_DAY_SHAPE = 1.5


# Weekly curve: Saturday and Sunday at WEEKEND of a weekday, with smooth RAMP_DAYS transitions.
_WEEKEND = 0.65


_RAMP_DAYS = 0.25


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


def seasonality(ts: datetime) -> float:
    """Expected external traffic at ``ts`` as a fraction of the weekday peak (UTC clock).

    Daily: 0.2 at 04:00, 1.0 at 16:00, a smooth curve in between. Weekly: Saturday and
    Sunday at 0.65 of a weekday, with 6 h transitions centred on midnight.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> round(seasonality(datetime(2024, 1, 3, 16, tzinfo=UTC)), 3)  # Wednesday afternoon
    1.0
    >>> round(seasonality(datetime(2024, 1, 6, 4, tzinfo=UTC)), 3)  # Saturday night
    0.13
    """
    ts = ts.astimezone(UTC)
    hour = ts.hour + ts.minute / 60 + ts.second / 3600
    day = (
        _NIGHT
        + (1 - _NIGHT)
        * ((1 - math.cos(2 * math.pi * (hour - _TROUGH_HOUR) / 24)) / 2) ** _DAY_SHAPE
    )
    e = (ts.weekday() + hour / 24 - 5 + _RAMP_DAYS / 2) % 7  # days since the weekend ramp began
    weekend = _smoothstep(e / _RAMP_DAYS) * _smoothstep((2 + _RAMP_DAYS - e) / _RAMP_DAYS)
    return day * (1 - (1 - _WEEKEND) * weekend)


@dataclass(frozen=True)
class _Profile:
    """Per-service constants of one run, arrays aligned with the topology's services."""

    latency_ms: np.ndarray
    sigma: np.ndarray
    error_rate: np.ndarray
    capacity: np.ndarray  # req/s at 100 % utilisation
    cpu_idle: np.ndarray
    memory: np.ndarray
    gc_amplitude: np.ndarray
    gc_period: np.ndarray
    gc_phase: np.ndarray  # seconds
    disk: np.ndarray
    disk_per_day: np.ndarray


def service_profile(topo: Topology, seed: int, peak_rate: float) -> _Profile:
    rng = stream_rng(seed, STREAM_PROFILE)
    cols: dict[str, list[float]] = {}
    for role in topo.roles:
        ranges = {**ROLE_PROFILES[role], **_COMMON_PROFILE}
        for name, (lo, hi) in ranges.items():
            cols.setdefault(name, []).append(float(rng.uniform(lo, hi)))
    a = {k: np.array(v) for k, v in cols.items()}
    capacity = topo._base_rates * peak_rate / a["peak_util"]
    return _Profile(
        latency_ms=a["latency_ms"],
        sigma=a["sigma"],
        error_rate=a["error_rate"],
        capacity=capacity,
        cpu_idle=a["cpu_idle"],
        memory=a["memory"],
        gc_amplitude=a["gc_amplitude"],
        gc_period=a["gc_period"],
        gc_phase=rng.uniform(0, 1, len(topo.services)) * a["gc_period"],
        disk=a["disk"],
        disk_per_day=a["disk_per_day"],
    )


def ar1(sd: float, tau: float, interval: float) -> tuple[float, float]:
    """(phi, innovation sd) of an AR(1) with stationary ``sd`` and correlation time ``tau``."""
    phi = math.exp(-interval / tau)
    return phi, sd * math.sqrt(1 - phi * phi)
