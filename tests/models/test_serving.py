"""`ModelServer` against a real registry and real onnxruntime sessions."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from airis.models.registry import ModelRegistry
from airis.models.serving import MODEL_FILE, ModelServer
from airis.models.train import train_and_register

END = datetime(2026, 3, 2, 9, tzinfo=UTC)
ROW = {"request_rate": 50.0, "cpu": 30.0, "memory": 50.0, "disk": 40.0}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    registry = ModelRegistry(tmp_path_factory.mktemp("registry"))
    for seed in (3, 4):
        train_and_register(registry, hours=2, seed=seed, end=END, max_iter=5)
    return registry


def test_nothing_to_serve_until_a_version_is_promoted(registry: ModelRegistry, tmp_path) -> None:
    empty = ModelServer(tmp_path, "service_autoencoder", providers="cpu")
    assert empty.score([ROW], ["order-service"]) is None and empty.version is None


def test_a_restored_server_serves_the_version_it_served(registry: ModelRegistry) -> None:
    registry.promote("service_autoencoder", 1)
    server = ModelServer(registry.root, "service_autoencoder", providers="cpu")
    before = server.score([ROW], ["order-service"])
    assert before is not None and before.version == 1
    restored = pickle.loads(pickle.dumps(server))  # what a Bytewax snapshot and resume do
    assert len(pickle.dumps(server)) < 10_000  # the model itself is not in the snapshot
    after = restored.score([ROW], ["order-service"])
    assert after is not None and after.version == 1
    assert after.scores.tolist() == before.scores.tolist()

    registry.promote("service_autoencoder", 2)  # and it still follows the registry
    assert restored.score([ROW], ["order-service"]).version == 2


def test_a_tampered_version_is_refused_and_the_current_one_keeps_serving(
    registry: ModelRegistry,
) -> None:
    registry.promote("service_autoencoder", 1)
    server = ModelServer(registry.root, "service_autoencoder", providers="cpu")
    assert server.score([ROW], ["order-service"]).version == 1
    path = registry.get("service_autoencoder", 2).path(MODEL_FILE)
    original = path.read_bytes()
    registry.promote("service_autoencoder", 2)
    path.chmod(0o644)  # then v2's model changes on disk before the flow picks it up
    path.write_bytes(original[:-10] + b"0123456789")
    try:
        batch = server.score([ROW], ["order-service"])
        assert batch is not None and batch.version == 1  # refused: v1 keeps serving
    finally:
        path.write_bytes(original)
    assert server.score([ROW], ["order-service"]).version == 2  # reported again once fixed
