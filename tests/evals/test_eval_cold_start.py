"""`airis eval cold-start`: a fault minutes after a fresh start, with and without priors."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from airis.cli import main
from airis.evals.cold_start import DAY, DURATION, ONSET, cold_start_faults


def test_faults_come_from_the_simulator_schedule_re_timed_after_a_cold_start() -> None:
    faults = cold_start_faults(seed=1, kinds=("error_burst", "latency_spike"), start_hour=16)
    assert [f.kind for f in faults] == ["error_burst", "latency_spike"]
    for f in faults:
        # A fixed day, not the wall clock: the result must not depend on when it runs.
        assert f.start == DAY + timedelta(hours=16) + ONSET
        assert f.service in f.affected


@pytest.mark.slow
def test_an_error_burst_minutes_after_start_alerts_only_with_priors(tmp_path: Path) -> None:
    out = tmp_path / "cold.json"
    hours = ["--start-hour", "4", "--start-hour", "12", "--start-hour", "20"]
    assert main(["eval", "cold-start", "--kind", "error_burst", *hours, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [r["start"][11:16] for r in result["runs"]["priors"]] == ["04:05", "12:05", "20:05"]
    for with_priors, without in zip(
        result["runs"]["priors"], result["runs"]["no_priors"], strict=True
    ):
        assert with_priors["delay_s"] is not None and with_priors["delay_s"] <= 120
        assert with_priors["false_alerts"] == 0
        # Without them every detector is still warming up while the burst lasts. (What
        # comes after it — inside the eval's grace — depends on the simulated hour of day.)
        assert without["delay_s"] is None or without["delay_s"] > DURATION.total_seconds()
    assert {r["metric"] for r in result["scoreboard"]} >= {
        "faults alerted, 5 min after a cold start"
    }


def test_an_unknown_kind_is_refused(capsys) -> None:
    assert main(["eval", "cold-start", "--kind", "meteor_strike"]) == 2
    assert "meteor_strike" in capsys.readouterr().err


def test_the_scoreboard_refuses_a_missing_file(tmp_path: Path, capsys) -> None:
    assert main(["eval", "scoreboard", str(tmp_path / "nope.json")]) == 2
    assert "no such file" in capsys.readouterr().err
