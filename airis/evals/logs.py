"""`airis logs templates` and the Loghub evaluation of `LogTemplateMiner`.

Both mine ``Content`` online, in file order, in one pass. A line's template is the *final*
template of the id it was given when it arrived (the Loghub convention for Drain): templates
only generalise and merge, so this is the template that describes every line given that id.
Lines are grouped by that template text, as Loghub's grouping accuracy groups by
``EventTemplate``.

`eval_logs` scores every labelled system it finds: the Loghub-2k files with corrected truth
(``<Sys>_2k.log_structured_corrected.csv``) and Loghub-2.0 full files
(``<Sys>_full.log_structured.csv``), in the given folders and their sub-folders. The miner's
one label-tuned parameter, ``min_values``, is also chosen leave-one-system-out from a small
grid: for each system, the value with the best average GA on the *other* systems' folds is
applied to it (``X_full`` shares a fold with ``X``: it contains X's 2k sample).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import time
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from airis.cli.common import SHARED_DATA, write_json
from airis.evals.scoreboard import ScoreRow, is_tuned_on
from airis.operators.signals.log_templates import LogTemplateMiner

__all__ = [
    "DEFAULT_GRID",
    "REFERENCE_GA",
    "LogSystem",
    "eval_logs",
    "find_systems",
    "grouping_accuracy",
    "leave_one_fold_out",
    "mine_templates",
    "print_eval_logs",
    "templates_csv",
]

#: GA of the drain3 library on these files, default / with IP-and-number masking
#: (../shared/data/README.md and loghub_extra/README.md, corrected truth); shown beside what
#: is measured, never used to compute it.
REFERENCE_GA: dict[str, tuple[float, float]] = {
    "HDFS": (0.998, 0.998),
    "Hadoop": (0.954, 0.963),
    "Spark": (0.922, 0.922),
    "BGL": (0.969, 0.969),
    "Linux": (0.684, 0.686),
    "OpenStack": (0.309, 0.309),
    "HealthApp": (0.576, 0.900),
    "Android": (0.697, 0.716),
    "Windows": (0.571, 0.565),
    "Linux_full": (0.802, 0.945),
}
#: Published GA on the same system (as text, with its source), for the scoreboard's anchor.
PUBLISHED_GA: dict[str, str] = {
    "Android": "Drain 0.911, Brain 0.961 (original truth, per-system settings)",
    "Windows": "Drain 0.997, Brain 0.997 (original truth, per-system settings)",
    "Linux_full": "Drain 0.686 (Loghub-2.0)",
}
#: Published averages of GA over the 16 Loghub-2k systems.
PUBLISHED_AVERAGE_GA = {"Drain": 0.865, "Brain": 0.983}
#: The values of ``min_values`` the leave-one-system-out protocol chooses from.
DEFAULT_GRID: tuple[int, ...] = (4, 5, 6)

_TRUTH_FILES = (
    ("*_2k.log_structured_corrected.csv", "_2k.log_structured_corrected.csv"),
    ("*_full.log_structured.csv", ".log_structured.csv"),
)
_TASK = "logs"
_METRIC = "grouping accuracy"


@dataclass(frozen=True, slots=True)
class LogSystem:
    """One labelled log file: the system's name, its file and its cross-validation fold."""

    name: str
    path: Path
    fold: str


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
    """Mine ``lines`` online, in order; return each line's final template."""
    miner = miner or LogTemplateMiner()
    ids: list[str] = []
    rest = iter(lines)
    chunks = iter(lambda: list(itertools.islice(rest, 10_000)), [])
    for chunk in chunks:  # tokenised a chunk at a time (`LogTemplateMiner.add_many`)
        ids.extend(match.template_id for match in miner.add_many(chunk))
    final = {template_id: miner.template(template_id) or "" for template_id in set(ids)}
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


def find_systems(data_dirs: Iterable[Path]) -> list[LogSystem]:
    """Every labelled file in ``data_dirs`` (and one level of sub-folders), sorted by name.

    >>> find_systems([])
    []
    """
    found: dict[str, LogSystem] = {}
    for data_dir in data_dirs:
        for pattern, suffix in _TRUTH_FILES:
            for path in sorted([*data_dir.glob(pattern), *data_dir.glob(f"*/{pattern}")]):
                name = path.name.removesuffix(suffix)
                if name in found and found[name].path != path:
                    raise ValueError(f"system {name} twice: {found[name].path} and {path}")
                found[name] = LogSystem(name, path, name.removesuffix("_full"))
    return [found[name] for name in sorted(found)]


