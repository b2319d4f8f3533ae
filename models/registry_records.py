"""What a model registry records: versions with their lineage, stage changes, and its errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

Stage = Literal["staging", "production", "archived"]


STAGES: tuple[str, ...] = get_args(Stage)


class RegistryError(ValueError):
    """Unknown model or version, invalid stage or file name, nothing to roll back to."""


class TamperedError(RegistryError):
    """A registered file no longer has the sha256 recorded when it was registered."""


@dataclass(frozen=True)
class StageChange:
    """One entry of a model's stage-change log."""

    at: datetime
    version: int
    from_stage: str | None  # None when the version was registered
    to_stage: str
    action: Literal["register", "promote", "rollback"]


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: its lineage (immutable) and its stage (as last read)."""

    name: str
    version: int
    stage: Stage
    created_at: datetime
    params: dict[str, Any]
    metrics: dict[str, Any]
    data_fingerprint: str
    code_version: str
    parent: int | None
    #: Artifact file names, sorted; their sha256 in `checksums`.
    files: tuple[str, ...]
    checksums: dict[str, str]
    directory: Path
    #: When this version last became production (None if never).
    promoted_at: datetime | None
    #: This version's stage changes, oldest first.
    history: tuple[StageChange, ...]

    def path(self, file: str) -> Path:
        """Where artifact ``file`` lies (read it with `ModelRegistry.read_file` to verify it)."""
        if file not in self.files:
            raise RegistryError(f"{self.name} v{self.version} has no file {file!r}: {self.files}")
        return self.directory / file


#: The manifest of a version; not a valid artifact name.
MANIFEST_FILE = "manifest.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def stage_change(entry: dict[str, Any]) -> StageChange:
    """A stage-change log entry of ``registry.json`` as a `StageChange`."""
    return StageChange(
        at=datetime.fromisoformat(entry["at"]),
        version=entry["version"],
        from_stage=entry["from"],
        to_stage=entry["to"],
        action=entry["action"],
    )


def side_by_side(a: Mapping[str, Any], b: Mapping[str, Any], *, delta: bool) -> dict:
    """Two versions' params or metrics per key: both values, whether equal, and the change."""
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        row: dict[str, Any] = {"a": va, "b": vb, "same": va == vb}
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (va, vb))
        if delta and numbers:
            row["delta"] = vb - va
        out[key] = row
    return out


def check_name(name: str) -> None:
    """Raise `RegistryError` unless ``name`` is a valid model name."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(
            f"invalid model name {name!r}: letters, digits, '_', '.', '-' (not first)"
        )


def check_file_name(file: str) -> None:
    """Raise `RegistryError` unless ``file`` is a valid artifact file name."""
    if not _NAME.match(file) or file == MANIFEST_FILE:
        raise RegistryError(
            f"invalid artifact file name {file!r}: a plain name, not {MANIFEST_FILE}"
        )
