"""Pickles made before the operators moved into families (recovery snapshots, stored
objects) still load: the former module paths import as views of the new modules."""

from __future__ import annotations

import importlib
import pickle
import random
import re
from datetime import UTC, datetime, timedelta

import pytest

from airis.events import Anomaly, MetricPoint
from airis.operators import FORMER_MODULES
from airis.operators.incidents import IncidentGrouper
from airis.operators.planning import ServicePlanner
from airis.operators.windowing import ServiceWindowDetector

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def _as_before_the_move(state: object) -> bytes:
    """``state`` pickled with every class named by its module path before the move."""
    data = pickle.dumps(state, protocol=2)  # protocol 2 names classes in plain text lines
    new_to_old = {
        f"airis.operators.{new}": f"airis.operators.{old}" for old, new in FORMER_MODULES.items()
    }
    new_to_old["airis.operators.incidents.grouping"] = "airis.operators.incidents"
    # Whole module names only (a GLOBAL opcode ends its module name with a newline): a module
    # added since the move, such as ``planning.forecaster_rows``, keeps its path.
    names = "|".join(re.escape(n) for n in sorted(new_to_old, key=len, reverse=True))
    pattern = re.compile(f"(?:{names})(?=\n)")
    old = pattern.sub(lambda m: new_to_old[m.group(0)], data.decode("latin-1"))
    assert old != data.decode("latin-1")
    return old.encode("latin-1")


@pytest.mark.parametrize("old", sorted(FORMER_MODULES))
def test_every_former_module_imports_as_its_new_home(old):
    former = importlib.import_module(f"airis.operators.{old}")
    moved = importlib.import_module(f"airis.operators.{FORMER_MODULES[old]}")
    public = [name for name in vars(moved) if not name.startswith("__")]
    assert public
    assert all(getattr(former, name) is getattr(moved, name) for name in public)


def test_a_service_detector_pickled_before_the_move_resumes_identically():
    rng = random.Random(42)
    points = [
        MetricPoint(
            ts=T0 + timedelta(seconds=10 * i), service="api", signal=s, value=rng.gauss(50, 3)
        )
        for i in range(400)
        for s in ("cpu", "latency_p95")
    ]
    original = ServiceWindowDetector(window_seconds=60)
    original.update_many(points[:400], now=0.0)
    restored = pickle.loads(_as_before_the_move(original))
    assert type(restored) is ServiceWindowDetector
    later = 10.0
    assert restored.update_many(points[400:], now=later) == original.update_many(
        points[400:], now=later
    )


def test_planner_and_incident_state_pickled_before_the_move_go_on_identically():
    planner = ServicePlanner(step_seconds=60, season_steps=None)
    values = [{"cpu": 40.0 + i % 5, "memory": 50.0 + i / 10} for i in range(120)]
    for i, v in enumerate(values[:60]):
        planner.update_one(T0 + timedelta(seconds=60 * i), v)
    restored = pickle.loads(_as_before_the_move(planner))
    assert type(restored) is ServicePlanner
    for i, v in enumerate(values[60:], 60):
        ts = T0 + timedelta(seconds=60 * i)
        assert restored.update_one(ts, v) == planner.update_one(ts, v)

    grouper = IncidentGrouper(confirm_after=1)
    grouper.add_one(
        Anomaly(
            id="a1", service="api", signal="cpu", kind="spike", window_start=T0,
            window_end=T0 + timedelta(seconds=10), score=0.999, observed=99, expected=40,
            lower=35, upper=45, state="seasonal", detector="airis",
        )
    )  # fmt: skip
    restored = pickle.loads(_as_before_the_move(grouper))
    assert type(restored) is IncidentGrouper
    assert restored.close_all() == grouper.close_all() != []