def leave_one_fold_out(
    scores: Mapping[str, Mapping[int, float]],
    folds: Mapping[str, str],
    default: int,
) -> dict[str, int]:
    """Per system, the parameter with the best mean score over the systems of other folds.

    ``scores[system][value]`` is the score of ``system`` with the parameter at ``value``.
    Ties go to the value nearest ``default``, then to the smaller one; a system alone in the
    corpus gets ``default``.

    >>> scores = {"a": {3: 0.9, 4: 0.5}, "b": {3: 0.6, 4: 0.8}, "c": {3: 0.7, 4: 0.9}}
    >>> leave_one_fold_out(scores, {"a": "a", "b": "b", "c": "c"}, default=4)
    {'a': 4, 'b': 3, 'c': 3}
    """
    chosen: dict[str, int] = {}
    for system in scores:
        others = [s for s in scores if folds[s] != folds[system]]
        if not others:
            chosen[system] = default
            continue
        values = sorted(set.intersection(*(set(scores[s]) for s in others)))

        def rank(value: int, others: list[str] = others) -> tuple[float, int, int]:
            mean = sum(scores[s][value] for s in others) / len(others)
            return (-mean, abs(value - default), value)

        chosen[system] = min(values, key=rank)
    return chosen


def eval_logs(
    data_dirs: Path | Sequence[Path],
    grid: Sequence[int] = DEFAULT_GRID,
) -> dict:
    """GA of `LogTemplateMiner` on every labelled system in ``data_dirs``.

    Each system is mined with the default configuration (``ga``) and with every value of
    ``min_values`` in ``grid``; ``ga_loso`` applies the value chosen on the other folds
    (`leave_one_fold_out`). Returns ``{"systems": {name: {...}}, "average": {...},
    "average_loso": {...}, "scoreboard": [...], ...}``; averages are over the systems tuned
    on (`airis.evals.scoreboard.DEVELOPMENT_SPLIT`), the others, and all.
    """
    dirs = [data_dirs] if isinstance(data_dirs, Path) else list(data_dirs)
    found = find_systems(dirs)
    if not found:
        patterns = " or ".join(p for p, _ in _TRUTH_FILES)
        raise FileNotFoundError(f"no {patterns} files in {', '.join(map(str, dirs))}")
    default = LogTemplateMiner().min_values
    values = sorted({*grid, default})
    started = time.perf_counter()
    systems: dict[str, dict] = {}
    grid_scores: dict[str, dict[int, float]] = {}
    for system in found:
        rows = _read(system.path, ("Content", "EventTemplate"))
        contents = [row["Content"] for row in rows]
        truth = [row["EventTemplate"] for row in rows]
        scores: dict[int, float] = {}
        for value in values:
            t0 = time.perf_counter()
            predicted = mine_templates(contents, LogTemplateMiner(min_values=value))
            seconds = time.perf_counter() - t0
            scores[value] = grouping_accuracy(truth, predicted)
            if value == default:
                systems[system.name] = {
                    "ga": scores[value],
                    "lines": len(rows),
                    "true_templates": len(set(truth)),
                    "predicted_templates": len(set(predicted)),
                    "seconds": seconds,
                    "lines_per_second": len(rows) / seconds if seconds > 0 else None,
                }
        grid_scores[system.name] = {v: scores[v] for v in grid}
        drain3_default, drain3_masked = REFERENCE_GA.get(system.name, (None, None))
        systems[system.name].update(
            fold=system.fold,
            tuned_on=is_tuned_on(_TASK, system.name),
            grid={str(v): scores[v] for v in grid},
            drain3_default=drain3_default,
            drain3_masked=drain3_masked,
            published=PUBLISHED_GA.get(system.name),
        )
    folds = {s.name: s.fold for s in found}
    chosen = leave_one_fold_out(grid_scores, folds, default)
    for name, value in chosen.items():
        systems[name]["min_values_loso"] = value
        systems[name]["ga_loso"] = grid_scores[name][value]
    lines = sum(s["lines"] for s in systems.values())
    mining = sum(s["seconds"] for s in systems.values())
    return {
        "systems": systems,
        "default": {"min_values": default, "keep": LogTemplateMiner().keep},
        "grid": list(grid),
        "average": _averages(systems, "ga"),
        "average_loso": _averages(systems, "ga_loso"),
        "reference_average": _reference_averages(systems),
        "published_average": dict(PUBLISHED_AVERAGE_GA),
        "lines_per_second": lines / mining if mining > 0 else None,
        "seconds": time.perf_counter() - started,
        "scoreboard": [row.as_dict() for row in _scoreboard(systems, grid)],
    }


