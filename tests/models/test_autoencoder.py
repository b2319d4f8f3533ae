"""Training and ONNX export of the autoencoder: graph, metadata, calibration, determinism."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from airis.models.autoencoder import (
    METADATA_KEY,
    POOLED_KEY,
    REFERENCE_ROWS,
    calibration_of,
    model_metadata,
    train_autoencoder,
)

NAMES = ["a", "b", "c", "d", "e"]


def _rows(n: int = 3000, seed: int = 0) -> np.ndarray:
    """Five features driven by two latent factors plus noise: an autoencoder can learn them."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 2))
    mix = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0], [0.5, 2.0]])
    return (latent @ mix.T + rng.normal(scale=0.05, size=(n, 5)) + 3.0).astype(np.float32)


def _session(onnx_bytes: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def trained():
    return train_autoencoder(_rows(), NAMES, hidden=(3,), seed=0, max_iter=80)


def test_graph_has_named_inputs_and_outputs(trained) -> None:
    proto = onnx.load_model_from_string(trained.onnx_bytes)
    onnx.checker.check_model(proto)
    session = _session(trained.onnx_bytes)
    assert [(i.name, i.type, i.shape[1]) for i in session.get_inputs()] == [
        ("features", "tensor(float)", 5)
    ]
    assert [o.name for o in session.get_outputs()] == ["reconstruction", "error"]
    x = _rows(10, seed=1)
    recon, error = session.run(None, {"features": x})
    assert recon.shape == (10, 5) and error.shape == (10,)
    # The error is the mean squared standardised residual of the reconstruction output.
    meta = model_metadata(trained.onnx_bytes)
    assert meta["feature_names"] == NAMES
    z = (x - np.array(meta["feature_means"], np.float32)) / _stds(_rows())
    np.testing.assert_allclose(error, ((z - recon) ** 2).mean(axis=1), rtol=1e-4, atol=1e-6)


def _stds(x: np.ndarray) -> np.ndarray:
    return np.maximum(x.astype(np.float64).std(axis=0), 1e-2).astype(np.float32)


def test_metadata_round_trip(trained, tmp_path) -> None:
    path = trained.save(tmp_path / "models" / "ae.onnx")
    from_file = model_metadata(path)
    from_bytes = model_metadata(trained.onnx_bytes)
    assert from_file == from_bytes
    props = {p.key: p.value for p in onnx.load_model(str(path)).metadata_props}
    assert json.loads(props[METADATA_KEY]) == from_file
    assert from_file["params"] == trained.params
    assert from_file["metrics"]["rows_fit"] == trained.metrics["rows_fit"] == 2400
    np.testing.assert_allclose(from_file["feature_means"], _rows().mean(axis=0), rtol=1e-5)
    cal = from_file["calibration"]
    assert len(cal["quantiles"]) == len(cal["probs"]) == 100
    assert np.all(np.diff(cal["quantiles"]) >= 0) and cal["tail_scale"] > 0


def test_learns_the_structure(trained) -> None:
    session = _session(trained.onnx_bytes)
    normal = _rows(500, seed=2)
    broken = normal.copy()
    broken[:, 2] += 3.0  # "c" no longer equals a + b
    (e_normal,) = session.run(["error"], {"features": normal})
    (e_broken,) = session.run(["error"], {"features": broken})
    assert np.median(e_broken) > 10 * np.median(e_normal)
    assert trained.metrics["calibration_error_p50"] < trained.metrics["calibration_error_p99"]


def test_deterministic_for_a_seed() -> None:
    x = _rows(1500)
    a = train_autoencoder(x, NAMES, hidden=(3,), seed=5, max_iter=10)
    b = train_autoencoder(x, NAMES, hidden=(3,), seed=5, max_iter=10)
    c = train_autoencoder(x, NAMES, hidden=(3,), seed=6, max_iter=10)
    probe = _rows(50, seed=3)

    def errors(m) -> np.ndarray:
        return _session(m.onnx_bytes).run(["error"], {"features": probe})[0]

    np.testing.assert_array_equal(errors(a), errors(b))
    np.testing.assert_array_equal(a.reference, b.reference)
    assert not np.array_equal(errors(a), errors(c))


def test_reference_is_a_sample_of_training_rows() -> None:
    x = _rows(6000)
    model = train_autoencoder(x, NAMES, hidden=(2,), max_iter=2)
    assert model.reference.shape == (REFERENCE_ROWS, 5) and model.reference.dtype == np.float32
    assert {tuple(r) for r in model.reference.tolist()} <= {tuple(r) for r in x.tolist()}
    small = train_autoencoder(x[:100], NAMES, hidden=(2,), max_iter=2)
    assert small.reference.shape == (100, 5)


def test_keyed_model_with_log_features() -> None:
    rng = np.random.default_rng(0)
    n = 1200
    keys = ["small", "big"] * (n // 2)
    scale = np.where(np.array(keys) == "big", 1000.0, 10.0)
    rate = scale * np.exp(rng.normal(0, 0.1, n))
    x = np.stack([rate, 2 * rate, rng.normal(50, 1, n)], axis=1).astype(np.float32)
    model = train_autoencoder(
        x, ["rate", "double", "cpu"], hidden=(2,), keys=keys, log_features=["rate", "double"],
        max_iter=100,
    )  # fmt: skip
    meta = model_metadata(model.onnx_bytes)
    assert meta["keys"] == [POOLED_KEY, "big", "small"]
    assert set(meta["key_feature_means"]) == {POOLED_KEY, "big", "small"}
    session = _session(model.onnx_bytes)
    assert [i.name for i in session.get_inputs()] == ["features", "key"]
    row = np.array([[1000.0, 2000.0, 50.0]], np.float32)

    def error(key: int) -> float:
        return float(session.run(["error"], {"features": row, "key": np.array([key])})[0][0])

    # Normal for "big" (row 1), far off for "small" (row 2), whose rates are 100x lower.
    assert error(1) < 1.0 and error(2) > 100 * error(1)


def test_non_finite_training_values_are_filled() -> None:
    x = _rows(1000)
    x[::7, 1] = np.nan
    x[3, 4] = np.inf
    model = train_autoencoder(x, NAMES, hidden=(2,), max_iter=3)
    meta = model_metadata(model.onnx_bytes)
    assert np.all(np.isfinite(meta["feature_means"]))
    assert np.isfinite(meta["calibration"]["tail_start"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"feature_names": ["a", "b"]}, "feature_names"),
        ({"feature_names": ["a"] * 5}, "distinct"),
        ({"log_features": ["zz"]}, "not feature names"),
        ({"hidden": ()}, "hidden"),
        ({"calibration_fraction": 1.0}, "calibration_fraction"),
        ({"keys": ["k"]}, "keys"),
        ({"keys": [POOLED_KEY] * 1000}, "reserved"),
        ({"min_std": {"zz": 1.0}}, "not feature names"),
        ({"min_std": 0.0}, "min_std"),
        ({"clip": 0.0}, "clip"),
        ({"deviation_weight": -1.0}, "deviation_weight"),
    ],
)
def test_rejects_bad_arguments(kwargs, match) -> None:
    args = {"feature_names": NAMES, **kwargs}
    with pytest.raises(ValueError, match=match):
        train_autoencoder(_rows(1000), max_iter=1, **args)


