"""`airis eval nab`: NAB scores of detector results, or of our own detector run over the corpus.

The scoring itself is `airis.evals.nab_scorer`; this module reads the NAB layout (``data/``,
``labels/combined_windows.json``, ``profiles.json``, results as
``<results>/<detector>/<category>/<detector>_<file>.csv`` with an ``anomaly_score`` column),
runs `airis.app.detect.detect_csv` over the corpus when asked, and prints or returns the scores.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from airis.cli.common import SHARED_DATA, console, write_json
from airis.evals.nab_scorer import (
    CostProfile,
    FloatArray,
    ProfileScore,
    ScoredFile,
    Window,
    holdout_score,
    layout_file,
    load_profiles,
    load_windows,
    nab_score,
    parse_timestamps,
)

__all__ = [
    "DEFAULT_RESULTS",
    "PUBLISHED",
    "NabCorpus",
    "eval_nab",
    "find_detectors",
    "holdout_scores",
    "load_corpus",
    "print_eval_nab",
    "result_path",
    "run_detector",
    "score_detector",
]

#: Where `airis eval nab` writes our detector's results unless told otherwise.
DEFAULT_RESULTS = Path("var/nab_results")
#: Our detector's name in the results layout.
OUR_DETECTOR = "airis"
#: Profile columns, in NAB's usual order.
PROFILE_ORDER = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")

#: Official NAB scores (standard, reward_low_FP_rate, reward_low_FN_rate) on the 24-file
#: subset in ../shared/data/nab, computed with numenta/NAB's scorer; source:
#: ../shared/data/README.md, section "nab/". Shown beside our numbers, never used to compute them.
PUBLISHED: dict[str, tuple[float, float, float]] = {
    "ARTime": (68.77, 60.04, 74.05),
    "numenta": (64.85, 59.12, 69.85),
    "contextOSE": (57.54, 53.84, 61.43),
    "randomCutForest": (55.71, 43.09, 63.64),
    "knncad": (53.51, 38.24, 61.31),
    "relativeEntropy": (45.27, 35.63, 50.69),
    "windowedGaussian": (28.16, 22.38, 31.59),
}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class NabCorpus:
    """The data files (by ``category/file.csv``), their timestamps and windows, and profiles."""

    data_dir: Path
    timestamps: dict[str, np.ndarray]
    windows: dict[str, list[Window]]
    profiles: dict[str, CostProfile]

    @property
    def rows(self) -> int:
        return sum(len(t) for t in self.timestamps.values())


def load_corpus(data_dir: Path) -> NabCorpus:
    """Read every labelled file's timestamps, the windows and the profiles under ``data_dir``."""
    labels = data_dir / "labels" / "combined_windows.json"
    if not labels.exists():
        raise FileNotFoundError(f"no NAB labels at {labels}")
    windows = load_windows(labels)
    timestamps: dict[str, np.ndarray] = {}
    for name in sorted(windows):
        path = data_dir / "data" / name
        if not path.exists():
            raise FileNotFoundError(f"labelled NAB file missing: {path}")
        timestamps[name] = parse_timestamps(_column(path, "timestamp"))
    return NabCorpus(data_dir, timestamps, windows, load_profiles(data_dir / "profiles.json"))


def _column(path: Path, column: str) -> list[str]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if column not in header:
            raise ValueError(f"{path}: no column {column!r} in {header!r}")
        i = header.index(column)
        return [row[i] for row in reader if row]


def result_path(results_dir: Path, detector: str, name: str) -> Path:
    """NAB's results layout: ``category/file.csv`` → ``<detector>/category/<detector>_file.csv``."""
    category, file = name.split("/", 1)
    return results_dir / detector / category / f"{detector}_{file}"


def find_detectors(results_dir: Path) -> list[str]:
    """The detectors under ``results_dir``: sub-folders holding NAB-style result CSVs."""
    if not results_dir.is_dir():
        raise FileNotFoundError(f"no results directory {results_dir}")
    found = [d.name for d in sorted(results_dir.iterdir()) if d.is_dir() and any(d.glob("*/*.csv"))]
    if not found:
        raise FileNotFoundError(f"no <detector>/<category>/*.csv results under {results_dir}")
    return found


