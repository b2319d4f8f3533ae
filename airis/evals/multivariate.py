"""`airis eval multivariate` (alias `airis eval smd`): the ONNX autoencoder per machine, with a
threshold a deployment could set, on every multivariate ``.npz`` folder.

Folders: ``smd`` (4 Server Machine Dataset machines), ``smd_extra`` (11 more), ``asd`` (12
application servers); each ``*.npz`` holds ``train``, ``test`` and ``test_label`` (one 0/1 per
test row). One configuration for all of them (`CONFIG`), nothing per machine or per folder:

* **Features**: each row and its change since the previous row (``x``, ``x - x_prev``): a
  sudden coherent move stands out even where its values are within the normal range.
* **Model**: `airis.models.autoencoder.train_autoencoder` on ``train`` (its last 20 %
  held out), standardised features clipped to ±20 deviations, error = reconstruction error
  plus the per-feature deviation (a z-score baseline), falling back to the baseline alone
  when the model explains the held-out rows no better than the training mean. Scored in
  batches by `airis.models.onnx_detector.OnnxDetector`; rows only use the past.
* **(a) Label-free threshold**: `airis.operators.detectors.pot_threshold.PotThreshold` (peaks over
  threshold, a generalised Pareto tail) is started on the held-out training errors and then
  follows the test stream (each row is judged by the threshold in force before it, then
  learned), at a risk from `RISKS`. The eval-level choice of the risk uses labels, so it is
  made leave one dataset out: the risk applied to a dataset is the one with the best mean
  point-adjusted F1 on the *other* datasets (`choose_risks`). ``static`` is the same POT fit
  on the training errors only, never updated (what OmniAnomaly's POT does).
* **(b) Best threshold**: the F1-maximising threshold on the test labels, per machine and per
  adjustment: what papers report, optimistic by construction.

Point adjustment (PA): if any row of a labelled anomaly segment is flagged, every row of it
counts as flagged. Scoreboard rows (task ``multivariate``, one per dataset, mean over its
machines): ``PA F1, label-free threshold`` (the headline), ``PA F1, best threshold`` and
``F1, label-free threshold`` (no PA).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from airis.cli.common import SHARED_DATA, console, write_json
from airis.evals.anomaly_scoring import (
    best_f1,
    ewma,
    label_segments,
    point_adjust,
    prf,
    stream_thresholds,
)
from airis.evals.scoreboard import ScoreRow, is_tuned_on
from airis.models.autoencoder import DEFAULT_HIDDEN, DEFAULT_MAX_ITER, train_autoencoder
from airis.models.onnx_detector import OnnxDetector
from airis.operators.detectors.pot_threshold import DEFAULT_LEVEL, DEFAULT_RISK

__all__ = [
    "CONFIG",
    "PUBLISHED",
    "RISKS",
    "best_f1",
    "choose_risks",
    "eval_machine",
    "eval_multivariate",
    "eval_smd",
    "point_adjust",
    "prf",
    "print_eval_multivariate",
    "print_eval_smd",
    "stream_thresholds",
    "with_deltas",
]

#: Published point-adjusted F1 on all 28 SMD machines (../shared/data/README.md, section smd).
PUBLISHED: dict[str, float] = {
    "OmniAnomaly": 0.962,
    "OmniAnomaly with POT": 0.886,
    "TranAD": 0.961,
    "USAD": 0.938,
    "Anomaly Transformer": 0.923,
}
#: Risks (share of rows expected above the threshold) the label-free threshold is tried at.
RISKS: tuple[float, ...] = (1e-2, 5e-3, 1e-3, 1e-4)
#: The model and scoring configuration, the same for every machine and folder.
CONFIG: dict[str, Any] = {
    "features": "row and its change since the previous row",
    "hidden": list(DEFAULT_HIDDEN),
    "max_iter": DEFAULT_MAX_ITER,
    "calibration_fraction": 0.2,
    "clip": 20.0,
    "deviation_weight": 1.0,
    "min_skill": 0.0,
    "pot_level": DEFAULT_LEVEL,
}
#: Rows per `OnnxDetector.errors_batch` call.
SCORE_BATCH = 4096
#: Scoreboard metrics, by the key of the per-dataset mean they are read from.
_METRICS = {
    "PA F1, label-free threshold": ("label_free", "adjusted"),
    "PA F1, best threshold": ("best", "adjusted"),
    "F1, label-free threshold": ("label_free", "raw"),
}
_ANCHORS = {
    "smd": {
        "PA F1, label-free threshold": "OmniAnomaly 0.886 with POT (all 28 SMD machines)",
        "PA F1, best threshold": "OmniAnomaly 0.962, TranAD 0.961 (all 28 SMD machines)",
    },
}

Progress = Callable[[str], None]


def with_deltas(x: np.ndarray) -> np.ndarray:
    """Each row followed by its change since the previous row (0 for the first row).

    >>> with_deltas(np.array([[1.0, 5.0], [3.0, 4.0]])).tolist()
    [[1.0, 5.0, 0.0, 0.0], [3.0, 4.0, 2.0, -1.0]]
    """
    x = np.asarray(x)
    return np.hstack([x, np.diff(x, axis=0, prepend=x[:1])])


def eval_machine(
    path: Path,
    *,
    risks: Sequence[float] = RISKS,
    seed: int = 0,
    hidden: tuple[int, ...] = DEFAULT_HIDDEN,
    max_iter: int = CONFIG["max_iter"],
    smooth: float = 0.0,
) -> dict[str, Any]:
    """Train on one machine's ``train``, score its ``test``, and evaluate the thresholds.

    ``smooth`` > 0 replaces each error by a causal exponentially weighted mean of the errors
    so far (weight ``smooth`` on the newest row), for held-out and test rows alike.
    """
    if not 0.0 <= smooth <= 1.0:
        raise ValueError(f"eval_multivariate: smooth must be in [0, 1], got {smooth}")
    train, test, label = _load(path)
    x_train, x_test = with_deltas(train), with_deltas(test)
    d = train.shape[1]
    names = [f"m{i:02d}" for i in range(d)] + [f"m{i:02d}_change" for i in range(d)]
    model = train_autoencoder(
        x_train,
        names,
        hidden=hidden,
        seed=seed,
        max_iter=max_iter,
        calibration_fraction=CONFIG["calibration_fraction"],
        clip=CONFIG["clip"],
        deviation_weight=CONFIG["deviation_weight"],
        min_skill=CONFIG["min_skill"],
        model_name=path.stem,
    )
    detector = OnnxDetector(model.onnx_bytes, providers="cpu", model_name=path.stem)
    started = time.perf_counter()
    held_out = _errors(detector, x_train[-model.metrics["rows_calibration"] :])
    errors = _errors(detector, x_test)
    if smooth > 0:
        held_out, errors = ewma(held_out, smooth), ewma(errors, smooth)
    score_seconds = time.perf_counter() - started
    label_free, static = {}, {}
    for risk in risks:
        key = f"{risk:g}"
        label_free[key] = _at(errors > stream_thresholds(held_out, errors, risk), label)
        static[key] = _at(errors > stream_thresholds(held_out, errors, risk, update=False), label)
    return {
        "machine": path.stem,
        "train_rows": len(train),
        "test_rows": len(test),
        "features": d,
        "anomaly_ratio": float(label.mean()),
        "segments": len(label_segments(label)),
        "skill": model.metrics["skill"],
        "fallback": model.metrics["fallback"],
        "train_seconds": model.metrics["train_seconds"],
        "score_seconds": score_seconds,
        "thresholds": {
            "best": {
                "raw": best_f1(errors, label, adjust=False),
                "adjusted": best_f1(errors, label, adjust=True),
            },
            "label_free": label_free,
            "static": static,
        },
    }


def eval_multivariate(
    folders: Sequence[Path],
    progress: Progress | None = None,
    *,
    risks: Sequence[float] = RISKS,
    seed: int = 0,
    hidden: tuple[int, ...] = DEFAULT_HIDDEN,
    smooth: float = 0.0,
) -> dict[str, Any]:
    """Evaluate every ``*.npz`` of each folder (a dataset, named by the folder).

    Returns ``{"datasets": {name: {"machines": [...], "mean": {...}}}, "risk": {...},
    "scoreboard": [...], "published", "config", "seconds"}``. ``mean`` averages the
    per-machine P, R and F1; under ``label_free`` and ``static`` per risk, and the
    leave-one-dataset-out choice under ``label_free_chosen``.
    """
    if not folders:
        raise ValueError("eval_multivariate: no folders given")
    started = time.perf_counter()
    paths = {Path(f).name: sorted(Path(f).glob("*.npz")) for f in folders}
    for name, found in paths.items():
        if not found:
            raise FileNotFoundError(f"no *.npz files (train, test, test_label) in {name}")
    total = sum(len(p) for p in paths.values())
    datasets: dict[str, dict[str, Any]] = {}
    k = 0
    for name, found in paths.items():
        machines = []
        for path in found:
            k += 1
            result = eval_machine(path, risks=risks, seed=seed, hidden=hidden, smooth=smooth)
            machines.append(result)
            if progress is not None:
                progress(_progress_line(k, total, name, result))
        datasets[name] = {"machines": machines, "mean": _mean(machines)}
    by_risk = {
        name: {
            r: data["mean"]["thresholds"]["label_free"][r]["adjusted"]["f1"]
            for r in (f"{q:g}" for q in risks)
        }
        for name, data in datasets.items()
    }
    chosen = choose_risks(by_risk, default=f"{DEFAULT_RISK:g}")
    for name, data in datasets.items():
        data["mean"]["thresholds"]["label_free_chosen"] = {
            "risk": chosen[name],
            **data["mean"]["thresholds"]["label_free"][chosen[name]],
        }
    return {
        "datasets": datasets,
        "risk": {
            "grid": [f"{q:g}" for q in risks],
            "default": f"{DEFAULT_RISK:g}",
            "chosen": chosen,
            "mean_pa_f1": by_risk,
        },
        "scoreboard": [row.as_dict() for row in _scoreboard(datasets, chosen)],
        "published": dict(PUBLISHED),
        "config": {**CONFIG, "hidden": list(hidden), "seed": seed, "smooth": smooth},
        "seconds": time.perf_counter() - started,
    }


def eval_smd(
    data: Path,
    progress: Progress | None = None,
    *,
    seed: int = 0,
    hidden: tuple[int, ...] = DEFAULT_HIDDEN,
    smooth: float = 0.0,
) -> dict[str, Any]:
    """`eval_multivariate` of one folder (``airis eval smd --data DIR``)."""
    return eval_multivariate([data], progress, seed=seed, hidden=hidden, smooth=smooth)


def choose_risks(mean_f1: Mapping[str, Mapping[str, float]], *, default: str) -> dict[str, str]:
    """Leave one dataset out: for each dataset, the risk with the best mean F1 over the *other*
    datasets (each dataset weighs the same; ties go to the first risk). Alone, a dataset gets
    ``default``.

    >>> f1 = {"a": {"0.01": 0.9, "0.001": 0.8}, "b": {"0.01": 0.5, "0.001": 0.7},
    ...       "c": {"0.01": 0.6, "0.001": 0.7}}
    >>> choose_risks(f1, default="0.01")
    {'a': '0.001', 'b': '0.01', 'c': '0.01'}
    """
    chosen = {}
    for name in mean_f1:
        others = [f1 for other, f1 in mean_f1.items() if other != name]
        if not others:
            chosen[name] = default
            continue
        risks = list(others[0])
        chosen[name] = max(risks, key=lambda r: float(np.mean([o[r] for o in others])))
    return chosen


def print_eval_multivariate(result: dict[str, Any], console: Any) -> None:
    """Print the result: per dataset a table of machines, then the scoreboard rows."""
    from rich.table import Table

    chosen = result["risk"]["chosen"]
    for name, data in result["datasets"].items():
        risk = chosen[name]
        table = Table(
            title=(
                f"{name}: {len(data['machines'])} machines. (a) label-free POT threshold, risk "
                f"{risk} (chosen on the other datasets); (b) best-F1 threshold on the test labels"
            )
        )
        table.add_column("machine", no_wrap=True)
        for column in ("skill", "(a) P", "R", "F1", "P (PA)", "R (PA)", "F1 (PA)"):
            table.add_column(column, justify="right")
        table.add_column("(b) F1", justify="right")
        table.add_column("F1 (PA)", justify="right")
        rows = [(m["machine"], m) for m in data["machines"]] + [("mean", data["mean"])]
        for label, m in rows:
            if label == "mean":
                table.add_section()
            a = m["thresholds"]["label_free"][risk]
            b = m["thresholds"]["best"]
            skill = "" if "skill" not in m else f"{m['skill']:.2f}" + ("*" if m["fallback"] else "")
            table.add_row(
                label,
                skill,
                *_cells(a["raw"]),
                *_cells(a["adjusted"]),
                f"{b['raw']['f1']:.3f}",
                f"{b['adjusted']['f1']:.3f}",
            )
        console.print(table)
    risks = Table(title="Mean PA F1 of the label-free threshold by risk (static: no updates)")
    risks.add_column("dataset")
    for r in result["risk"]["grid"]:
        risks.add_column(f"risk {r}", justify="right")
        risks.add_column("static", justify="right")
    for name, data in result["datasets"].items():
        means = data["mean"]["thresholds"]
        cells = []
        for r in result["risk"]["grid"]:
            cells += [
                f"{means['label_free'][r]['adjusted']['f1']:.3f}",
                f"{means['static'][r]['adjusted']['f1']:.3f}",
            ]
        risks.add_row(name, *cells)
    console.print(risks)
    board = Table(title="Scoreboard (multivariate)")
    for column in ("metric", "dataset", "value", "tuned on", "anchor"):
        board.add_column(column)
    for row in result["scoreboard"]:
        value = "-" if row["value"] is None else f"{row['value']:.3f}"
        board.add_row(row["metric"], row["dataset"], value, str(row["tuned_on"]), row["anchor"])
    console.print(board)
    published = ", ".join(f"{k} {v:.3f}" for k, v in result["published"].items())
    console.print(
        f"PA: point-adjusted. skill: held-out explained variance of the autoencoder (* fell "
        f"back to the per-feature baseline). Published on all 28 SMD machines (PA): "
        f"{published}. {result['seconds']:.1f} s in all."
    )


#: The old name of `print_eval_multivariate`.
print_eval_smd = print_eval_multivariate


def _load(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path) as data:
        missing = {"train", "test", "test_label"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: missing arrays {sorted(missing)}")
        train, test = data["train"], data["test"]
        label = data["test_label"].astype(bool).ravel()
    if len(test) != len(label) or train.ndim != 2 or train.shape[1] != test.shape[1]:
        raise ValueError(f"{path}: shapes train {train.shape}, test {test.shape}, {label.shape}")
    return train, test, label


def _errors(detector: OnnxDetector, x: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [detector.errors_batch(x[i : i + SCORE_BATCH]) for i in range(0, len(x), SCORE_BATCH)]
    )


def _scoreboard(datasets: Mapping[str, dict[str, Any]], chosen: Mapping[str, str]) -> list:
    rows = []
    for metric, (threshold, adjustment) in _METRICS.items():
        for name, data in datasets.items():
            key = "label_free_chosen" if threshold == "label_free" else threshold
            value = data["mean"]["thresholds"][key][adjustment]["f1"]
            if threshold == "label_free":
                protocol = (
                    f"POT threshold (risk {chosen[name]}, chosen on the other datasets) from "
                    "the held-out training errors, updated on the test stream; no test labels"
                )
            else:
                protocol = "best-F1 threshold per machine on its test labels (optimistic)"
            rows.append(
                ScoreRow(
                    task="multivariate",
                    metric=metric,
                    dataset=name,
                    value=float(value),
                    tuned_on=is_tuned_on("multivariate", name),
                    protocol=protocol,
                    anchor=_ANCHORS.get(name.split("_")[0], {}).get(metric, ""),
                )
            )
    return rows


def _progress_line(k: int, total: int, dataset: str, result: dict[str, Any]) -> str:
    t = result["thresholds"]
    a = t["label_free"].get(f"{DEFAULT_RISK:g}") or next(iter(t["label_free"].values()))
    return (
        f"[{k}/{total}] {dataset}/{result['machine']}: trained in "
        f"{result['train_seconds']:.1f} s (skill {result['skill']:.2f}"
        f"{', fallback' if result['fallback'] else ''}), PA F1 label-free (risk "
        f"{DEFAULT_RISK:g}) {a['adjusted']['f1']:.3f}, best {t['best']['adjusted']['f1']:.3f}"
    )


def _mean(machines: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("precision", "recall", "f1")

    def avg(get: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {
            adj: {k: float(np.mean([get(m)[adj][k] for m in machines])) for k in keys}
            for adj in ("raw", "adjusted")
        }
        if "alert_rate" in get(machines[0]):
            out["alert_rate"] = float(np.mean([get(m)["alert_rate"] for m in machines]))
            out["normal_alert_rate"] = float(
                np.mean([get(m)["normal_alert_rate"] for m in machines])
            )
        return out

    first = machines[0]["thresholds"]
    thresholds: dict[str, Any] = {"best": avg(lambda m: m["thresholds"]["best"])}
    for kind in ("label_free", "static"):
        thresholds[kind] = {
            r: avg(lambda m, kind=kind, r=r: m["thresholds"][kind][r]) for r in first[kind]
        }
    return {
        "train_seconds": float(np.mean([m["train_seconds"] for m in machines])),
        "fallbacks": int(sum(m["fallback"] for m in machines)),
        "thresholds": thresholds,
    }


def _at(flagged: np.ndarray, label: np.ndarray) -> dict[str, Any]:
    return {
        "raw": prf(flagged, label),
        "adjusted": prf(point_adjust(flagged, label), label),
        "alert_rate": float(flagged.mean()),
        "normal_alert_rate": float(flagged[~label].mean()) if (~label).any() else math.nan,
    }


def _cells(e: dict[str, float]) -> tuple[str, str, str]:
    return f"{e['precision']:.3f}", f"{e['recall']:.3f}", f"{e['f1']:.3f}"


def register(benchmarks: argparse._SubParsersAction) -> None:
    """``airis eval multivariate`` (and its alias ``smd``)."""
    for command in ("multivariate", "smd"):
        parser = benchmarks.add_parser(
            command,
            help="multivariate (SMD, SMD extra, ASD): ONNX autoencoder, PA F1 at a POT "
            "threshold and at the best one"
            + (" (alias of multivariate)" if command == "smd" else ""),
        )
        parser.add_argument(
            "--data",
            type=Path,
            action="append",
            help="a folder of *.npz machines (repeatable; default: smd, smd_extra and asd "
            "under ../shared/data)",
        )
        parser.add_argument(
            "--smooth",
            type=float,
            default=0.0,
            help="causal EWMA weight of the newest error (default 0: each row alone)",
        )
        parser.add_argument("--json", type=Path, help="also write the result as JSON here")
        parser.set_defaults(run=_command)


def _command(args: argparse.Namespace) -> int:
    folders = args.data or [SHARED_DATA / name for name in ("smd", "smd_extra", "asd")]
    result = eval_multivariate(folders, progress=console.print, smooth=args.smooth)
    print_eval_multivariate(result, Console())
    write_json(args.json, result)
    return 0
