"""`airis eval univariate`: `airis detect`'s detector over every labelled univariate dataset.

Datasets (each a folder of ``../shared/data``):

* ``nab`` — NAB's own files and windows (``labels/combined_windows.json``);
* ``kpi_aiops2018`` — the AIOps Challenge 2018 KPIs (``data/<KPI>.csv.gz``, train then test
  rows, one stream per KPI);
* ``ms_cloud_monitoring`` — Microsoft's cloud monitoring series (``data/<domain>/<name>.csv``).

The last two are labelled point by point. Their NAB windows are built the way NAB built its
own (`nab_windows`): a file's window budget is 10 % of its rows, shared equally between its
labelled segments; each segment is widened by half its share on each side (so a detection
shortly before the labelled start is early, not false), and overlapping windows merge.
Everything is then scored with NAB's semantics (`airis.evals.nab_scorer`): probation, scaled
sigmoid, profiles, one threshold per profile chosen over a corpus.

Which corpus chooses the threshold is the honest part. Per dataset, three numbers:

* ``own`` — the threshold optimised on that dataset alone (what NAB reports for NAB);
* ``pooled`` — one threshold for all datasets;
* ``held_out`` — the threshold optimised on the *other* datasets (leave one dataset out):
  what a user whose data we never saw gets. This is the scoreboard's number.

The detector is run online, one point at a time, exactly as `airis detect` runs it (scored
before it learns); the points per second of that loop are reported too.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from airis.cli.common import SHARED_DATA, console, write_json
from airis.evals.nab_scorer import (
    PROFILES,
    ProfileScore,
    ScoredFile,
    Window,
    holdout_score,
    layout_file,
    load_windows,
    nab_score,
    parse_timestamps,
)
from airis.evals.scoreboard import ScoreRow, is_tuned_on
from airis.operators.base import SeriesDetector

__all__ = [
    "DATASETS",
    "LabelledSeries",
    "eval_univariate",
    "load_dataset",
    "nab_windows",
    "print_eval_univariate",
    "run_series",
]

#: The univariate datasets, in the order they are scored.
DATASETS = ("nab", "kpi_aiops2018", "ms_cloud_monitoring")
#: Share of a file's rows that its NAB windows cover together (NAB's own rule).
WINDOW_FRACTION = 0.10
#: Published scores on the 24-file NAB subset (standard profile), for the scoreboard's anchor.
NAB_ANCHOR = "ARTime 68.77, HTM 64.85 (own threshold, 24-file subset)"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LabelledSeries:
    """One labelled series: ``name`` is ``dataset/…/file``, ``windows`` its NAB windows."""

    name: str
    timestamps: np.ndarray
    values: np.ndarray
    windows: list[Window]

    @property
    def dataset(self) -> str:
        return self.name.split("/", 1)[0]


def nab_windows(
    timestamps: np.ndarray, labels: np.ndarray, fraction: float = WINDOW_FRACTION
) -> list[Window]:
    """NAB windows around the labelled segments of a point-labelled series.

    Each of the ``k`` segments gets ``fraction * n / k`` rows of window, half before and half
    after it; windows that touch merge into one.

    >>> ts = np.datetime64("2020-01-01T00:00") + np.arange(100).astype("timedelta64[m]")
    >>> y = np.zeros(100, dtype=int); y[40:42] = 1; y[80] = 1
    >>> [(str(a)[11:16], str(b)[11:16]) for a, b in nab_windows(ts, y)]
    [('00:38', '00:43'), ('01:18', '01:22')]
    """
    labels = np.asarray(labels).astype(bool)
    n = len(labels)
    edges = np.flatnonzero(np.diff(np.r_[0, labels.astype(np.int8), 0]))
    segments = list(zip(edges[::2], edges[1::2] - 1, strict=True))
    if not segments:
        return []
    half = int(fraction * n / len(segments)) // 2
    merged: list[list[int]] = []
    for first, last in segments:
        a, b = max(0, first - half), min(n - 1, last + half)
        if merged and a <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(timestamps[a], timestamps[b]) for a, b in merged]


def load_dataset(data_root: Path, dataset: str) -> list[LabelledSeries]:
    """Every labelled series of one dataset folder under ``data_root``."""
    folder = data_root / dataset
    if not folder.is_dir():
        raise FileNotFoundError(f"no dataset folder {folder}")
    if dataset == "nab":
        return _load_nab(folder)
    files = sorted((folder / "data").rglob("*.csv*"))
    if not files:
        raise FileNotFoundError(f"no data/*.csv(.gz) files under {folder}")
    out = []
    for path in files:
        timestamps, values, labels = _read_labelled(path)
        stem = path.name.removesuffix(".gz")
        name = "/".join([dataset, *path.relative_to(folder / "data").parent.parts, stem])
        out.append(LabelledSeries(name, timestamps, values, nab_windows(timestamps, labels)))
    return out


def _load_nab(folder: Path) -> list[LabelledSeries]:
    windows = load_windows(folder / "labels" / "combined_windows.json")
    out = []
    for name in sorted(windows):
        with (folder / "data" / name).open(newline="") as f:
            rows = list(csv.reader(f))[1:]
        timestamps = parse_timestamps([r[0] for r in rows if r])
        values = np.array([float(r[1]) for r in rows if r])
        out.append(LabelledSeries(f"nab/{name}", timestamps, values, windows[name]))
    return out


def _read_labelled(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        if header[:3] != ["timestamp", "value", "label"]:
            raise ValueError(f"{path}: expected 'timestamp,value,label', got {header!r}")
        rows = [r for r in reader if r]
    timestamps = parse_timestamps([r[0] for r in rows])
    values = np.array([_float(r[1]) for r in rows])
    labels = np.array([int(float(r[2])) for r in rows], dtype=np.int8)
    return timestamps, values, labels


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def run_series(series: LabelledSeries, detector: SeriesDetector) -> tuple[np.ndarray, float]:
    """Score every point online (scored before learned); return the scores and the seconds."""
    stamps: Iterable[datetime] = series.timestamps.astype("datetime64[us]").astype(datetime)
    values = series.values.tolist()
    scores = np.zeros(len(values))
    update = detector.update_one
    started = time.perf_counter()
    for i, (ts, value) in enumerate(zip(stamps, values, strict=True)):
        if math.isfinite(value):
            scores[i] = update(ts, value).score
    return scores, time.perf_counter() - started


def eval_univariate(
    data_root: Path,
    datasets: Sequence[str] = DATASETS,
    make_detector: Callable[[], SeriesDetector] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the detector over ``datasets`` and score them (see the module docstring).

    Returns ``{"datasets": {name: {"files", "rows", "windows", "own", "pooled", "held_out"}},
    "held_out_combined", "points_per_s", "detect_seconds", "scoreboard", …}`` where each of
    ``own``/``pooled``/``held_out`` maps a profile to its score and threshold.
    """
    if make_detector is None:
        from airis.operators.detectors.event_onset import EventOnset

        make_detector = EventOnset
    scored: list[ScoredFile] = []
    seconds, points = 0.0, 0
    for dataset in datasets:
        series = load_dataset(data_root, dataset)
        for k, s in enumerate(series, start=1):
            scores, took = run_series(s, make_detector())
            seconds += took
            points += len(s.values)
            scored.append(ScoredFile(s.name, s.timestamps, scores, s.windows))
            if progress is not None and (k % 10 == 0 or k == len(series)):
                progress(f"{dataset}: {k}/{len(series)} series, {points:,} points so far")
    by_dataset = {d: [f for f in scored if f.name.split("/", 1)[0] == d] for d in datasets}
    result: dict[str, Any] = {"datasets": {}}
    for profile_name, profile in PROFILES.items():
        pooled_threshold = nab_score(scored, profile).threshold
        held = holdout_score(scored, profile) if len(datasets) > 1 else None
        for dataset, files in by_dataset.items():
            entry = result["datasets"].setdefault(dataset, _describe(files))
            entry.setdefault("own", {})[profile_name] = _score(nab_score(files, profile))
            entry.setdefault("pooled", {})[profile_name] = _score(
                nab_score(files, profile, pooled_threshold)
            )
            if held is not None:
                entry.setdefault("held_out", {})[profile_name] = _score(held.categories[dataset])
        if held is not None:
            result.setdefault("held_out_combined", {})[profile_name] = held.score
    for dataset, files in by_dataset.items():
        entry = result["datasets"][dataset]
        threshold = entry.get("held_out", entry["own"])["standard"]["threshold"]
        entry["cold_start"] = _cold_start(files, threshold)
    result.update(
        points=points,
        detect_seconds=seconds,
        points_per_s=points / seconds if seconds else None,
        scoreboard=[r.as_dict() for r in _scoreboard(result["datasets"])],
    )
    return result