def test_calibration_of_constant_and_heavy_tailed_errors() -> None:
    flat = calibration_of(np.full(100, 0.5))
    assert flat["tail_start"] == 0.5 and flat["tail_scale"] > 0
    rng = np.random.default_rng(0)
    errors = rng.exponential(2.0, 100_000)
    cal = calibration_of(errors)
    # An exponential's mean excess over any threshold is its mean.
    assert cal["tail_scale"] == pytest.approx(2.0, rel=0.05)
    assert cal["quantiles"][50] == pytest.approx(2.0 * np.log(2), rel=0.05)
    with pytest.raises(ValueError, match="no finite"):
        calibration_of(np.array([np.nan]))


def test_model_metadata_rejects_foreign_models(trained) -> None:
    proto = onnx.load_model_from_string(trained.onnx_bytes)
    del proto.metadata_props[:]
    with pytest.raises(ValueError, match="not an airis autoencoder"):
        model_metadata(proto)


def test_min_std_by_feature_name() -> None:
    x = _rows(1000)
    floored = train_autoencoder(x, NAMES, hidden=(2,), max_iter=20, min_std={"e": 50.0})
    plain = train_autoencoder(x, NAMES, hidden=(2,), max_iter=20)
    floors = model_metadata(floored.onnx_bytes)["params"]["min_std"]
    assert floors == {"a": 0.01, "b": 0.01, "c": 0.01, "d": 0.01, "e": 50.0}
    probe = _rows(1, seed=9)
    moved = probe.copy()
    moved[0, 4] += 5.0  # a few natural deviations of "e", but a tenth of its floor

    def change(model) -> float:
        session = _session(model.onnx_bytes)
        (a,), (b,) = (session.run(["error"], {"features": p})[0] for p in (probe, moved))
        return abs(float(b) - float(a))

    assert change(floored) < change(plain) / 10