def _read_scores(path: Path) -> FloatArray:
    return np.array([float(v) for v in _column(path, "anomaly_score")], dtype=np.float64)


def score_detector(corpus: NabCorpus, results_dir: Path, detector: str) -> dict[str, ProfileScore]:
    """Score one detector's results on every profile, each with its own corpus threshold."""
    files = _scored_files(corpus, results_dir, detector)
    return {name: nab_score(files, profile) for name, profile in corpus.profiles.items()}


def holdout_scores(
    corpus: NabCorpus, results_dir: Path, detector: str
) -> dict[str, dict[str, Any]]:
    """`airis.evals.nab_scorer.holdout_score` of one detector's results on every profile, as
    dicts."""
    files = _scored_files(corpus, results_dir, detector)
    out: dict[str, dict[str, Any]] = {}
    for name, profile in corpus.profiles.items():
        held = holdout_score(files, profile)
        out[name] = {
            "score": held.score,
            "categories": {
                c: {
                    "threshold": None if math.isinf(s.threshold) else s.threshold,
                    # No windows (artificialNoAnomaly): nothing to normalise by, only FP costs.
                    "score": s.score if s.perfect != s.null else None,
                    "raw": s.raw,
                }
                for c, s in held.categories.items()
            },
        }
    return out


def _scored_files(corpus: NabCorpus, results_dir: Path, detector: str) -> list[ScoredFile]:
    missing = [n for n in corpus.timestamps if not result_path(results_dir, detector, n).exists()]
    if missing:
        raise FileNotFoundError(
            f"{detector}: no results for {len(missing)} file(s), e.g. "
            f"{result_path(results_dir, detector, missing[0])}"
        )
    return [
        ScoredFile(
            name, ts, _read_scores(result_path(results_dir, detector, name)), corpus.windows[name]
        )
        for name, ts in corpus.timestamps.items()
    ]