def _cold_start(files: list[ScoredFile], threshold: float | None) -> dict[str, Any]:
    """From each series' first point, how long until the detector reports a score and until
    its first correct detection (at ``threshold``: inside a window), and how many false ones
    came before it. Medians over the series that have a window; NAB's probation is ignored
    here on purpose: this is what a user starting the detector on a new series sees."""
    to_score, to_correct, false_before = [], [], []
    for f in files:
        start = f.timestamps[0]
        scored = np.flatnonzero(f.scores > 0)
        if scored.size:
            to_score.append((f.timestamps[scored[0]] - start) / np.timedelta64(1, "s"))
        if not f.windows or threshold is None:
            continue
        inside = layout_file(f.timestamps, f.windows, f.name).window >= 0
        fired = f.scores >= threshold
        hits = np.flatnonzero(fired & inside)
        if hits.size:
            to_correct.append((f.timestamps[hits[0]] - start) / np.timedelta64(1, "s"))
            false_before.append(int((fired[: hits[0]] & ~inside[: hits[0]]).sum()))
    with_windows = sum(1 for f in files if f.windows)
    return {
        "median_time_to_first_report_s": float(np.median(to_score)) if to_score else None,
        "series_with_windows": with_windows,
        "series_with_a_correct_detection": len(to_correct),
        "median_time_to_first_correct_s": float(np.median(to_correct)) if to_correct else None,
        "median_false_before_first_correct": float(np.median(false_before))
        if false_before
        else None,
    }