def _z(model, x: np.ndarray, clip: float | None) -> np.ndarray:
    """The graph's standardised, clipped features, recomputed from the metadata."""
    means = np.array(model_metadata(model.onnx_bytes)["feature_means"])
    z = (x - means) / _stds(_rows())
    return np.clip(z, -clip, clip) if clip is not None else z


def test_clip_and_deviation_weight_in_the_graph() -> None:
    model = train_autoencoder(
        _rows(), NAMES, hidden=(3,), max_iter=80, clip=4.0, deviation_weight=0.5
    )
    assert model.params["clip"] == 4.0 and model.params["deviation_weight"] == 0.5
    x = _rows(20, seed=1)
    x[:5, 0] += 100.0  # about 70 deviations off: clipped to 4
    recon, error = _session(model.onnx_bytes).run(None, {"features": x})
    z = _z(model, x, 4.0)
    assert np.abs(z[:5, 0]).max() == pytest.approx(4.0)
    expected = ((z - recon) ** 2).mean(axis=1) + 0.5 * (z**2).mean(axis=1)
    np.testing.assert_allclose(error, expected, rtol=1e-4, atol=1e-6)


def test_a_useless_model_falls_back_to_the_per_feature_baseline() -> None:
    # One epoch: the network has not learned the structure, and its reconstruction of the
    # held-out rows is worse than predicting the training mean (negative skill).
    x = _rows()
    useless = train_autoencoder(x, NAMES, hidden=(3,), max_iter=1, seed=2, min_skill=0.0)
    assert useless.metrics["skill"] < 0 and useless.metrics["fallback"] is True
    probe = _rows(30, seed=4)
    recon, error = _session(useless.onnx_bytes).run(None, {"features": probe})
    assert not recon.any()  # reconstruction dropped: the error is the mean squared z-score
    np.testing.assert_allclose(error, (_z(useless, probe, None) ** 2).mean(axis=1), rtol=1e-4)
    # Without a floor on the skill the same model is kept; a trained one passes the floor.
    kept = train_autoencoder(x, NAMES, hidden=(3,), max_iter=1, seed=2)
    assert kept.metrics["fallback"] is False and kept.metrics["skill"] < 0
    trained = train_autoencoder(x, NAMES, hidden=(3,), max_iter=80, min_skill=0.5)
    assert trained.metrics["skill"] > 0.8 and trained.metrics["fallback"] is False