def _averages(systems: Mapping[str, dict], key: str) -> dict[str, float | None]:
    return {
        "tuned_on": _mean(s[key] for s in systems.values() if s["tuned_on"]),
        "not_tuned_on": _mean(s[key] for s in systems.values() if not s["tuned_on"]),
        "all": _mean(s[key] for s in systems.values()),
    }


def _reference_averages(systems: Mapping[str, dict]) -> dict[str, float | None]:
    """Averages over the systems that have drain3 figures, to compare like with like."""
    referenced = [s for s in systems.values() if s["drain3_default"] is not None]
    return {
        "ours": _mean(s["ga"] for s in referenced),
        "drain3_default": _mean(s["drain3_default"] for s in referenced),
        "drain3_masked": _mean(s["drain3_masked"] for s in referenced),
    }


def _scoreboard(systems: Mapping[str, dict], grid: Sequence[int]) -> list[ScoreRow]:
    protocol = (
        f"min_values from {{{', '.join(map(str, grid))}}} chosen on the other systems' folds "
        "(leave one system out; X_full with X); one configuration otherwise"
    )
    rows = []
    for name, s in systems.items():
        anchor = []
        if s["drain3_default"] is not None:
            anchor.append(f"drain3 {s['drain3_default']:.3f} / masked {s['drain3_masked']:.3f}")
        if s["published"]:
            anchor.append(s["published"])
        rows.append(
            ScoreRow(_TASK, _METRIC, name, s["ga_loso"], s["tuned_on"], protocol, "; ".join(anchor))
        )
    return rows


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def print_eval_logs(result: dict, console: Console) -> None:
    """Print `eval_logs`'s result as a table, with the drain3 reference figures beside it."""
    default = result["default"]["min_values"]
    table = Table(
        title="Log template mining on Loghub: grouping accuracy (GA)",
        caption=f"GA: min_values={default}; GA LOSO: min_values (in brackets) chosen on the "
        "other systems' folds; templates: true/ours",
    )
    columns = ("system", "tuned on", "lines", "templates", "GA", "GA LOSO", "drain3", "+mask",
               "lines/s")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "system" else "right")
    for name, s in result["systems"].items():
        table.add_row(
            name,
            "yes" if s["tuned_on"] else "no",
            f"{s['lines']:,}",
            f"{s['true_templates']}/{s['predicted_templates']}",
            f"{s['ga']:.3f}",
            f"{s['ga_loso']:.3f} ({s['min_values_loso']})",
            _fmt(s["drain3_default"]),
            _fmt(s["drain3_masked"]),
            f"{s['lines_per_second']:,.0f}" if s["lines_per_second"] else "—",
        )
    ref = result["reference_average"]
    for label, key in (("tuned on", "tuned_on"), ("not tuned on", "not_tuned_on"), ("all", "all")):
        table.add_row(
            f"mean, {label}",
            "",
            "",
            "",
            _fmt(result["average"][key]),
            _fmt(result["average_loso"][key]),
            _fmt(ref["drain3_default"]) if key == "all" else "",
            _fmt(ref["drain3_masked"]) if key == "all" else "",
            "",
            end_section=label == "tuned on",
        )
    console.print(table)
    published = ", ".join(f"{k} {v:.3f}" for k, v in result["published_average"].items())
    console.print(
        f"published averages over the 16 Loghub-2k systems: {published}; "
        f"mining {result['lines_per_second']:,.0f} lines/s; {result['seconds']:.1f} s in all"
    )


def register(benchmarks: argparse._SubParsersAction) -> None:
    """``airis eval logs``."""
    parser = benchmarks.add_parser("logs", help="Loghub grouping accuracy")
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        help="a folder of labelled logs (repeatable; default: loghub and loghub_extra)",
    )
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.set_defaults(run=_command)


def _command(args: argparse.Namespace) -> int:
    result = eval_logs(args.data or [SHARED_DATA / "loghub", SHARED_DATA / "loghub_extra"])
    print_eval_logs(result, Console())
    write_json(args.json, result)
    return 0
