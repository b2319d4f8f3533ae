"""`airis eval forecast` on one NAB series and one simulated day, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airis.cli import main
from airis.evals.forecast import eval_capacity, eval_nab_forecasts

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nab"
SHORT = "ec2_request_latency_system_failure"  # 4,032 five-minute points


def test_nab_forecasts_beat_seasonal_naive_on_a_short_series() -> None:
    result = eval_nab_forecasts(DATA, series=[SHORT])
    (row,) = result["series"]
    assert row["series"] == SHORT and row["season"] == 288
    for h in ("1", "12"):
        r = row["horizons"][h]
        assert r["smape"] < 0.9 * r["smape_seasonal_naive"]
        assert r["mase"] < r["mase_seasonal_naive"]
        assert 0.8 <= r["coverage"] <= 0.97
    assert result["overall"]["1"]["smape"] == row["horizons"]["1"]["smape"]


def test_capacity_on_one_simulated_day_warns_early_without_false_warnings() -> None:
    result = eval_capacity(faults=1, first_seed=1)
    assert result["seeds"] == [1] and result["faults"] >= 1
    for outcome in result["outcomes"]:
        assert outcome["lead_minutes"] is not None and outcome["lead_minutes"] >= 15
    assert result["share_warned_15min_ahead"] == 1.0
    assert result["false_warnings"] == 0


@pytest.mark.slow
def test_cli_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "forecast.json"
    code = main(
        ["eval", "forecast", "--data", str(DATA), "--series", SHORT, "--faults", "1",
         "--json", str(out)]
    )  # fmt: skip
    assert code == 0
    data = json.loads(out.read_text())
    assert data["nab"]["series"][0]["series"] == SHORT
    assert data["capacity"]["faults"] >= 1


def test_missing_data_is_an_error(tmp_path: Path) -> None:
    assert main(["eval", "forecast", "--data", str(tmp_path), "--faults", "1"]) == 1
