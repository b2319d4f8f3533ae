"""A file-based model registry: immutable versions, stages, promote/rollback, lineage.

Layout under the root (default ``$AIRIS_DATA_DIR/models``, see `ModelConfig.model_dir`)::

    <root>/<name>/registry.json      stages, production history, stage-change log (mutable)
    <root>/<name>/v<N>/manifest.json lineage of version N: params, metrics, data fingerprint,
                                     code version, parent, sha256 of every artifact (immutable)
    <root>/<name>/v<N>/<file>        the artifacts, read-only once registered
    <root>/<name>/.lock              flock() taken by every writer

Why it is safe to read while another process writes:

* a version is written into a temporary directory and renamed into place (one atomic
  ``rename``), then listed in ``registry.json``; a reader only sees versions listed there;
* ``registry.json`` is rewritten whole to a temporary file and moved over the old one with
  ``os.replace``, so a reader sees the old state or the new one, never half of either; it is
  the only mutable file, so stages and the production pointer are always consistent;
* writers (register, promote, rollback) serialize on ``fcntl.flock`` of the model's lock
  file, so two processes never allocate the same version number;
* the manifest's sha256 is kept in ``registry.json`` and each artifact's sha256 in the
  manifest: `ModelRegistry.get` re-hashes them and raises `TamperedError` on a mismatch.

`ProductionWatcher` is what a running dataflow holds to hot-reload between windows: one
``stat()`` of ``registry.json`` per poll, a read only when the file changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import orjson

from airis.models.artifact_files import (
    canonical_json,
    code_version,
    fingerprint_array,
    sha256_file,
    write_artifact,
    write_atomic,
)
from airis.models.artifact_files import code_version as current_code_version
from airis.models.registry_records import (
    MANIFEST_FILE,
    STAGES,
    ModelVersion,
    RegistryError,
    Stage,
    StageChange,
    TamperedError,
    check_file_name,
    check_name,
    side_by_side,
    stage_change,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ModelRegistry",
    "ModelVersion",
    "ProductionWatcher",
    "RegistryError",
    "StageChange",
    "TamperedError",
    "code_version",
    "fingerprint_array",
]


#: The mutable per-model state file (the production pointer the watcher stats).
STATE_FILE = "registry.json"
LOCK_FILE = ".lock"
_VERSION_DIR = re.compile(r"^v([1-9][0-9]*)$")


class ModelRegistry:
    """Versions of named models in a directory; see the module docstring for the layout.

    Parameters
    ----------
    root
        The registry directory (created on the first `register`).

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> registry = ModelRegistry(root)
    >>> v1 = registry.register("ae", {"model.onnx": b"one"}, params={"epochs": 5},
    ...                        metrics={"loss": 0.5}, data_fingerprint="f0", code_version="t")
    >>> v2 = registry.register("ae", {"model.onnx": b"two"}, params={"epochs": 9},
    ...                        metrics={"loss": 0.4}, data_fingerprint="f0", parent=1,
    ...                        code_version="t")
    >>> registry.promote("ae", 1).stage, registry.promote("ae", 2).stage
    ('production', 'production')
    >>> [(v.version, v.stage) for v in registry.versions("ae")]
    [(1, 'archived'), (2, 'production')]
    >>> registry.rollback("ae").version
    1
    >>> registry.compare("ae", 1, 2)["metrics"]["loss"]["delta"]
    -0.1...
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"

    # ---- reading ------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Registered model names, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / STATE_FILE).is_file())

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first (manifests verified, artifacts not)."""
        state = self._state(name)
        numbers = sorted(map(int, state["versions"]))  # JSON keys sort as text: "10" < "2"
        return [self._load(name, v, state, verify_files=False) for v in numbers]

    def get(self, name: str, version: int, *, verify: bool = True) -> ModelVersion:
        """Version ``version`` of ``name``; with ``verify``, every artifact is re-hashed."""
        return self._load(name, version, self._state(name), verify_files=verify)

    def production(self, name: str) -> ModelVersion | None:
        """The production version of ``name`` (verified), or None if there is none."""
        state = self._state(name)
        current = _production(state)
        return None if current is None else self._load(name, current, state, verify_files=True)

    def latest(self, name: str) -> ModelVersion:
        """The highest version of ``name`` (verified)."""
        state = self._state(name)
        return self._load(name, max(map(int, state["versions"])), state, verify_files=True)

    def history(self, name: str) -> list[StageChange]:
        """Every stage change of ``name``, oldest first."""
        return [stage_change(entry) for entry in self._state(name)["history"]]

    def read_file(self, name: str, version: int, file: str) -> bytes:
        """The bytes of one artifact, checked against its recorded sha256."""
        mv = self.get(name, version, verify=False)
        data = mv.path(file).read_bytes()
        if hashlib.sha256(data).hexdigest() != mv.checksums[file]:
            raise TamperedError(f"{name} v{version}: {file} changed since it was registered")
        return data

    def compare(self, name: str, a: int, b: int) -> dict[str, Any]:
        """Versions ``a`` and ``b`` side by side.

        Keys: ``params`` and ``metrics`` (per key: ``a``, ``b``, ``same``; metrics also
        ``delta`` = b - a when both are numbers), ``same_data`` (equal data fingerprints),
        ``lineage`` (``a_ancestor_of_b``, ``b_ancestor_of_a``, each side's parent chain),
        ``stages``, ``code_versions`` and ``same_files`` (identical artifact hashes).
        """
        state = self._state(name)
        va = self._load(name, a, state, verify_files=False)
        vb = self._load(name, b, state, verify_files=False)
        chain_a = self._ancestors(name, a, state)
        chain_b = self._ancestors(name, b, state)
        return {
            "name": name,
            "a": a,
            "b": b,
            "stages": {"a": va.stage, "b": vb.stage},
            "params": side_by_side(va.params, vb.params, delta=False),
            "metrics": side_by_side(va.metrics, vb.metrics, delta=True),
            "same_data": va.data_fingerprint == vb.data_fingerprint,
            "data_fingerprints": {"a": va.data_fingerprint, "b": vb.data_fingerprint},
            "code_versions": {"a": va.code_version, "b": vb.code_version},
            "same_files": va.checksums == vb.checksums,
            "lineage": {
                "a_ancestor_of_b": a in chain_b,
                "b_ancestor_of_a": b in chain_a,
                "a_parents": chain_a,
                "b_parents": chain_b,
            },
        }

    # ---- writing ------------------------------------------------------------------------

    def register(
        self,
        name: str,
        files: Mapping[str, bytes | Path],
        *,
        params: Mapping[str, Any],
        metrics: Mapping[str, Any],
        data_fingerprint: str,
        parent: int | None = None,
        code_version: str | None = None,
    ) -> ModelVersion:
        """Store a new version of ``name`` (the next number) in stage ``staging``.

        ``files`` maps plain file names to their bytes or to a file to copy. ``params`` and
        ``metrics`` must be JSON-serializable (numpy scalars and arrays are fine).
        ``code_version`` defaults to `code_version()`. ``parent`` must be a registered version.
        """
        check_name(name)
        if not files:
            raise RegistryError(f"register {name}: no artifact files given")
        for file in files:
            check_file_name(file)
        manifest_base = {
            "name": name,
            "params": dict(params),
            "metrics": dict(metrics),
            "data_fingerprint": str(data_fingerprint),
            "code_version": code_version if code_version is not None else current_code_version(),
            "parent": parent,
        }
        canonical_json(manifest_base)  # fail on unserializable params before taking the lock
        model_dir = self.root / name
        model_dir.mkdir(parents=True, exist_ok=True)
        with self._locked(name):
            state = self._state(name, missing_ok=True)
            if parent is not None and str(parent) not in state["versions"]:
                raise RegistryError(f"register {name}: parent v{parent} is not registered")
            # Skip numbers a crashed writer left as directories without a state entry.
            taken = {int(v) for v in state["versions"]}
            taken |= {int(m[1]) for p in model_dir.iterdir() if (m := _VERSION_DIR.match(p.name))}
            version = max(taken, default=0) + 1
            now = datetime.now(UTC)
            staging = Path(tempfile.mkdtemp(prefix=".tmp-v", dir=model_dir))
            try:
                checksums = {
                    file: write_artifact(staging / file, src) for file, src in files.items()
                }
                manifest = {
                    **manifest_base,
                    "version": version,
                    "created_at": now.isoformat(),
                    "files": dict(sorted(checksums.items())),
                }
                manifest_bytes = canonical_json(manifest)
                write_atomic(staging / MANIFEST_FILE, manifest_bytes)
                for path in staging.iterdir():
                    path.chmod(0o444)
                staging.chmod(0o755)  # mkdtemp made it private
                staging.rename(model_dir / f"v{version}")
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            state["versions"][str(version)] = {
                "stage": "staging",
                "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
            }
            state["history"].append(_entry(now, version, None, "staging", "register"))
            self._save(name, state)
            logger.info("registered %s v%d", name, version)
            return self._load(name, version, state, verify_files=False)

    def promote(self, name: str, version: int, stage: str = "production") -> ModelVersion:
        """Move ``version`` to ``stage``; a new production version archives the previous one.

        Promoting the current production version to production again changes nothing.
        Moving the production version to another stage leaves the model without one.
        """
        if stage not in STAGES:
            raise RegistryError(f"invalid stage {stage!r}: choose one of {', '.join(STAGES)}")
        with self._locked(name):
            state = self._state(name)
            key = _version_key(name, version, state)
            current = _production(state)
            old = state["versions"][key]["stage"]
            now = datetime.now(UTC)
            if stage == "production" and current != version:
                if current is not None:
                    state["versions"][str(current)]["stage"] = "archived"
                    state["history"].append(
                        _entry(now, current, "production", "archived", "promote")
                    )
                state["production"].append(version)
            elif stage != "production" and current == version:
                state["production"].pop()
            if old != stage:
                state["versions"][key]["stage"] = stage
                state["history"].append(_entry(now, version, old, stage, "promote"))
                self._save(name, state)
                logger.info("%s v%d: %s → %s", name, version, old, stage)
            return self._load(name, version, state, verify_files=False)

    def rollback(self, name: str) -> ModelVersion:
        """Make the version that was production before the current one production again.

        The current one is archived. Repeated rollbacks walk further back through the
        production history. Raises `RegistryError` when there is no production version or
        none before it.
        """
        with self._locked(name):
            state = self._state(name)
            current = _production(state)
            if current is None:
                raise RegistryError(f"rollback {name}: there is no production version")
            if len(state["production"]) < 2:
                raise RegistryError(
                    f"rollback {name}: v{current} is the first production version; "
                    "there is none before it to roll back to"
                )
            state["production"].pop()
            previous = state["production"][-1]
            now = datetime.now(UTC)
            back_from = state["versions"][str(previous)]["stage"]
            state["versions"][str(current)]["stage"] = "archived"
            state["versions"][str(previous)]["stage"] = "production"
            state["history"].append(_entry(now, current, "production", "archived", "rollback"))
            state["history"].append(_entry(now, previous, back_from, "production", "rollback"))
            self._save(name, state)
            logger.info("%s rolled back: v%d → v%d", name, current, previous)
            return self._load(name, previous, state, verify_files=False)

    # ---- internals ----------------------------------------------------------------------

    def _state(self, name: str, *, missing_ok: bool = False) -> dict[str, Any]:
        check_name(name)
        path = self.root / name / STATE_FILE
        try:
            return orjson.loads(path.read_bytes())
        except FileNotFoundError:
            if missing_ok:
                return {"name": name, "versions": {}, "production": [], "history": []}
            known = ", ".join(self.names()) or "none"
            raise RegistryError(
                f"unknown model {name!r} in {self.root} (registered: {known})"
            ) from None

    def _save(self, name: str, state: dict[str, Any]) -> None:
        write_atomic(self.root / name / STATE_FILE, canonical_json(state))

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        check_name(name)
        (self.root / name).mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / name / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _load(
        self, name: str, version: int, state: dict[str, Any], *, verify_files: bool
    ) -> ModelVersion:
        key = _version_key(name, version, state)
        directory = self.root / name / f"v{version}"
        raw = (directory / MANIFEST_FILE).read_bytes()
        if hashlib.sha256(raw).hexdigest() != state["versions"][key]["manifest_sha256"]:
            raise TamperedError(f"{name} v{version}: {MANIFEST_FILE} changed since registration")
        manifest = orjson.loads(raw)
        checksums: dict[str, str] = manifest["files"]
        if verify_files:
            for file, expected in checksums.items():
                if sha256_file(directory / file) != expected:
                    raise TamperedError(
                        f"{name} v{version}: {file} changed since it was registered"
                    )
        history = tuple(stage_change(e) for e in state["history"] if e["version"] == version)
        promoted = [c.at for c in history if c.to_stage == "production"]
        return ModelVersion(
            name=name,
            version=version,
            stage=cast(Stage, state["versions"][key]["stage"]),
            created_at=datetime.fromisoformat(manifest["created_at"]),
            params=manifest["params"],
            metrics=manifest["metrics"],
            data_fingerprint=manifest["data_fingerprint"],
            code_version=manifest["code_version"],
            parent=manifest["parent"],
            files=tuple(checksums),
            checksums=checksums,
            directory=directory,
            promoted_at=promoted[-1] if promoted else None,
            history=history,
        )

    def _ancestors(self, name: str, version: int, state: dict[str, Any]) -> list[int]:
        chain: list[int] = []
        parent = self._load(name, version, state, verify_files=False).parent
        while parent is not None and parent not in chain:  # a cycle cannot be registered
            chain.append(parent)
            parent = self._load(name, parent, state, verify_files=False).parent
        return chain


class ProductionWatcher:
    """Notices a change of a model's production version, for hot reload between windows.

    `poll` costs one ``stat()`` of the model's ``registry.json``; only when that changed is
    the file read. The state is the root, the name and the last seen marker (a stat signature
    and the production version), so the watcher pickles into a dataflow snapshot; after a
    restore it reports only a version other than the one it last reported.

    Parameters
    ----------
    registry_root
        The registry directory.
    name
        The model to watch (need not be registered yet).

    Examples
    --------
    >>> import tempfile
    >>> registry = ModelRegistry(Path(tempfile.mkdtemp()))
    >>> watcher = ProductionWatcher(registry.root, "ae")
    >>> watcher.poll() is None  # nothing registered yet
    True
    >>> _ = registry.register("ae", {"m": b"1"}, params={}, metrics={}, data_fingerprint="f")
    >>> _ = registry.promote("ae", 1)
    >>> watcher.poll().version
    1
    >>> watcher.poll() is None  # unchanged
    True
    """

    def __init__(self, registry_root: Path | str, name: str) -> None:
        check_name(name)
        self.registry_root = Path(registry_root)
        self.name = name
        self._stat: tuple[int, int, int] | None = None
        self._version: int | None = None

    def __repr__(self) -> str:
        return f"ProductionWatcher({str(self.registry_root)!r}, {self.name!r})"

    @property
    def version(self) -> int | None:
        """The production version last reported (None before the first one)."""
        return self._version

    def poll(self) -> ModelVersion | None:
        """The production version if it changed since the last poll, else None.

        The first poll returns the current production version, if any. A change to "no
        production version" also returns None (keep the model you have). A tampered new
        version raises `TamperedError` and is reported again on the next poll.
        """
        try:
            st = os.stat(self.registry_root / self.name / STATE_FILE)
        except FileNotFoundError:
            return None
        # os.replace gives every rewrite a new inode; with mtime and size, the stat
        # signature changes on every write even within one mtime tick.
        signature = (st.st_ino, st.st_mtime_ns, st.st_size)
        if signature == self._stat:
            return None
        registry = ModelRegistry(self.registry_root)
        state = registry._state(self.name)
        current = _production(state)
        if current is None or current == self._version:
            self._stat = signature
            return None
        found = registry._load(self.name, current, state, verify_files=True)
        self._stat, self._version = signature, current
        return found


def _production(state: dict[str, Any]) -> int | None:
    stack = state["production"]
    if stack and state["versions"][str(stack[-1])]["stage"] == "production":
        return int(stack[-1])
    return None


def _version_key(name: str, version: int, state: dict[str, Any]) -> str:
    key = str(version)
    if key not in state["versions"]:
        known = ", ".join(state["versions"]) or "none"
        raise RegistryError(f"{name} has no version {version!r} (versions: {known})")
    return key


def _entry(
    at: datetime, version: int, from_stage: str | None, to_stage: str, action: str
) -> dict[str, Any]:
    return {
        "at": at.isoformat(),
        "version": version,
        "from": from_stage,
        "to": to_stage,
        "action": action,
    }
