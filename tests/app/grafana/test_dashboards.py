"""The provisioned dashboards: the files are what the code renders, each passes the Grafana
Foundation SDK's strict schema (built from the Go module proxy, `deploy/grafana/checker`),
and every query runs on the embedded ClickHouse after a demo and returns what its panel draws."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from airis.app.grafana import DASHBOARDS, DEFAULT_DIR, render

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def checker() -> Path:
    """The schema checker, built once per change of its sources (cached under var/)."""
    done = subprocess.run(
        ["bash", str(REPO / "deploy/grafana/build-checker.sh")],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


def _check(checker: Path, *files: Path) -> list[dict]:
    done = subprocess.run([str(checker), *map(str, files)], capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_the_committed_dashboards_are_what_the_code_renders():
    committed = sorted(p.stem for p in DEFAULT_DIR.glob("*.json"))
    assert committed == sorted(DASHBOARDS)
    stale = [n for n in DASHBOARDS if (DEFAULT_DIR / f"{n}.json").read_text() != render(n)]
    assert stale == [], "run `airis dashboards write` and commit the result"


@pytest.mark.integration
def test_every_dashboard_passes_the_strict_schema(checker):
    results = _check(checker, *sorted(DEFAULT_DIR.glob("*.json")))
    assert len(results) == len(DASHBOARDS)
    assert [r for r in results if not r["ok"]] == []


@pytest.mark.integration
def test_the_schema_check_refuses_an_unknown_field_and_a_missing_option(checker, tmp_path):
    board = json.loads(render("alerts-incidents"))
    unknown, missing = json.loads(json.dumps(board)), json.loads(json.dumps(board))
    unknown["panels"][0]["colour"] = "red"
    stat = next(p for p in missing["panels"] if p["type"] == "stat")
    del stat["options"]["reduceOptions"]
    wrong_type = json.loads(json.dumps(board))
    wrong_type["panels"][0]["gridPos"]["w"] = "wide"
    files = []
    for name, model in (("unknown", unknown), ("missing", missing), ("type", wrong_type)):
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(model))
    results = _check(checker, *files)
    assert [r["ok"] for r in results] == [False, False, False]
    assert "colour" in results[0]["errors"][0]
    assert "reduceOptions" in results[1]["errors"][0]


@pytest.fixture(scope="module")
def demo_checks(demo_dir: Path, airis_cli, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`airis dashboards check` over the stores of the suite's demo (its whole range)."""
    out = tmp_path_factory.mktemp("dashboards") / "checks.json"
    checked = airis_cli("dashboards", "check", "--json", str(out), data_dir=demo_dir)
    assert out.exists(), checked.stderr[-3000:]
    result = json.loads(out.read_text())
    result["returncode"], result["stderr"] = checked.returncode, checked.stderr
    from airis.sinks.chdb_store import ChdbStore

    tables = {t for q in result["queries"] for t in re.findall(r"\bFROM (\w+)", q["sql"])}
    with ChdbStore(demo_dir / "chdb") as store:  # the subprocesses are done with it
        result["rows"] = {
            t: store.query(f"SELECT count() AS n FROM {t}")[0]["n"] for t in sorted(tables)
        }
    return result


@pytest.mark.slow
def test_every_query_runs_on_a_demo_store_and_returns_what_its_panel_draws(demo_checks):
    queries = demo_checks["queries"]
    assert demo_checks["returncode"] == 0, demo_checks["stderr"][-2000:]
    assert [(q["dashboard"], q["panel"], q["problem"]) for q in queries if q["problem"]] == []
    drawn = {(q["dashboard"], q["panel"]) for q in queries}
    expected = {(name, p.title) for name, build in DASHBOARDS.items() for p in build().panels}
    assert expected - drawn == set()  # every panel ran (a repeated one once per value)


@pytest.mark.slow
def test_every_panel_shows_data_where_the_demo_stored_some(demo_checks):
    rows = demo_checks["rows"]
    assert rows["metrics"] > 0 and rows["incidents"] > 0 and rows["forecasts"] > 0
    empty = [
        (q["dashboard"], q["panel"], q["ref_id"])
        for q in demo_checks["queries"]
        if q["rows"] == 0 and all(rows[t] > 0 for t in re.findall(r"\bFROM (\w+)", q["sql"]))
    ]
    assert empty == []
