"""`airis logs templates` and the Loghub-2k evaluation of `LogTemplateMiner`.

Both mine ``Content`` online, in file order, in one pass. A line's template is the *final*
template of the cluster it was assigned to when it arrived (the Loghub convention for Drain):
clusters only generalise, so this is the template that describes every line in it. Lines are
grouped by that template text, as Loghub's grouping accuracy groups by ``EventTemplate``.
"""

from __future__ import annotations

import csv
import time
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from airis.operators.log_templates import LogTemplateMiner

__all__ = [
    "REFERENCE_GA",
    "eval_logs",
    "grouping_accuracy",
    "mine_templates",
    "print_eval_logs",
    "templates_csv",
]

#: GA of the drain3 library on these Loghub-2k files, default / with IP-and-number masking
#: (../shared/data/README.md); shown beside what is measured, never used to compute it.
REFERENCE_GA: dict[str, tuple[float, float]] = {
    "HDFS": (0.998, 0.998),
    "Hadoop": (0.954, 0.963),
    "Spark": (0.922, 0.922),
    "BGL": (0.969, 0.969),
    "Linux": (0.684, 0.686),
    "OpenStack": (0.309, 0.309),
    "HealthApp": (0.576, 0.900),
}
#: Published averages of GA over the 16 Loghub-2k systems.
PUBLISHED_AVERAGE_GA = {"Drain": 0.865, "Brain": 0.983}

_SUFFIX = "_2k.log_structured_corrected.csv"


def grouping_accuracy(truth: Sequence[Hashable], predicted: Sequence[Hashable]) -> float:
    """Share of lines whose predicted group equals their true group (Loghub's GA).

    A line's group is the set of lines with the same label; lines of an over-merged or a
    split group all count as wrong.

    >>> grouping_accuracy(["a", "a", "b", "c"], ["x", "x", "y", "y"])  # b and c merged
    0.5
    >>> grouping_accuracy(["a", "a", "b"], ["x", "z", "y"])  # a split
    0.333...
    """
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predicted")
    if not truth:
        return 1.0
    true_groups: dict[Hashable, list[int]] = defaultdict(list)
    predicted_size: dict[Hashable, int] = defaultdict(int)
    for i, (t, p) in enumerate(zip(truth, predicted, strict=True)):
        true_groups[t].append(i)
        predicted_size[p] += 1
    correct = 0
    for lines in true_groups.values():
        labels = {predicted[i] for i in lines}
        # One predicted label for the whole true group, and no other line carries it.
        if len(labels) == 1 and predicted_size[labels.pop()] == len(lines):
            correct += len(lines)
    return correct / len(truth)


def mine_templates(lines: Iterable[str], miner: LogTemplateMiner | None = None) -> list[str]:
    """Mine ``lines`` online, in order; return each line's final cluster template."""
    miner = miner or LogTemplateMiner()
    ids = [miner.add_one(line).template_id for line in lines]
    final = {template_id: template for template_id, template, _ in miner.templates()}
    return [final[i] for i in ids]


def _read(source: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    with source.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{source}: no column {', '.join(missing)} in {reader.fieldnames!r}")
        return list(reader)


def templates_csv(source: Path, target: Path) -> int:
    """Read ``LineId,Content`` (other columns ignored), write ``LineId,EventTemplate``.

    Returns the number of lines written, one per input row, in input order.
    """
    rows = _read(source, ("LineId", "Content"))
    templates = mine_templates(row["Content"] for row in rows)
    with target.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["LineId", "EventTemplate"])
        writer.writerows((row["LineId"], t) for row, t in zip(rows, templates, strict=True))
    return len(rows)


def eval_logs(data_dir: Path) -> dict:
    """GA of `LogTemplateMiner` (default configuration) on every Loghub-2k file in ``data_dir``.

    Returns ``{"systems": {name: {...}}, "average": ga, "reference_average": {...},
    "published_average": {...}, "seconds": s}``; each system has ``ga``, ``lines``,
    ``true_templates``, ``predicted_templates``, ``seconds`` and the drain3 reference figures
    ``drain3_default`` / ``drain3_masked`` (``None`` for a system without them).
    """
    files = sorted(data_dir.glob(f"*{_SUFFIX}"))
    if not files:
        raise FileNotFoundError(f"no *{_SUFFIX} files in {data_dir}")
    started = time.perf_counter()
    systems: dict[str, dict] = {}
    for path in files:
        name = path.name.removesuffix(_SUFFIX)
        rows = _read(path, ("Content", "EventTemplate"))
        t0 = time.perf_counter()
        predicted = mine_templates(row["Content"] for row in rows)
        seconds = time.perf_counter() - t0
        truth = [row["EventTemplate"] for row in rows]
        default, masked = REFERENCE_GA.get(name, (None, None))
        systems[name] = {
            "ga": grouping_accuracy(truth, predicted),
            "lines": len(rows),
            "true_templates": len(set(truth)),
            "predicted_templates": len(set(predicted)),
            "seconds": seconds,
            "drain3_default": default,
            "drain3_masked": masked,
        }
    referenced = [s for s in systems.values() if s["drain3_default"] is not None]
    return {
        "systems": systems,
        "average": sum(s["ga"] for s in systems.values()) / len(systems),
        # Averages over the systems that have reference figures, to compare like with like.
        "reference_average": {
            "ours": _mean(s["ga"] for s in referenced),
            "drain3_default": _mean(s["drain3_default"] for s in referenced),
            "drain3_masked": _mean(s["drain3_masked"] for s in referenced),
        },
        "published_average": dict(PUBLISHED_AVERAGE_GA),
        "seconds": time.perf_counter() - started,
    }


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def print_eval_logs(result: dict, console: Console) -> None:
    """Print `eval_logs`'s result as a table, with the drain3 reference figures beside it."""
    table = Table(title="Log template mining on Loghub-2k: grouping accuracy")
    for column in ("system", "lines", "templates true/ours", "GA", "drain3", "drain3+mask", "s"):
        table.add_column(column, justify="left" if column == "system" else "right")
    for name, s in result["systems"].items():
        table.add_row(
            name,
            f"{s['lines']:,}",
            f"{s['true_templates']}/{s['predicted_templates']}",
            f"{s['ga']:.3f}",
            _fmt(s["drain3_default"]),
            _fmt(s["drain3_masked"]),
            f"{s['seconds']:.2f}",
        )
    ref = result["reference_average"]
    table.add_row(
        "average",
        "",
        "",
        f"{result['average']:.3f}",
        _fmt(ref["drain3_default"]),
        _fmt(ref["drain3_masked"]),
        f"{result['seconds']:.2f}",
        end_section=True,
    )
    console.print(table)
    published = ", ".join(f"{k} {v:.3f}" for k, v in result["published_average"].items())
    console.print(f"published averages over the 16 Loghub-2k systems: {published}")
