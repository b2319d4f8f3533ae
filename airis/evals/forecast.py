"""`airis eval forecast`: forecast accuracy on NAB, and how early resource exhaustion is warned.

1. **Forecasts** — `IntervalForecaster` runs online over every ``realKnownCause`` series of
   NAB (one configuration for all; the season is one day of points at the series' median
   step). At each point it forecasts ``max(horizons)`` steps ahead; the forecast of ``y[t]``
   made ``h`` steps earlier is compared with ``y[t]`` and with the seasonal-naive forecast
   ``y[t - season]`` on the same points: every ``t >= 2 * season`` (the forecaster has seen
   a full season before the first scored target). Reported per series and ``h``: sMAPE (in
   %, ``200 |y - f| / (|y| + |f|)``, 0 where both are 0), MASE (mean absolute error over the
   in-sample mean absolute seasonal difference ``|y[t] - y[t - season]|`` of the whole
   series, so seasonal-naive scores about 1), the empirical coverage of the prediction
   intervals, and the improvement of sMAPE over seasonal-naive in %. Overall: the means
   over the series (each series weighs the same) and the median per-series improvement.
2. **Exhaustion** — simulated days (`Simulator`, one seed each) until at least ``faults``
   ``memory_leak``/``disk_fill`` faults; every service's ``memory`` and ``disk`` series
   (measured, with noise) goes through its own `ExhaustionPredictor`. For each fault: the
   lead time of the first warning on its root's signal (between the fault's start and 10
   minutes after its end) before the first measured value at or over the threshold, or
   missed. Warnings that match no leak/fill fault are false warnings.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from airis.cli.common import SHARED_DATA, console, write_json
from airis.operators.planning.capacity import ExhaustionPredictor, ExhaustionWarning
from airis.operators.planning.forecaster import IntervalForecaster
from airis.sources.simulator import Simulator

__all__ = ["eval_capacity", "eval_forecast", "eval_nab_forecasts", "print_eval_forecast"]

#: The category of NAB series the forecasts are scored on.
CATEGORY = "realKnownCause"
HORIZONS = (1, 12)
#: Simulated faults whose exhaustion is predicted, and the signal each one fills.
FAULT_SIGNAL = {"memory_leak": "memory", "disk_fill": "disk"}
#: How long after a fault's end a warning still counts as about that fault.
GRACE = timedelta(minutes=10)
#: Target: warned at least this long before the crossing.
LEAD_TARGET = timedelta(minutes=15)

Progress = Callable[[str], None]


def eval_forecast(
    nab_data: Path,
    *,
    series: Sequence[str] | None = None,
    faults: int = 24,
    first_seed: int = 1,
    horizons: Sequence[int] = HORIZONS,
    threshold: float = 90.0,
    warn_within_seconds: float = 3600.0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Both parts (see the module docstring); ``series``: file stems to score (default all)."""
    started = time.perf_counter()
    result = {
        "nab": eval_nab_forecasts(nab_data, series=series, horizons=horizons, progress=progress),
        "capacity": eval_capacity(
            faults,
            first_seed,
            threshold=threshold,
            warn_within_seconds=warn_within_seconds,
            progress=progress,
        ),
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


# ---- forecasts on NAB ----------------------------------------------------------------------


def eval_nab_forecasts(
    nab_data: Path,
    *,
    series: Sequence[str] | None = None,
    horizons: Sequence[int] = HORIZONS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """sMAPE, MASE and interval coverage per NAB series and horizon, vs seasonal-naive."""
    folder = nab_data / "data" / CATEGORY
    paths = sorted(folder.glob("*.csv"))
    if series is not None:
        paths = [p for p in paths if p.stem in set(series)]
    if not paths:
        raise FileNotFoundError(f"no NAB {CATEGORY} series under {folder}")
    rows = []
    for path in paths:
        rows.append(_score_series(path, horizons))
        if progress:
            progress(f"eval forecast: {path.stem} scored")
    overall = {}
    for h in horizons:
        per = [r["horizons"][str(h)] for r in rows]
        ours = statistics.fmean(p["smape"] for p in per)
        naive = statistics.fmean(p["smape_seasonal_naive"] for p in per)
        overall[str(h)] = {
            "smape": round(ours, 2),
            "smape_seasonal_naive": round(naive, 2),
            "improvement_pct": round(100 * (1 - ours / naive), 1),
            "median_series_improvement_pct": round(
                statistics.median(p["improvement_pct"] for p in per), 1
            ),
            "series_improved_20pct": sum(p["improvement_pct"] >= 20 for p in per),
            "mase": round(statistics.fmean(p["mase"] for p in per), 3),
            "mase_seasonal_naive": round(
                statistics.fmean(p["mase_seasonal_naive"] for p in per), 3
            ),
            "coverage": round(statistics.fmean(p["coverage"] for p in per), 3),
        }
    return {"category": CATEGORY, "series": rows, "overall": overall}


def _score_series(path: Path, horizons: Sequence[int]) -> dict[str, Any]:
    stamps, values = _read_series(path)
    step = statistics.median((b - a).total_seconds() for a, b in itertools.pairwise(stamps))
    season = max(2, round(86400 / step))
    y = np.asarray(values)
    n, top = len(y), max(horizons)
    if n <= 2 * season + top:
        raise ValueError(f"{path.name}: {n} points is too short for a season of {season}")
    model = IntervalForecaster(horizon=top, season=season)
    mean = np.empty((n, top))
    lower = np.empty((n, top))
    upper = np.empty((n, top))
    started = time.perf_counter()
    for t in range(n):
        model.learn_one(float(y[t]))
        f = model.forecast()
        mean[t], lower[t], upper[t] = f.mean, f.lower, f.upper
    seconds = time.perf_counter() - started
    scale = float(np.mean(np.abs(y[season:] - y[:-season])))
    targets = np.arange(2 * season, n)
    actual, naive = y[targets], y[targets - season]
    out: dict[str, Any] = {}
    for h in horizons:
        made = targets - h
        ours = mean[made, h - 1]
        s_ours, s_naive = _smape(actual, ours), _smape(actual, naive)
        inside = (actual >= lower[made, h - 1]) & (actual <= upper[made, h - 1])
        out[str(h)] = {
            "smape": round(s_ours, 2),
            "smape_seasonal_naive": round(s_naive, 2),
            "improvement_pct": round(100 * (1 - s_ours / s_naive), 1) if s_naive else 0.0,
            "mase": round(float(np.mean(np.abs(actual - ours))) / scale, 3),
            "mase_seasonal_naive": round(float(np.mean(np.abs(actual - naive))) / scale, 3),
            "coverage": round(float(np.mean(inside)), 3),
        }
    return {
        "series": path.stem,
        "points": n,
        "step_seconds": step,
        "season": season,
        "scored": len(targets),
        "zero_share": round(float(np.mean(y == 0)), 3),
        "updates_per_second": round(n / seconds),
        "horizons": out,
    }


def _read_series(path: Path) -> tuple[list[datetime], list[float]]:
    stamps, values = [], []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            stamps.append(datetime.fromisoformat(row["timestamp"]))
            values.append(float(row["value"]))
    return stamps, values


def _smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    denominator = np.abs(actual) + np.abs(forecast)
    safe = np.where(denominator > 0, denominator, 1.0)
    terms = np.where(denominator > 0, 200 * np.abs(actual - forecast) / safe, 0.0)
    return float(np.mean(terms))


# ---- exhaustion warnings on simulated faults -----------------------------------------------


def eval_capacity(
    faults: int = 24,
    first_seed: int = 1,
    *,
    threshold: float = 90.0,
    warn_within_seconds: float = 3600.0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Lead time of exhaustion warnings on simulated leak/fill faults, and false warnings."""
    outcomes: list[dict[str, Any]] = []
    false_warnings: list[dict[str, Any]] = []
    warnings_total = 0
    seed = first_seed
    while len(outcomes) < faults:
        day = _capacity_day(seed, threshold, warn_within_seconds)
        outcomes += day["outcomes"]
        false_warnings += day["false"]
        warnings_total += day["warnings"]
        if progress:
            progress(f"eval forecast: seed {seed}: {len(outcomes)}/{faults} leak/fill faults")
        seed += 1
    leads = [o["lead_minutes"] for o in outcomes]
    early = sum(lead is not None and lead >= LEAD_TARGET.total_seconds() / 60 for lead in leads)
    warned = [lead for lead in leads if lead is not None]
    return {
        "faults": len(outcomes),
        "seeds": list(range(first_seed, seed)),
        "threshold": threshold,
        "warn_within_seconds": warn_within_seconds,
        "warned_15min_ahead": early,
        "share_warned_15min_ahead": round(early / len(outcomes), 3),
        "missed": sum(lead is None for lead in leads),
        "lead_minutes_min": round(min(warned), 1) if warned else None,
        "lead_minutes_median": round(statistics.median(warned), 1) if warned else None,
        "eta_error_pct_median": _median_or_none(o["eta_error_pct"] for o in outcomes),
        "warnings": warnings_total,
        "false_warnings": len(false_warnings),
        "false_warning_list": false_warnings,
        "outcomes": outcomes,
    }


def _capacity_day(seed: int, threshold: float, warn_within_seconds: float) -> dict[str, Any]:
    sim = Simulator(hours=24.0, seed=seed)
    predictors: dict[tuple[str, str], ExhaustionPredictor] = {}
    warnings: list[tuple[tuple[str, str], ExhaustionWarning]] = []
    over: dict[tuple[str, str], list[datetime]] = {}
    for tick in sim.ticks():
        for event in tick:
            if event["signal"] not in ("memory", "disk"):
                continue
            key = (event["service"], event["signal"])
            predictor = predictors.get(key)
            if predictor is None:
                predictor = predictors[key] = ExhaustionPredictor(
                    threshold=threshold, warn_within_seconds=warn_within_seconds
                )
            warning = predictor.update_one(event["ts"], event["value"])
            if warning is not None:
                warnings.append((key, warning))
            if event["value"] >= threshold:
                over.setdefault(key, []).append(event["ts"])
    matched: set[int] = set()
    outcomes = []
    for fault in sim.faults:
        if fault.kind not in FAULT_SIGNAL:
            continue
        key = (fault.service, FAULT_SIGNAL[fault.kind])
        crossing = next((t for t in over.get(key, ()) if fault.start <= t <= fault.end), None)
        mine = [
            (i, w)
            for i, (k, w) in enumerate(warnings)
            if k == key and fault.start <= w.ts <= fault.end + GRACE
        ]
        matched.update(i for i, _ in mine)
        first = mine[0][1] if mine else None
        lead = None
        eta_error = None
        if first is not None and crossing is not None and first.ts < crossing:
            lead_s = (crossing - first.ts).total_seconds()
            lead = round(lead_s / 60, 1)
            eta_error = round(100 * (first.eta_seconds - lead_s) / lead_s, 1)
        outcomes.append(
            {
                "seed": seed,
                "fault_id": fault.id,
                "kind": fault.kind,
                "service": fault.service,
                "minutes": round(fault.duration.total_seconds() / 60),
                "target": fault.params.get("target"),
                "crossed_after_minutes": None
                if crossing is None
                else round((crossing - fault.start).total_seconds() / 60, 1),
                "warnings": len(mine),
                "lead_minutes": lead,
                "first_eta_minutes": None if first is None else round(first.eta_seconds / 60, 1),
                "eta_error_pct": eta_error,
            }
        )
    false = [
        {
            "seed": seed,
            "service": k[0],
            "signal": k[1],
            "ts": w.ts.isoformat(),
            "value": round(w.value, 2),
            "eta_minutes": round(w.eta_seconds / 60, 1),
        }
        for i, (k, w) in enumerate(warnings)
        if i not in matched
    ]
    return {"outcomes": outcomes, "false": false, "warnings": len(warnings)}


def _median_or_none(values: Any) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return round(statistics.median(kept), 1) if kept else None


# ---- printing ------------------------------------------------------------------------------


def print_eval_forecast(result: dict[str, Any], console: Console) -> None:
    nab = result["nab"]
    horizons = list(nab["overall"])
    for h in horizons:
        table = Table(
            title=f"Forecasts {h} step(s) ahead on NAB {nab['category']}: ours vs seasonal-naive"
        )
        for name in ("series", "season", "sMAPE %", "SN", "Δ %", "MASE", "SN", "coverage"):
            table.add_column(name, justify="left" if name == "series" else "right")
        for row in [*nab["series"], None]:
            r = nab["overall"][h] if row is None else row["horizons"][h]
            table.add_row(
                "mean" if row is None else row["series"],
                "" if row is None else str(row["season"]),
                f"{r['smape']:.2f}", f"{r['smape_seasonal_naive']:.2f}",
                f"{r['improvement_pct']:+.0f}", f"{r['mase']:.2f}",
                f"{r['mase_seasonal_naive']:.2f}", f"{r['coverage']:.2f}",
                style="bold" if row is None else None,
            )  # fmt: skip
        console.print(table)
        o = nab["overall"][h]
        console.print(
            f"h={h}: mean sMAPE {o['improvement_pct']:+.1f} % vs seasonal-naive (target ≥ +20 %);"
            f" median per-series {o['median_series_improvement_pct']:+.1f} %;"
            f" {o['series_improved_20pct']}/{len(nab['series'])} series ≥ 20 % better"
        )
    cap = result["capacity"]
    seeds = cap["seeds"]
    table = Table(
        title=f"Exhaustion warnings on {cap['faults']} simulated leak/fill faults"
        f" (seeds {seeds[0]}..{seeds[-1]}, threshold {cap['threshold']:g} %)"
    )
    for column in ("metric", "value", "target"):
        table.add_column(column)
    rows = [
        ("warned ≥ 15 min ahead", f"{cap['warned_15min_ahead']}/{cap['faults']}"
         f" ({100 * cap['share_warned_15min_ahead']:.0f} %)", "≥ 90 %"),
        ("missed (no warning before the crossing)", str(cap["missed"]), ""),
        ("lead time, min / median (minutes)",
         f"{cap['lead_minutes_min']} / {cap['lead_minutes_median']}", ""),
        ("first ETA error, median (% of the lead)", str(cap["eta_error_pct_median"]), ""),
        ("warnings, of which false (no leak/fill)",
         f"{cap['warnings']}, {cap['false_warnings']}", ""),
    ]  # fmt: skip
    for name, value, target in rows:
        table.add_row(name, value, target)
    console.print(table)
    console.print(f"{result.get('seconds', '?')} s")


def register(benchmarks: argparse._SubParsersAction) -> None:
    """``airis eval forecast``."""
    parser = benchmarks.add_parser(
        "forecast", help="forecast sMAPE/MASE on NAB; exhaustion warning lead on simulated faults"
    )
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "nab")
    parser.add_argument(
        "--series", action="append", help="only this realKnownCause series (file stem; repeatable)"
    )
    parser.add_argument(
        "--faults", type=int, default=24, help="leak/fill faults to score (default 24)"
    )
    parser.add_argument(
        "--first-seed", type=int, default=1, help="simulator seed of the first day (default 1)"
    )
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.set_defaults(run=_command)


def _command(args: argparse.Namespace) -> int:
    from airis.settings import Settings

    settings = Settings()
    result = eval_forecast(
        args.data,
        series=args.series,
        faults=args.faults,
        first_seed=args.first_seed,
        threshold=settings.capacity_threshold_percent,
        warn_within_seconds=settings.capacity_warn_within_seconds,
        progress=console.print,
    )
    print_eval_forecast(result, Console())
    write_json(args.json, result)
    return 0
