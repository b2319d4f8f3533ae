"""`airis models list|show|promote|rollback|compare|train`: the model registry from the shell.

Every action takes ``--registry DIR`` (default ``$AIRIS_MODEL_DIR``, else
``$AIRIS_DATA_DIR/models``). Registry errors are `ValueError`s, which `airis.cli.main` prints
as ``error: ...`` with exit status 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from airis.models.registry import ModelRegistry, ModelVersion
from airis.settings import Settings

__all__ = ["register", "registry_root", "run_models"]

#: Metrics shown per version in `airis models list`.
_LIST_METRICS = 3


def register(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser("models", help="the model registry: versions, stages, lineage")
    actions = models.add_subparsers(metavar="ACTION", dest="action")
    registry = argparse.ArgumentParser(add_help=False)
    registry.add_argument(
        "--registry", type=Path, help="registry directory (default $AIRIS_DATA_DIR/models)"
    )
    listing = actions.add_parser("list", parents=[registry], help="versions of all models")
    listing.add_argument("name", nargs="?", help="only this model")
    show = actions.add_parser(
        "show", parents=[registry], help="lineage, files and history of one version"
    )
    show.add_argument("name")
    show.add_argument(
        "version", type=int, nargs="?", help="default: the production one, else the latest"
    )
    promote = actions.add_parser(
        "promote", parents=[registry], help="move a version to a stage (default production)"
    )
    promote.add_argument("name")
    promote.add_argument("version", type=int)
    promote.add_argument(
        "--stage", choices=["staging", "production", "archived"], default="production"
    )
    rollback = actions.add_parser(
        "rollback", parents=[registry], help="production back to the previous production version"
    )
    rollback.add_argument("name")
    compare = actions.add_parser(
        "compare", parents=[registry], help="params, metrics and lineage of two versions"
    )
    compare.add_argument("name")
    compare.add_argument("a", type=int, metavar="A")
    compare.add_argument("b", type=int, metavar="B")
    train = actions.add_parser(
        "train",
        parents=[registry],
        help="train the flow's service autoencoder on simulated telemetry and register it",
    )
    train.add_argument("name", nargs="?", default="service_autoencoder")
    train.add_argument(
        "--hours",
        type=float,
        default=24.0,
        help="hours trained on, and checked on (default 24: a whole daily cycle)",
    )
    train.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    train.add_argument("--promote", action="store_true", help="promote it to production")
    for action in (listing, show, promote, rollback, compare, train):
        action.set_defaults(run=lambda args: run_models(args, Console()))


def registry_root(args: argparse.Namespace) -> Path:
    """``--registry`` if given, else the settings' model directory."""
    return args.registry or Settings().model.model_dir


def run_models(args: argparse.Namespace, out: Console) -> int:
    """Run one ``airis models`` action (``args.action``); print to ``out``."""
    registry = ModelRegistry(registry_root(args))
    action = args.action
    if action == "list":
        _list(registry, args.name, out)
    elif action == "show":
        _show(registry, args.name, args.version, out)
    elif action == "promote":
        before = _production(registry, args.name) if args.stage == "production" else None
        mv = registry.promote(args.name, args.version, args.stage)
        archived = (
            f" (v{before.version} archived)" if before and before.version != mv.version else ""
        )
        out.print(f"{mv.name} v{mv.version} → {mv.stage}{archived}")
    elif action == "rollback":
        current = _production(registry, args.name)
        mv = registry.rollback(args.name)
        out.print(f"{mv.name}: production {_version_of(current)} → v{mv.version} (rolled back)")
    elif action == "compare":
        _compare(registry.compare(args.name, args.a, args.b), out)
    elif action == "train":
        _train(registry, args, out)
    else:
        raise ValueError(f"unknown models action {action!r}")
    return 0


def _train(registry: ModelRegistry, args: argparse.Namespace, out: Console) -> None:
    from airis.models.train import train_and_register

    out.print(
        f"training {args.name} on {args.hours:g} simulated hours (seed {args.seed}), "
        f"checking on the {args.hours:g} before them…"
    )
    run = train_and_register(
        registry, args.name, hours=args.hours, seed=args.seed, promote=args.promote
    )
    mv, held = run.version, run.held_out
    at = held["at_0.9"]
    out.print(
        f"{mv.name} v{mv.version} → {mv.stage} in {run.train_seconds:.1f} s; held out: "
        f"AUC {_auc(held['auc'])}, at score 0.9 precision {at['precision']:.3f} recall "
        f"{at['recall']:.3f} (normal rows flagged {at['normal_flagged']:.2e})"
    )


