"""The file-based model registry: versions, stages, rollback, lineage, tampering, concurrency."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import stat
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from airis.models.registry import (
    ModelRegistry,
    ProductionWatcher,
    RegistryError,
    TamperedError,
    code_version,
    fingerprint_array,
)


def _register(registry: ModelRegistry, payload: bytes = b"onnx", **kwargs):
    kwargs.setdefault("params", {"epochs": 5})
    kwargs.setdefault("metrics", {"loss": 0.5})
    kwargs.setdefault("data_fingerprint", "data-a")
    kwargs.setdefault("code_version", "test")
    return registry.register("ae", {"model.onnx": payload, "extra.json": b"{}"}, **kwargs)


def test_register_stores_an_immutable_staging_version_with_its_lineage(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    source = tmp_path / "reference.npy"
    np.save(source, np.arange(6.0))
    before = datetime.now(UTC)
    v1 = registry.register(
        "ae",
        {"model.onnx": b"weights", "reference.npy": source},
        params={"epochs": np.int64(5), "layers": [8, 4]},
        metrics={"loss": np.float32(0.25)},
        data_fingerprint="abc",
    )
    assert (v1.name, v1.version, v1.stage, v1.parent) == ("ae", 1, "staging", None)
    assert before <= v1.created_at <= datetime.now(UTC)
    assert v1.params == {"epochs": 5, "layers": [8, 4]} and v1.metrics == {"loss": 0.25}
    assert v1.data_fingerprint == "abc" and v1.code_version == code_version()
    assert v1.files == ("model.onnx", "reference.npy")
    assert registry.read_file("ae", 1, "model.onnx") == b"weights"
    assert np.array_equal(np.load(v1.path("reference.npy")), np.arange(6.0))
    assert not os.stat(v1.path("model.onnx")).st_mode & stat.S_IWUSR  # read-only
    assert [(c.from_stage, c.to_stage, c.action) for c in v1.history] == [
        (None, "staging", "register")
    ]
    v2 = _register(registry, parent=1)
    assert v2.version == 2 and v2.parent == 1
    assert [v.version for v in registry.versions("ae")] == [1, 2]
    assert registry.names() == ["ae"] and registry.latest("ae").version == 2
    assert registry.production("ae") is None


def test_promote_archives_the_previous_production_and_rollback_walks_back(tmp_path) -> None:
    registry = ModelRegistry(tmp_path)
    for _ in range(3):
        _register(registry)
    assert registry.promote("ae", 1).stage == "production"
    assert registry.promote("ae", 2).stage == "production"
    assert registry.promote("ae", 3).stage == "production"
    stages = {v.version: v.stage for v in registry.versions("ae")}
    assert stages == {1: "archived", 2: "archived", 3: "production"}
    assert registry.production("ae").version == 3
    assert registry.production("ae").promoted_at is not None

    assert registry.rollback("ae").version == 2
    assert {v.version: v.stage for v in registry.versions("ae")} == {
        1: "archived", 2: "production", 3: "archived",
    }  # fmt: skip
    assert registry.rollback("ae").version == 1
    with pytest.raises(RegistryError, match="first production version"):
        registry.rollback("ae")

    history = registry.history("ae")
    assert [(c.version, c.from_stage, c.to_stage, c.action) for c in history] == [
        (1, None, "staging", "register"),
        (2, None, "staging", "register"),
        (3, None, "staging", "register"),
        (1, "staging", "production", "promote"),
        (1, "production", "archived", "promote"),
        (2, "staging", "production", "promote"),
        (2, "production", "archived", "promote"),
        (3, "staging", "production", "promote"),
        (3, "production", "archived", "rollback"),
        (2, "archived", "production", "rollback"),
        (2, "production", "archived", "rollback"),
        (1, "archived", "production", "rollback"),
    ]
    assert all(a.at <= b.at for a, b in itertools.pairwise(history))
    assert all(c.at.tzinfo is not None for c in history)


def test_re_promoting_an_old_version_makes_rollback_return_to_the_one_before(tmp_path) -> None:
    registry = ModelRegistry(tmp_path)
    _register(registry)
    _register(registry)
    registry.promote("ae", 1)
    registry.promote("ae", 2)
    registry.promote("ae", 1)
    registry.promote("ae", 1)  # already production: no change, no history entry
    # 2 registers; promote 1; promote 2 (and archive 1); promote 1 (and archive 2).
    assert len(registry.history("ae")) == 2 + 1 + 2 + 2
    assert registry.rollback("ae").version == 2


def test_demoting_production_leaves_none_and_nothing_to_roll_back(tmp_path) -> None:
    registry = ModelRegistry(tmp_path)
    _register(registry)
    _register(registry)
    registry.promote("ae", 1)
    registry.promote("ae", 2)
    registry.promote("ae", 2, stage="archived")
    assert registry.production("ae") is None
    with pytest.raises(RegistryError, match="no production version"):
        registry.rollback("ae")
    registry.promote("ae", 2, stage="staging")
    assert registry.get("ae", 2).stage == "staging"


def test_clear_errors(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    with pytest.raises(RegistryError, match="unknown model 'ae'"):
        registry.versions("ae")
    _register(registry)
    with pytest.raises(RegistryError, match="no version 7"):
        registry.get("ae", 7)
    with pytest.raises(RegistryError, match="invalid stage 'live'"):
        registry.promote("ae", 1, stage="live")
    with pytest.raises(RegistryError, match="parent v9"):
        _register(registry, parent=9)
    with pytest.raises(RegistryError, match="invalid model name"):
        registry.register("../x", {"m": b""}, params={}, metrics={}, data_fingerprint="")
    with pytest.raises(RegistryError, match="invalid artifact file name"):
        registry.register("ae", {"a/b": b""}, params={}, metrics={}, data_fingerprint="")
    with pytest.raises(RegistryError, match="JSON"):
        registry.register("ae", {"m": b""}, params={"f": object()}, metrics={}, data_fingerprint="")
    with pytest.raises(RegistryError, match="has no file"):
        registry.get("ae", 1).path("nope")
    assert [v.version for v in registry.versions("ae")] == [1]  # failures registered nothing


def test_compare_shows_params_metrics_deltas_and_lineage(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    _register(registry, params={"epochs": 5, "lr": 0.01}, metrics={"loss": 0.5, "auc": 0.8})
    _register(registry, params={"epochs": 9, "lr": 0.01}, metrics={"loss": 0.4}, parent=1)
    _register(registry, payload=b"other", data_fingerprint="data-b", parent=2)
    _register(registry)
    diff = registry.compare("ae", 1, 3)
    assert diff["params"]["epochs"] == {"a": 5, "b": 5, "same": True}
    assert diff["params"]["lr"] == {"a": 0.01, "b": None, "same": False}
    assert diff["lineage"]["a_ancestor_of_b"] and not diff["lineage"]["b_ancestor_of_a"]
    assert diff["lineage"]["b_parents"] == [2, 1]
    assert not diff["same_data"] and not diff["same_files"]
    diff = registry.compare("ae", 2, 1)
    assert diff["metrics"]["loss"]["delta"] == pytest.approx(0.1)
    assert diff["metrics"]["auc"] == {"a": None, "b": 0.8, "same": False}
    assert diff["lineage"]["b_ancestor_of_a"] and diff["same_data"]
    unrelated = registry.compare("ae", 1, 4)["lineage"]
    assert not unrelated["a_ancestor_of_b"] and not unrelated["b_ancestor_of_a"]
    assert registry.compare("ae", 1, 4)["same_files"]


def test_a_changed_artifact_or_manifest_is_detected(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    v1 = _register(registry)
    registry.promote("ae", 1)
    artifact = v1.path("model.onnx")
    artifact.chmod(0o644)
    artifact.write_bytes(b"evil")
    with pytest.raises(TamperedError, match=r"model\.onnx changed"):
        registry.get("ae", 1)
    with pytest.raises(TamperedError):
        registry.production("ae")
    with pytest.raises(TamperedError):
        registry.read_file("ae", 1, "model.onnx")
    assert registry.versions("ae")[0].version == 1  # listing checks manifests only
    manifest = v1.directory / "manifest.json"
    manifest.chmod(0o644)
    manifest.write_text(manifest.read_text().replace('"epochs": 5', '"epochs": 6'))
    with pytest.raises(TamperedError, match=r"manifest\.json changed"):
        registry.versions("ae")


def _register_many(root: str, count: int, barrier) -> list[int]:
    registry = ModelRegistry(Path(root))
    barrier.wait()
    return [
        registry.register(
            "ae", {"m": os.urandom(64)}, params={}, metrics={}, data_fingerprint="x",
            code_version="t",
        ).version
        for _ in range(count)
    ]  # fmt: skip


def test_concurrent_registers_from_processes_get_distinct_versions(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    processes, per_process = 4, 6
    barrier = ctx.Manager().Barrier(processes)
    with ctx.Pool(processes) as pool:
        results = pool.starmap(_register_many, [(str(tmp_path), per_process, barrier)] * processes)
    got = sorted(v for versions in results for v in versions)
    assert got == list(range(1, processes * per_process + 1))
    registry = ModelRegistry(tmp_path)
    assert [v.version for v in registry.versions("ae")] == got
    assert len(registry.history("ae")) == processes * per_process
    for version in got:
        registry.get("ae", version)  # every artifact verifies


def _flip_production(root: str, times: int) -> None:
    registry = ModelRegistry(Path(root))
    for i in range(times):
        if i % 2:
            registry.rollback("ae")
        else:
            registry.promote("ae", 2)


def test_readers_never_see_a_half_written_state(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    _register(registry)
    _register(registry)
    registry.promote("ae", 1)
    writer = multiprocessing.get_context("spawn").Process(
        target=_flip_production, args=(str(tmp_path), 200)
    )
    writer.start()
    seen, reads = set(), 0
    while writer.is_alive() or reads == 0:
        current = registry.production("ae")  # raises on a torn read (JSON or hash)
        seen.add(current.version)
        assert [v.stage for v in registry.versions("ae")].count("production") == 1
        reads += 1
    writer.join()
    assert writer.exitcode == 0
    assert seen <= {1, 2} and reads > 0
    assert registry.production("ae").version == 1  # 200 flips: back where it started


def test_watcher_reports_a_promote_and_a_rollback_and_nothing_in_between(tmp_path) -> None:
    registry = ModelRegistry(tmp_path)
    watcher = ProductionWatcher(tmp_path, "ae")
    assert watcher.poll() is None  # no model yet
    _register(registry)
    assert watcher.poll() is None  # a staging version is not production
    registry.promote("ae", 1)
    assert watcher.poll().version == 1
    assert [watcher.poll() for _ in range(3)] == [None] * 3
    _register(registry)
    assert watcher.poll() is None  # registering changes the file, not production
    registry.promote("ae", 2)
    assert watcher.poll().version == 2
    assert watcher.poll() is None
    restored = pickle.loads(pickle.dumps(watcher))
    assert set(vars(restored)) == {"registry_root", "name", "_stat", "_version"}
    registry.rollback("ae")
    assert watcher.poll().version == 1 and restored.poll().version == 1
    assert watcher.poll() is None and restored.poll() is None
    # A promote and a rollback between two polls: production is where it was.
    _register(registry)
    registry.promote("ae", 3)
    registry.rollback("ae")
    assert watcher.poll() is None
    # Production removed: nothing to load, keep the current model.
    registry.promote("ae", 1, stage="archived")
    assert watcher.poll() is None and watcher.version == 1


def test_a_new_watcher_reports_the_current_production_first(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    _register(registry)
    registry.promote("ae", 1)
    watcher = ProductionWatcher(tmp_path, "ae")
    assert watcher.poll().version == 1 and watcher.poll() is None


def test_a_watcher_refuses_a_tampered_version_until_it_is_fixed(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    v1 = _register(registry, payload=b"good")
    watcher = ProductionWatcher(tmp_path, "ae")
    registry.promote("ae", 1)
    artifact = v1.path("model.onnx")
    artifact.chmod(0o644)
    artifact.write_bytes(b"bad!")
    with pytest.raises(TamperedError):
        watcher.poll()
    artifact.write_bytes(b"good")
    assert watcher.poll().version == 1


def test_fingerprint_depends_on_values_dtype_and_shape() -> None:
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    assert fingerprint_array(a) == fingerprint_array(a.copy())
    assert fingerprint_array(a) == fingerprint_array(np.asfortranarray(a))  # same values
    assert fingerprint_array(a) != fingerprint_array(a.reshape(3, 2))
    assert fingerprint_array(a) != fingerprint_array(a.astype(np.float32))
    b = a.copy()
    b[1, 2] += 1e-9
    assert fingerprint_array(a) != fingerprint_array(b)
    assert len(fingerprint_array(a)) == 64


def test_code_version_names_the_commit_or_the_package() -> None:
    version = code_version()
    assert version.startswith(("git:", "airis-mon ")), version
