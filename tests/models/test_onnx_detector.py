"""`OnnxDetector` with the real onnxruntime: providers, scores, imputation, pickling, metrics."""

from __future__ import annotations

import logging
import math
import pickle
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from prometheus_client import REGISTRY

from airis.models.autoencoder import model_metadata, train_autoencoder
from airis.models.onnx_detector import OnnxDetector

NAMES = ("a", "b", "c", "d", "e")
#: Whether this host could really run CUDA (the CI/dev machine has no GPU).
GPU_HOST = Path("/dev/nvidiactl").exists()


def _rows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 2))
    mix = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0], [0.5, 2.0]])
    return (latent @ mix.T + rng.normal(scale=0.05, size=(n, 5)) + 3.0).astype(np.float32)


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return train_autoencoder(
        _rows(3000), NAMES, hidden=(3,), max_iter=200, model_name="t"
    ).onnx_bytes


@pytest.fixture(scope="module")
def detector(model_bytes) -> OnnxDetector:
    return OnnxDetector(model_bytes, providers="cpu", model_name="test_onnx")


def test_cpu_provider_in_use(detector) -> None:
    assert detector.providers == ("CPUExecutionProvider",)
    assert detector.feature_names == NAMES
    assert detector.keys is None


@pytest.mark.skipif(GPU_HOST, reason="this host has an NVIDIA device: CUDA may really start")
def test_require_gpu_raises_without_a_gpu(model_bytes) -> None:
    # onnxruntime-gpu lists CUDA as available here although no GPU exists (STACK-NOTES).
    assert "CUDAExecutionProvider" in ort.get_available_providers()
    for providers in ("cuda", "auto"):
        with pytest.raises(RuntimeError, match="CPUExecutionProvider") as info:
            OnnxDetector(model_bytes, providers=providers, require_gpu=True)
        assert "CUDA" in str(info.value)


@pytest.mark.skipif(GPU_HOST, reason="this host has an NVIDIA device: CUDA may really start")
def test_cuda_without_a_gpu_falls_back_loudly(model_bytes, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="airis.models.onnx_detector"):
        detector = OnnxDetector(model_bytes, providers="cuda", model_name="fallback")
    assert detector.providers == ("CPUExecutionProvider",)
    assert "scoring on CPU" in caplog.text
    value = REGISTRY.get_sample_value(
        "airis_onnx_provider", {"model": "fallback", "provider": "CPUExecutionProvider"}
    )
    assert value == 1.0
    cuda = REGISTRY.get_sample_value(
        "airis_onnx_provider", {"model": "fallback", "provider": "CUDAExecutionProvider"}
    )
    assert cuda == 0.0


