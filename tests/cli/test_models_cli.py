"""`airis models ...` through `airis.cli.main` against a real registry in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from airis.cli import main
from airis.models.registry import ModelRegistry


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    registry = ModelRegistry(tmp_path / "models")
    registry.register(
        "ae", {"model.onnx": b"one"}, params={"epochs": 5}, metrics={"loss": 0.5},
        data_fingerprint="data-a", code_version="git:aaa",
    )  # fmt: skip
    registry.register(
        "ae", {"model.onnx": b"two"}, params={"epochs": 9}, metrics={"loss": 0.25},
        data_fingerprint="data-a", parent=1, code_version="git:bbb",
    )  # fmt: skip
    return registry


def _airis(capsys: pytest.CaptureFixture[str], registry: ModelRegistry, *args: str):
    code = main(["models", *args, "--registry", str(registry.root)])
    out, err = capsys.readouterr()
    return code, " ".join(out.split()), " ".join(err.split())  # rich wraps: compare words


def test_list_shows_every_version_and_stage(capsys, registry: ModelRegistry) -> None:
    registry.promote("ae", 1)
    code, out, _ = _airis(capsys, registry, "list")
    assert code == 0
    assert "ae │ 1 │ production" in out and "ae │ 2 │ staging" in out
    assert "loss=0.25" in out


def test_list_of_an_empty_registry(capsys, tmp_path: Path) -> None:
    code, out, _ = _airis(capsys, ModelRegistry(tmp_path / "none"), "list")
    assert code == 0 and "no models in" in out


def test_promote_and_rollback_change_the_registry(capsys, registry: ModelRegistry) -> None:
    assert _airis(capsys, registry, "promote", "ae", "1")[:2] == (0, "ae v1 → production")
    code, out, _ = _airis(capsys, registry, "promote", "ae", "2")
    assert (code, out) == (0, "ae v2 → production (v1 archived)")
    assert registry.production("ae").version == 2
    code, out, _ = _airis(capsys, registry, "rollback", "ae")
    assert (code, out) == (0, "ae: production v2 → v1 (rolled back)")
    assert registry.production("ae").version == 1
    assert registry.get("ae", 2).stage == "archived"
    code, out, _ = _airis(capsys, registry, "promote", "ae", "2", "--stage", "staging")
    assert (code, out) == (0, "ae v2 → staging")


def test_show_defaults_to_production_and_prints_lineage(capsys, registry) -> None:
    registry.promote("ae", 1)
    code, out, _ = _airis(capsys, registry, "show", "ae")
    assert code == 0
    assert "ae v1" in out and "git:aaa" in out and "data-a" in out and "model.onnx" in out
    assert "staging │ production │ promote" in out
    code, out, _ = _airis(capsys, registry, "show", "ae", "2")
    assert "ae v2" in out and "parent │ v1" in out and "epochs │ 9" in out


def test_compare_prints_deltas_and_ancestry(capsys, registry: ModelRegistry) -> None:
    code, out, _ = _airis(capsys, registry, "compare", "ae", "1", "2")
    assert code == 0
    assert "metrics.loss │ 0.5 │ 0.25 │ -0.25" in out
    assert "params.epochs │ 5 │ 9 │ ≠" in out
    assert "lineage: v1 is an ancestor of v2" in out
    assert "training data: same fingerprint" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "nope"), "unknown model 'nope'"),
        (("promote", "ae", "7"), "ae has no version 7"),
        (("rollback", "ae"), "rollback ae: there is no production version"),
        (("compare", "ae", "1", "3"), "ae has no version 3 (versions: 1, 2)"),
    ],
)
def test_errors_exit_1_with_a_clear_message(capsys, registry, args, message) -> None:
    code, _, err = _airis(capsys, registry, *args)
    assert code == 1
    assert err.startswith("error: ") and message in err


def test_a_tampered_version_is_an_error(capsys, registry: ModelRegistry) -> None:
    path = registry.get("ae", 1).path("model.onnx")
    path.chmod(0o644)
    path.write_bytes(b"bad")
    code, _, err = _airis(capsys, registry, "show", "ae", "1")
    assert code == 1 and "model.onnx changed since it was registered" in err


def test_the_registry_defaults_to_the_data_dir(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AIRIS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AIRIS_MODEL_DIR", raising=False)
    ModelRegistry(tmp_path / "models").register(
        "default-dir", {"m": b"x"}, params={}, metrics={}, data_fingerprint="f"
    )
    assert main(["models", "list"]) == 0
    assert "default-dir" in capsys.readouterr().out


def test_airis_model_dir_overrides_the_data_dir(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AIRIS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AIRIS_MODEL_DIR", str(tmp_path / "elsewhere"))
    ModelRegistry(tmp_path / "elsewhere").register(
        "model-dir", {"m": b"x"}, params={}, metrics={}, data_fingerprint="f"
    )
    assert main(["models", "list"]) == 0
    assert "model-dir" in capsys.readouterr().out


def test_train_registers_a_servable_model_with_its_lineage_and_held_out_check(
    capsys, tmp_path: Path
) -> None:
    from airis.models.serving import MODEL_FILE, REFERENCE_FILE, ModelServer

    registry = ModelRegistry(tmp_path / "trained")
    code, out, _ = _airis(capsys, registry, "train", "--hours", "2", "--seed", "3")
    assert code == 0 and "service_autoencoder v1 → staging" in out and "held out: AUC" in out
    code, out, _ = _airis(capsys, registry, "train", "--hours", "2", "--seed", "3", "--promote")
    assert code == 0 and "service_autoencoder v2 → production" in out

    v2 = registry.production("service_autoencoder")
    assert v2 is not None and v2.version == 2 and v2.parent == 1  # replaces the latest
    assert set(v2.files) == {MODEL_FILE, REFERENCE_FILE}
    assert v2.params["seed"] == 3 and v2.params["hours"] == 2
    assert 0 <= v2.metrics["held_out_precision_at_0.9"] <= 1 and "held_out_auc" in v2.metrics
    assert v2.code_version and v2.data_fingerprint

    server = ModelServer(registry.root, "service_autoencoder", providers="cpu")
    batch = server.score([{"cpu": 30.0, "memory": 50.0}], ["order-service"])
    assert batch is not None and batch.version == 2 and 0 <= batch.scores[0] <= 1