def _describe(files: list[ScoredFile]) -> dict[str, Any]:
    return {
        "files": len(files),
        "rows": sum(len(f.scores) for f in files),
        "windows": sum(len(f.windows) for f in files),
    }


def _score(score: ProfileScore) -> dict[str, Any]:
    return {
        "score": score.score if score.perfect != score.null else None,
        "threshold": None if math.isinf(score.threshold) else score.threshold,
        "windows_hit": score.windows_hit,
        "windows": score.windows,
        "fp": score.fp,
    }


def _scoreboard(datasets: dict[str, Any]) -> list[ScoreRow]:
    rows = []
    for dataset, entry in datasets.items():
        anchor = NAB_ANCHOR if dataset == "nab" else ""
        for key, protocol in (
            ("held_out", "threshold optimised on the other datasets"),
            ("own", "threshold optimised on this dataset (NAB's protocol)"),
        ):
            if key not in entry:
                continue
            value = entry[key]["standard"]["score"]
            rows.append(
                ScoreRow(
                    task="univariate",
                    metric=f"NAB standard, {'held-out' if key == 'held_out' else 'own'} threshold",
                    dataset=dataset,
                    value=math.nan if value is None else value,
                    tuned_on=is_tuned_on("univariate", dataset),
                    protocol=protocol,
                    anchor=anchor,
                )
            )
    return rows


def print_eval_univariate(result: dict[str, Any], console: Any) -> None:
    """Per dataset and profile: the own, pooled and held-out-threshold scores."""
    from rich.table import Table

    table = Table(title="NAB-style scores per dataset (standard / low FP / low FN)")
    for column in ("dataset", "files", "windows", "own threshold", "pooled", "held out"):
        table.add_column(column)
    for dataset, entry in result["datasets"].items():
        cells = []
        for key in ("own", "pooled", "held_out"):
            by = entry.get(key)
            cells.append(" / ".join(_fmt(by[p]["score"]) for p in PROFILES) if by else "-")
        table.add_row(dataset, str(entry["files"]), str(entry["windows"]), *cells)
    console.print(table)
    if result.get("held_out_combined"):
        combined = result["held_out_combined"]
        console.print(
            "All datasets, each at the threshold of the others: "
            + " / ".join(_fmt(combined[p]) for p in PROFILES)
        )
    for dataset, entry in result["datasets"].items():
        cold = entry["cold_start"]
        console.print(
            f"{dataset}: first report after {_hours(cold['median_time_to_first_report_s'])}, "
            f"first correct detection after {_hours(cold['median_time_to_first_correct_s'])} "
            f"(median; {cold['series_with_a_correct_detection']}/{cold['series_with_windows']} "
            "series with windows have one)"
        )
    if result.get("points_per_s"):
        console.print(
            f"Detector: {result['points']:,} points in {result['detect_seconds']:.1f} s "
            f"({result['points_per_s']:,.0f} points/s, one core)"
        )


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.1f} h"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def register(benchmarks: argparse._SubParsersAction) -> None:
    """``airis eval univariate``."""
    parser = benchmarks.add_parser(
        "univariate", help="NAB-style scores of airis detect on NAB, AIOps 2018 KPIs, MS cloud"
    )
    parser.add_argument(
        "--data", type=Path, default=SHARED_DATA, help="folder holding the datasets' folders"
    )
    parser.add_argument(
        "--dataset",
        action="append",
        help="only this dataset (repeatable; default: nab, kpi_aiops2018, ms_cloud_monitoring)",
    )
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.set_defaults(run=_command)


def _command(args: argparse.Namespace) -> int:
    result = eval_univariate(args.data, args.dataset or DATASETS, progress=console.print)
    print_eval_univariate(result, Console())
    write_json(args.json, result)
    return 0