def _auc(auc: float | None) -> str:
    return "n/a (no fault in the held-out hours)" if auc is None else f"{auc:.3f}"


def _list(registry: ModelRegistry, name: str | None, out: Console) -> None:
    names = [name] if name else registry.names()
    if not names:
        out.print(f"no models in {registry.root}")
        return
    table = Table(title=f"models in {registry.root}")
    for column in ("model", "version", "stage", "created (UTC)", "parent", "data", "metrics"):
        table.add_column(column, justify="right" if column in ("version", "parent") else "left")
    for model in names:
        for mv in registry.versions(model):
            table.add_row(
                mv.name,
                str(mv.version),
                _stage(mv.stage),
                f"{mv.created_at:%Y-%m-%d %H:%M}",
                "—" if mv.parent is None else str(mv.parent),
                mv.data_fingerprint[:12],
                ", ".join(f"{k}={_fmt(v)}" for k, v in list(mv.metrics.items())[:_LIST_METRICS]),
            )
    out.print(table)


def _show(registry: ModelRegistry, name: str, version: int | None, out: Console) -> None:
    if version is not None:
        mv = registry.get(name, version)
    else:
        mv = registry.production(name) or registry.latest(name)
    facts = Table(title=f"{mv.name} v{mv.version}", show_header=False)
    facts.add_column("field")
    facts.add_column("value")
    for field, value in (
        ("stage", _stage(mv.stage)),
        ("created", mv.created_at.isoformat()),
        ("promoted", mv.promoted_at.isoformat() if mv.promoted_at else "—"),
        ("parent", "—" if mv.parent is None else f"v{mv.parent}"),
        ("data fingerprint", mv.data_fingerprint),
        ("code version", mv.code_version),
        ("directory", str(mv.directory)),
    ):
        facts.add_row(field, value)
    out.print(facts)
    for title, values in (("params", mv.params), ("metrics", mv.metrics)):
        table = Table(title=title)
        table.add_column("name")
        table.add_column("value", justify="right")
        for key, value in values.items():
            table.add_row(key, _fmt(value))
        out.print(table)
    files = Table(title="files (sha256 verified)")
    for column in ("file", "bytes", "sha256"):
        files.add_column(column)
    for file in mv.files:
        files.add_row(file, f"{mv.path(file).stat().st_size:,}", mv.checksums[file][:16] + "…")
    out.print(files)
    history = Table(title="stage history")
    for column in ("at (UTC)", "from", "to", "by"):
        history.add_column(column)
    for change in mv.history:
        history.add_row(
            f"{change.at:%Y-%m-%d %H:%M:%S}", change.from_stage or "—", change.to_stage,
            change.action,
        )  # fmt: skip
    out.print(history)


def _compare(diff: dict[str, Any], out: Console) -> None:
    a, b = diff["a"], diff["b"]
    table = Table(title=f"{diff['name']}: v{a} vs v{b}")
    for column in ("", f"v{a}", f"v{b}", "Δ (b - a)"):
        table.add_column(column, justify="left" if not column else "right")
    table.add_row("stage", diff["stages"]["a"], diff["stages"]["b"], "")
    for section in ("params", "metrics"):
        table.add_section()
        for key, row in diff[section].items():
            mark = "" if row["same"] else "≠"
            delta = _fmt(row["delta"]) if "delta" in row else mark
            table.add_row(f"{section}.{key}", _fmt(row["a"]), _fmt(row["b"]), delta)
    out.print(table)
    lineage = diff["lineage"]
    if lineage["a_ancestor_of_b"]:
        relation = f"v{a} is an ancestor of v{b}"
    elif lineage["b_ancestor_of_a"]:
        relation = f"v{b} is an ancestor of v{a}"
    else:
        relation = "neither is an ancestor of the other"
    out.print(f"lineage: {relation}")
    out.print("training data: " + ("same fingerprint" if diff["same_data"] else "different"))
    out.print("artifacts: " + ("identical" if diff["same_files"] else "different"))
    code = diff["code_versions"]
    out.print(f"code: {code['a']} / {code['b']}")


def _stage(stage: str) -> str:
    return {"production": "[green]production[/green]", "archived": "[dim]archived[/dim]"}.get(
        stage, stage
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _production(registry: ModelRegistry, name: str) -> ModelVersion | None:
    # Unverified: a tampered old production version must not block promoting a new one.
    return next((v for v in registry.versions(name) if v.stage == "production"), None)


def _version_of(mv: ModelVersion | None) -> str:
    return "none" if mv is None else f"v{mv.version}"