def test_auto_without_a_gpu_uses_cpu(model_bytes) -> None:
    detector = OnnxDetector(model_bytes, providers="auto")
    assert "CPUExecutionProvider" in detector.providers
    if not GPU_HOST:
        assert detector.providers == ("CPUExecutionProvider",)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"providers": "tpu"}, "providers"),
        ({"providers": "cpu", "require_gpu": True}, "contradicts"),
        ({"intra_op_threads": -1}, "intra_op_threads"),
        ({"tail_power": 0.0}, "tail_power"),
    ],
)
def test_rejects_bad_settings(model_bytes, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        OnnxDetector(model_bytes, **kwargs)


def test_scores_are_calibrated(detector) -> None:
    normal = detector.score_batch(_rows(2000, seed=1))
    assert normal.shape == (2000,) and np.all((normal >= 0) & (normal <= 1))
    # Normal rows: median tail about 0.5, i.e. a score near 1 - 0.5 ** 0.3 = 0.19.
    assert 0.05 < np.median(normal) < 0.4
    assert np.mean(normal >= 0.9) < 0.01
    broken = _rows(200, seed=2)
    broken[:, 2] += 6.0  # "c" no longer equals a + b (+ 3): about 4 deviations off
    assert np.median(detector.score_batch(broken)) > 0.9
    way_off = detector.score_batch(np.full((1, 5), 1e6, np.float32))
    assert way_off[0] == pytest.approx(1.0)


def test_score_is_monotone_in_the_error(detector) -> None:
    x = np.full((50, 5), 3.0, np.float32)  # the mean row
    x[:, 2] += np.linspace(0, 8, 50)  # ever further from a + b
    scores = detector.score_batch(x)
    assert np.all(np.diff(scores) >= -1e-9)
    assert scores[0] < 0.5 < 0.95 < scores[-1]


def test_score_rows_matches_score_batch_in_any_key_order(detector) -> None:
    x = _rows(20, seed=4)
    rows = [dict(reversed(list(zip(NAMES, r, strict=True)))) for r in x.tolist()]
    np.testing.assert_allclose(detector.score_rows(rows), detector.score_batch(x), rtol=1e-6)


def test_missing_and_non_finite_features_are_imputed(detector) -> None:
    means = detector.metadata["feature_means"]
    base = dict(zip(NAMES, _rows(1, seed=5)[0].tolist(), strict=True))
    imputed = {**base, "c": means[2]}
    variants = [
        {k: v for k, v in base.items() if k != "c"},
        {**base, "c": math.nan},
        {**base, "c": math.inf},
        {**base, "c": None},
        {**base, "c": "not a number"},
    ]
    expected = detector.score_rows([imputed])[0]
    scores = detector.score_rows(variants)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert np.all(np.isfinite(detector.score_rows([{}, {"zz": 1.0}])))
    x = _rows(3, seed=6)
    x[1, 0] = np.nan
    assert np.all(np.isfinite(detector.score_batch(x)))


def test_shapes(detector) -> None:
    assert detector.score_batch(np.zeros((0, 5), np.float32)).shape == (0,)
    assert detector.score_rows([]).shape == (0,)
    with pytest.raises(ValueError, match="5 features"):
        detector.score_batch(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="no keys"):
        detector.score_batch(np.zeros((1, 5), np.float32), keys=["x"])


def test_pickle_round_trip_from_bytes_and_path(model_bytes, detector, tmp_path) -> None:
    x = _rows(100, seed=7)
    clone = pickle.loads(pickle.dumps(detector))
    np.testing.assert_array_equal(clone.score_batch(x), detector.score_batch(x))
    assert clone.providers == detector.providers and clone.model_name == "test_onnx"
    path = tmp_path / "ae.onnx"
    path.write_bytes(model_bytes)
    from_path = OnnxDetector(path, providers="cpu")
    state = pickle.dumps(from_path)
    assert len(state) < 1_000  # the path travels, not the model
    np.testing.assert_array_equal(pickle.loads(state).score_batch(x), detector.score_batch(x))


def test_metadata_round_trip(model_bytes, detector) -> None:
    assert detector.metadata == model_metadata(model_bytes)
    assert detector.metadata["model_name"] == "t"
    assert "t" in repr(OnnxDetector(model_bytes, providers="cpu"))


def test_keyed_model_scores_each_key_by_its_own_statistics() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    keys = ["small", "big"] * (n // 2)
    scale = np.where(np.array(keys) == "big", 1000.0, 10.0)
    rate = scale * np.exp(rng.normal(0, 0.1, n))
    x = np.stack([rate, 2 * rate * np.exp(rng.normal(0, 0.02, n))], axis=1)
    trained = train_autoencoder(
        x, ["rate", "double"], hidden=(1,), keys=keys, log_features=["rate", "double"],
        max_iter=200,
    )  # fmt: skip
    detector = OnnxDetector(trained.onnx_bytes, providers="cpu")
    assert detector.keys == ("*", "big", "small")
    row = {"rate": 1000.0, "double": 2000.0}
    big, small, unknown = detector.score_rows([row] * 3, keys=["big", "small", "nobody"])
    assert big < 0.6 and small > 0.99 and 0 <= unknown <= 1
    # A missing feature takes the key's own training mean, not the pooled one.
    imputed = detector.score_rows([{"rate": 10.0}], keys=["small"])[0]
    assert imputed < 0.6
    with pytest.raises(ValueError, match="2 keys for 1 rows"):
        detector.score_rows([row], keys=["big", "small"])


def test_batch_metrics(model_bytes) -> None:
    detector = OnnxDetector(model_bytes, providers="cpu", model_name="metrics_test")
    labels = {"model": "metrics_test"}
    before = REGISTRY.get_sample_value("airis_onnx_batch_rows_count", labels) or 0.0
    rows_before = REGISTRY.get_sample_value("airis_onnx_batch_rows_sum", labels) or 0.0
    scores = detector.score_batch(_rows(64, seed=8))
    assert REGISTRY.get_sample_value("airis_onnx_batch_rows_count", labels) == before + 1
    assert REGISTRY.get_sample_value("airis_onnx_batch_rows_sum", labels) == rows_before + 64
    assert REGISTRY.get_sample_value("airis_onnx_inference_seconds_count", labels) >= 1
    top = REGISTRY.get_sample_value(
        "airis_onnx_score_quantile", {"model": "metrics_test", "quantile": "1"}
    )
    median = REGISTRY.get_sample_value(
        "airis_onnx_score_quantile", {"model": "metrics_test", "quantile": "0.5"}
    )
    assert top == pytest.approx(scores.max()) and median <= top