def run_detector(
    corpus: NabCorpus,
    results_dir: Path,
    detector: str = OUR_DETECTOR,
    progress: Progress | None = None,
) -> float:
    """Run `airis detect`'s detector over every corpus file into NAB's layout; return seconds.

    Each output is ``timestamp,value,anomaly_score,label`` (``label`` 1 inside a window, as
    in NAB's results files); the seconds count only the detector, not the rewriting.
    """
    from airis.app.detect import detect_csv

    total = 0.0
    for k, (name, ts) in enumerate(corpus.timestamps.items(), start=1):
        target = result_path(results_dir, detector, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        raw = target.with_suffix(".tmp")
        started = time.perf_counter()
        rows = detect_csv(corpus.data_dir / "data" / name, raw)
        seconds = time.perf_counter() - started
        total += seconds
        _add_labels(raw, target, _labels(ts, corpus.windows[name], name))
        raw.unlink()
        if progress is not None:
            progress(f"[{k}/{len(corpus.timestamps)}] {name}: {rows:,} rows in {seconds:.2f} s")
    return total


def _labels(timestamps: np.ndarray, windows: list[Window], name: str) -> np.ndarray:
    return (layout_file(timestamps, windows, name).window >= 0).astype(np.int8)


def _add_labels(source: Path, target: Path, labels: np.ndarray) -> None:
    with source.open(newline="") as fin, target.open("w", newline="") as fout:
        reader, writer = csv.reader(fin), csv.writer(fout, lineterminator="\n")
        writer.writerow([*next(reader), "label"])
        for row, label in zip(reader, labels, strict=True):
            writer.writerow([*row, int(label)])


def eval_nab(
    data_dir: Path,
    results_dir: Path | None = None,
    out_dir: Path = DEFAULT_RESULTS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """NAB scores of every detector under ``results_dir``, or of our detector run into ``out_dir``.

    Returns ``{"detectors": {name: {profile: ProfileScore fields}}, "holdout": {name:
    {profile: leave-one-category-out score}} (empty for one category), "published": {...},
    "files", "rows", "detect_seconds" (None when only scoring), "score_seconds", "results"}``.
    A threshold of ``None`` means the detector scores best never firing.
    """
    corpus = load_corpus(data_dir)
    detect_seconds = None
    if results_dir is None:
        results_dir = out_dir
        detect_seconds = run_detector(corpus, out_dir, OUR_DETECTOR, progress)
        detectors = [OUR_DETECTOR]
    else:
        detectors = find_detectors(results_dir)
    started = time.perf_counter()
    scores = {d: score_detector(corpus, results_dir, d) for d in detectors}
    # Leave-one-category-out needs two categories; a one-category corpus has no holdout.
    categories = {name.split("/", 1)[0] for name in corpus.timestamps}
    holdout = (
        {d: holdout_scores(corpus, results_dir, d) for d in detectors}
        if len(categories) > 1
        else {}
    )
    return {
        "detectors": {d: {p: _as_dict(s) for p, s in by.items()} for d, by in scores.items()},
        "holdout": holdout,
        "published": {d: dict(zip(PROFILE_ORDER, v, strict=True)) for d, v in PUBLISHED.items()},
        "files": len(corpus.timestamps),
        "rows": corpus.rows,
        "detect_seconds": detect_seconds,
        "score_seconds": time.perf_counter() - started,
        "results": str(results_dir),
    }


def _as_dict(score: ProfileScore) -> dict[str, Any]:
    out = asdict(score)
    # JSON has no infinity: a detector that is best never firing gets a null threshold.
    out["threshold"] = None if math.isinf(score.threshold) else score.threshold
    return out


def _fmt_threshold(value: float | None) -> str:
    return "never" if value is None else f"{value:.4g}"


def print_eval_nab(result: dict[str, Any], console: Any) -> None:
    """Print `eval_nab`'s scores as a rich table, the published scores below them."""
    from rich.table import Table

    table = Table(title=f"NAB scores ({result['files']} files, {result['rows']:,} rows)")
    table.add_column("detector")
    for column in ("standard", "low FP", "low FN", "thresholds std / FP / FN", "published"):
        table.add_column(column, justify="right")
    for name, by in result["detectors"].items():
        published = result["published"].get(name)
        table.add_row(
            name,
            *(f"{by[p]['score']:.2f}" for p in PROFILE_ORDER),
            " / ".join(_fmt_threshold(by[p]["threshold"]) for p in PROFILE_ORDER),
            " / ".join(f"{published[p]:.2f}" for p in PROFILE_ORDER) if published else "—",
        )
    table.add_section()
    for name, by in result["published"].items():
        table.add_row(
            f"[dim]{name} (published)[/dim]",
            *(f"[dim]{by[p]:.2f}[/dim]" for p in PROFILE_ORDER),
            "",
            "",
        )
    console.print(table)
    _print_holdout(result.get("holdout", {}), console)
    timing = f"scoring {result['score_seconds']:.2f} s"
    if result["detect_seconds"] is not None:
        timing = f"detector {result['detect_seconds']:.2f} s, {timing}"
    console.print(f"{timing}; results in {result['results']}")


def _print_holdout(holdout: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    if not holdout:
        return
    table = Table(title="Leave one category out: each category at a threshold set on the others")
    table.add_column("detector")
    for column in ("standard", "low FP", "low FN", "standard by held-out category"):
        table.add_column(column, justify="right")
    for name, by in holdout.items():
        categories = by["standard"]["categories"]
        table.add_row(
            name,
            *(f"{by[p]['score']:.2f}" for p in PROFILE_ORDER),
            ", ".join(
                f"{c} {v['score']:.1f}" if v["score"] is not None else f"{c} raw {v['raw']:.2f}"
                for c, v in categories.items()
            ),
        )
    console.print(table)


def register(benchmarks: argparse._SubParsersAction) -> None:
    """``airis eval nab``."""
    parser = benchmarks.add_parser("nab", help="NAB scores (standard, low FP, low FN)")
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "nab")
    parser.add_argument(
        "--results",
        type=Path,
        help="score every detector under this NAB results folder instead of running ours",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("var/nab_results"),
        help="where our detector's results go (default var/nab_results)",
    )
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.set_defaults(run=_command)


def _command(args: argparse.Namespace) -> int:
    result = eval_nab(args.data, args.results, args.out, progress=console.print)
    print_eval_nab(result, Console())
    write_json(args.json, result)
    return 0
