"""The demo's model and planning parts: its ONNX model, and what the model and planning found.

`prepare_model` trains the flow's autoencoder on the simulated day before the demo's and
promotes it in the demo's registry, so the flow scores every window with it. `summarise`
reads back what the flow stored: model scores and anomalies, drift tests, forecasts (with
how often the values fell inside their intervals), and, per memory-leak or disk-fill fault,
how long before the threshold crossing its capacity warning came.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console

from airis.app.demo_rows import MODEL_HOURS, TrainingRows
from airis.models.registry import ModelRegistry
from airis.models.train import DEFAULT_MODEL_NAME, train_and_register
from airis.settings import Settings
from airis.sinks.clickhouse_store import open_store
from airis.sources.simulator import Simulator

__all__ = ["prepare_model", "print_summary", "summarise"]

#: Faults whose resource the capacity warnings should foresee: kind → signal.
EXHAUSTION_FAULTS = {"memory_leak": "memory", "disk_fill": "disk"}


def prepare_model(
    settings: Settings,
    sim: Simulator,
    seed: int,
    console: Console,
    rows: TrainingRows | None = None,
) -> int:
    """Train on the day before ``sim`` starts, promote it; return the version. ``rows``: its
    training rows, started before (`TrainingRows.start`)."""
    registry = ModelRegistry(settings.model.model_dir)
    name = settings.onnx_model or DEFAULT_MODEL_NAME
    ready = rows.rows_for(MODEL_HOURS, seed, sim.start) if rows is not None else None
    run = train_and_register(
        registry, name, hours=MODEL_HOURS, seed=seed, end=sim.start, promote=True, rows=ready
    )
    auc = run.held_out["auc"]
    console.print(
        f"demo: ONNX model {name} v{run.version.version} trained on the simulated day before "
        f"in {run.train_seconds:.1f} s (held-out AUC {'n/a' if auc is None else f'{auc:.3f}'})"
        f", promoted in {registry.root}"
    )
    return run.version.version


def summarise(settings: Settings, sim: Simulator) -> dict[str, Any]:
    """What the model and planning steps stored (see the module docstring)."""
    threshold = settings.capacity_threshold_percent
    with open_store(settings.store) as store:

        def one(sql: str) -> dict[str, Any]:
            return store.query(sql)[0]

        model = one(
            "SELECT count() AS windows, uniqExact(version) AS versions,"
            " countIf(score >= 0.9) AS at_0_9, any(providers) AS providers"
            " FROM model_scores FINAL"
        )
        model_anomalies = one(
            "SELECT count() AS n FROM anomalies FINAL WHERE startsWith(signal, 'model_')"
        )["n"]
        drift = one(
            "SELECT uniqExact(ts) AS windows, uniqExactIf(ts, drifted = 1) AS drifted"
            " FROM drift_events FINAL"
        )
        # A forecast made at ts for step h is of the mean over the minute ending at ts + h.
        step = int(settings.forecast_step_seconds)
        coverage = one(
            "SELECT count() AS n, countIf(m.value BETWEEN f.lower AND f.upper) AS inside"
            " FROM (SELECT * FROM forecasts FINAL) AS f INNER JOIN ("
            f"  SELECT service, signal, toStartOfInterval(ts, toIntervalSecond({step})) AS start,"
            "   avg(value) AS value FROM metrics FINAL GROUP BY service, signal, start"
            ") AS m ON m.service = f.service AND m.signal = f.signal"
            f" AND m.start = f.ts + toIntervalSecond(f.horizon_seconds - {step})"
        )
        forecasts = one("SELECT count() AS n FROM forecasts FINAL")["n"]
        advice = one("SELECT count() AS n FROM scaling_recommendations FINAL")["n"]
        warnings = store.query(
            "SELECT service, signal, ts, eta_seconds FROM capacity_warnings FINAL ORDER BY ts"
            " SETTINGS date_time_output_format = 'iso'"
        )
        leads = [_lead(store, fault, warnings, threshold) for fault in _exhaustion_faults(sim)]
    matched = {w for lead in leads for w in lead.pop("_warnings")}
    return {
        "model_windows_scored": model["windows"],
        "model_versions": model["versions"],
        "model_providers": list(model["providers"] or []),
        "model_windows_at_0.9": model["at_0_9"],
        "model_anomalies": model_anomalies,
        "drift_windows": drift["windows"],
        "drift_windows_drifted": drift["drifted"],
        "forecasts": forecasts,
        "forecast_interval_coverage": (
            round(coverage["inside"] / coverage["n"], 3) if coverage["n"] else None
        ),
        "capacity_warnings": len(warnings),
        "capacity_warnings_unmatched": len(warnings) - len(matched),
        "exhaustion_faults": leads,
        "scaling_recommendations": advice,
    }


def _exhaustion_faults(sim: Simulator) -> list[Any]:
    return [f for f in sim.faults if f.kind in EXHAUSTION_FAULTS]


def _lead(store: Any, fault: Any, warnings: list[dict], threshold: float) -> dict[str, Any]:
    signal = EXHAUSTION_FAULTS[fault.kind]
    # Simulator names and our own timestamps only: nothing here comes from outside.
    window = f"'{_sql_ts(fault.start)}' AND '{_sql_ts(fault.end + timedelta(minutes=5))}'"
    crossed = store.query(
        "SELECT min(ts) AS crossed FROM metrics FINAL"
        f" WHERE service = '{fault.service}' AND signal = '{signal}'"
        f" AND value >= {float(threshold)} AND ts BETWEEN {window}"
        " SETTINGS date_time_output_format = 'iso'"
    )[0]["crossed"]
    mine = [
        w
        for w in warnings
        if w["service"] == fault.service
        and w["signal"] == signal
        and fault.start <= _ts(w["ts"]) <= fault.end
    ]
    first = _ts(mine[0]["ts"]) if mine else None
    crossing = _ts(crossed) if crossed and not str(crossed).startswith("1970") else None
    lead = (crossing - first).total_seconds() / 60 if first and crossing else None
    return {
        "fault": fault.id,
        "service": fault.service,
        "signal": signal,
        "first_warning": first.isoformat() if first else None,
        "crossed": crossing.isoformat() if crossing else None,
        "lead_minutes": round(lead, 1) if lead is not None else None,
        "_warnings": [(w["service"], w["signal"], w["ts"]) for w in mine],
    }


def _sql_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _ts(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def print_summary(console: Console, summary: dict[str, Any]) -> None:
    """One paragraph on the model and planning results."""
    leads = summary["exhaustion_faults"]
    warned = [f for f in leads if f["lead_minutes"] is not None and f["lead_minutes"] >= 15]
    lead_text = ", ".join(
        f"{f['service']} {f['signal']} "
        + (f"{f['lead_minutes']:.0f} min ahead" if f["lead_minutes"] is not None else "not warned")
        for f in leads
    )
    coverage = summary["forecast_interval_coverage"]
    console.print(
        f"ONNX model: {summary['model_windows_scored']:,} windows scored on "
        f"{', '.join(summary['model_providers']) or '-'}, {summary['model_anomalies']} model "
        f"anomalies; drift: {summary['drift_windows_drifted']}/{summary['drift_windows']} "
        f"tested windows drifted. Forecasts: {summary['forecasts']:,} "
        f"(interval coverage {'-' if coverage is None else f'{coverage:.2f}'}); "
        f"capacity warnings: {summary['capacity_warnings']} "
        f"({summary['capacity_warnings_unmatched']} matching no leak or fill); "
        f"leak/fill faults warned ≥ 15 min ahead: {len(warned)}/{len(leads)}"
        + (f" ({lead_text})" if leads else "")
        + f"; replica advice: {summary['scaling_recommendations']}"
    )
