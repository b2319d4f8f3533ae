"""Offline training of a multivariate autoencoder, exported as a self-contained ONNX model.

`train_autoencoder` fits a scikit-learn `MLPRegressor` that maps standardised feature rows to
themselves through a narrow hidden layer, then writes its weights into an ONNX graph built with
``onnx.helper`` (Gemm and Tanh nodes, nothing exotic, so any onnxruntime provider runs it):

* input ``features`` — float32 ``[N, d]`` raw feature rows, in ``feature_names`` order;
* optional input ``key`` — int64 ``[N]``, the row of the per-key normalisation table (only when
  trained with ``keys``: one model for many services, each standardised by its own statistics;
  row 0 holds the pooled statistics used for keys never seen in training);
* output ``reconstruction`` — float32 ``[N, d]``, the reconstruction in standardised units;
* output ``error`` — float32 ``[N]``, the mean squared standardised reconstruction error per
  row, plus ``deviation_weight`` times the mean squared standardised value (default 0).

Preprocessing lives in the graph: ``log1p`` of the features named in ``log_features`` (after
clipping at 0), then ``z = (x - mean) / std`` per feature (per key if keyed), optionally
clipped to ``[-clip, clip]`` so that no single feature (say one that never moved in training
and moves on a new machine) can outweigh all the others. So does everything a
scorer needs beside the graph, as JSON in the model's ``metadata_props``: the feature names, the
training means (to impute missing values), the keys, and the calibration of the error (see
`calibration_of`). `airis.models.onnx_detector.OnnxDetector` needs nothing but the file.

Why a second term in the error: the reconstruction error catches rows that break the
features' joint behaviour, but a move of many correlated metrics together is reconstructed
well (it looks like a normal state, only bigger); the deviation term (a per-feature z-score
baseline, weighted by ``deviation_weight``) catches those. A model whose held-out
reconstruction is worse than ``min_skill`` (explained variance; 0 is "no better than the
training mean") is not used: its reconstruction is set to zero, which makes the error the
per-feature baseline's (``metrics["skill"]``, ``metrics["fallback"]``).

Calibration uses errors the network has not been fitted on: the last ``calibration_fraction``
of the rows (the rows are taken to be in time order, so this also sees some of the drift a
model meets after training). Training is deterministic for a given ``seed``.

Examples
--------
>>> import random
>>> rng = random.Random(42)
>>> base = [[rng.gauss(0, 1) for _ in range(3)] for _ in range(2000)]
>>> rows = np.array([[a, b, a + b + rng.gauss(0, 0.05), c] for a, b, c in base], np.float32)
>>> model = train_autoencoder(rows, ["a", "b", "sum", "c"], hidden=(3,), seed=0)
>>> model.feature_names, model.reference.shape
(('a', 'b', 'sum', 'c'), (2000, 4))
>>> meta = model_metadata(model.onnx_bytes)
>>> meta["feature_names"], len(meta["calibration"]["quantiles"])
(['a', 'b', 'sum', 'c'], 100)
>>> model.metrics["calibration_error_p50"] < model.metrics["calibration_error_p99"]
True
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from airis.models.onnx_graph import scoring_graph

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_HIDDEN",
    "METADATA_KEY",
    "POOLED_KEY",
    "TrainedAutoencoder",
    "calibration_of",
    "model_metadata",
    "train_autoencoder",
]

#: Hidden layer sizes: one bottleneck of 16 units (38 SMD features → 16 → 38).
DEFAULT_HIDDEN: tuple[int, ...] = (16,)
#: Adam epochs; the loss flattens out well before on SMD (about 1.3 s per machine).
DEFAULT_MAX_ITER = 60
#: Share of the (time-ordered) rows held out to calibrate the reconstruction error.
DEFAULT_CALIBRATION_FRACTION = 0.2
#: Floor of a feature's standard deviation, in its (possibly log) units: a feature that never
#: moved in training must not turn a tiny change into an astronomic error.
DEFAULT_MIN_STD = 1e-2
#: Training rows kept in `TrainedAutoencoder.reference` (for drift tests).
REFERENCE_ROWS = 5_000
#: Everything a scorer needs, as JSON under this key of the ONNX model's ``metadata_props``.
METADATA_KEY = "airis.autoencoder"
#: Metadata format; bump when a scorer could misread an older model.
FORMAT_VERSION = 1
#: Name of row 0 of a keyed model's tables: statistics pooled over every key.
POOLED_KEY = "*"
#: Cumulative probabilities at which the calibration errors are stored; above the last, an
#: exponential tail fitted to the exceedances takes over (peaks over threshold).
_CAL_PROBS = np.round(np.linspace(0.0, 0.99, 100), 6)


@dataclass(frozen=True, eq=False)  # eq would compare arrays elementwise
class TrainedAutoencoder:
    """A trained autoencoder: the ONNX model and what went into it.

    Parameters
    ----------
    onnx_bytes
        The serialised ONNX model, metadata included; write it to a ``.onnx`` file as is.
    params
        The training arguments (JSON-able).
    metrics
        Training figures: rows used, seconds, reconstruction-error quantiles on the fitted and
        on the held-out calibration rows.
    reference
        A deterministic sample of at most 5,000 raw training rows (float32), for drift tests.
    feature_names
        The feature order of the model's ``features`` input.
    """

    onnx_bytes: bytes
    params: dict[str, Any]
    metrics: dict[str, Any]
    reference: np.ndarray = field(repr=False)
    feature_names: tuple[str, ...]

    def save(self, path: str | Path) -> Path:
        """Write the ONNX model to ``path`` (parents created) and return the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.onnx_bytes)
        return target


def train_autoencoder(
    features: np.ndarray,
    feature_names: Sequence[str],
    *,
    hidden: Sequence[int] = DEFAULT_HIDDEN,
    seed: int = 0,
    max_iter: int = DEFAULT_MAX_ITER,
    calibration_fraction: float = DEFAULT_CALIBRATION_FRACTION,
    log_features: Sequence[str] = (),
    keys: Sequence[str] | None = None,
    min_std: float | Mapping[str, float] = DEFAULT_MIN_STD,
    clip: float | None = None,
    deviation_weight: float = 0.0,
    min_skill: float = -math.inf,
    model_name: str = "autoencoder",
) -> TrainedAutoencoder:
    """Fit an autoencoder on ``features`` (rows in time order) and export it to ONNX.

    Parameters
    ----------
    features
        ``[n, d]`` raw training rows, normal behaviour only; non-finite values are replaced by
        their column's mean (of the finite values) before anything else.
    feature_names
        The ``d`` column names, stored in the model.
    hidden
        Sizes of the hidden layers (tanh); the narrowest one is the bottleneck.
    seed
        Seed of the weight initialisation, the batch shuffling and the reference sample.
    max_iter
        Adam epochs.
    calibration_fraction
        Share of the last rows held out of fitting, whose errors calibrate the score.
    log_features
        Names of features transformed by ``log1p(max(x, 0))`` inside the graph (rates,
        latencies: anything spanning orders of magnitude).
    keys
        One key per row (e.g. the service): each key gets its own means and deviations, and the
        model a ``key`` input. ``None``: one normalisation for all rows.
    min_std
        Floor of every standard deviation, in transformed units; a mapping gives floors by
        feature name (`DEFAULT_MIN_STD` for the others). A floor says how far a feature may
        move before it counts at all: e.g. disk usage creeps up between training and use.
    clip
        Bound of each standardised feature: one feature adds at most ``clip**2 / d`` to the
        error (``None``: unbounded).
    deviation_weight
        Weight of the mean squared standardised value in the error (0: reconstruction only).
    min_skill
        Least held-out explained variance ``1 - mean(residual**2) / mean(z**2)`` for the
        reconstruction to be used (see above; 0: no better than the training mean);
        ``-inf`` never falls back.
    model_name
        Stored in the metadata; the scorer labels its metrics with it.
    """
    started = time.perf_counter()
    x = np.asarray(features, dtype=np.float64)
    names = tuple(str(n) for n in feature_names)
    floors = _floors(names, min_std)
    _validate(x, names, hidden, max_iter, calibration_fraction, log_features, keys, floors)
    if clip is not None and not (math.isfinite(clip) and clip > 0):
        raise ValueError(f"train_autoencoder: clip must be > 0 or None, got {clip!r}")
    if not (math.isfinite(deviation_weight) and deviation_weight >= 0):
        raise ValueError(
            f"train_autoencoder: deviation_weight must be >= 0, got {deviation_weight!r}"
        )
    x = _fill_non_finite(x)
    log_mask = np.array([n in set(log_features) for n in names])
    t = _transform(x, log_mask)

    key_names, key_index = _key_index(keys, len(x))
    means, stds = _key_stats(t, key_index, len(key_names), floors)
    raw_means = _key_means(x, key_index, len(key_names))
    z = (t - means[key_index]) / stds[key_index]
    if clip is not None:
        z = np.clip(z, -clip, clip)

    n_cal = max(1, round(len(z) * calibration_fraction))
    fit, cal = z[:-n_cal], z[-n_cal:]
    mlp = MLPRegressor(
        hidden_layer_sizes=tuple(int(h) for h in hidden),
        activation="tanh",
        solver="adam",
        batch_size=min(256, len(fit)),
        learning_rate_init=1e-3,
        alpha=1e-4,
        max_iter=max_iter,
        tol=1e-5,
        random_state=seed,
    )
    with warnings.catch_warnings():
        # A capped number of epochs is the point: the budget is time, not convergence.
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(fit, fit)
    cal_residual = float(((mlp.predict(cal) - cal) ** 2).mean())
    cal_deviation = float((cal**2).mean())
    skill = 1.0 - cal_residual / cal_deviation if cal_deviation > 0 else 0.0
    fallback = not skill >= min_skill
    if fallback:
        # The reconstruction explains held-out rows no better than the training mean: drop
        # it (zero output layer); the residual is then z itself, the per-feature deviation.
        mlp.coefs_[-1][:] = 0.0
        mlp.intercepts_[-1][:] = 0.0
        logger.warning(
            "%s: held-out skill %.3f < %.3f, falling back to the deviation baseline",
            model_name,
            skill,
            min_skill,
        )
    weight = float(deviation_weight)
    fit_error = _errors(mlp, fit, weight)
    cal_error = _errors(mlp, cal, weight)
    calibration = calibration_of(cal_error)
    train_seconds = time.perf_counter() - started

    params = {
        "model_name": model_name,
        "hidden": [int(h) for h in hidden],
        "seed": int(seed),
        "max_iter": int(max_iter),
        "calibration_fraction": float(calibration_fraction),
        "log_features": [n for n in names if n in set(log_features)],
        "keyed": keys is not None,
        "min_std": dict(zip(names, floors.tolist(), strict=True)),
        "clip": clip,
        "deviation_weight": float(deviation_weight),
        "min_skill": float(min_skill),
    }
    metrics: dict[str, Any] = {
        "rows_fit": len(fit),
        "rows_calibration": len(cal),
        "epochs": int(mlp.n_iter_),
        "final_loss": float(mlp.loss_),
        "train_seconds": train_seconds,
        "skill": skill,
        "fallback": fallback,
        **_quantiles("fit_error", fit_error),
        **_quantiles("calibration_error", cal_error),
    }
    metadata = {
        "format": FORMAT_VERSION,
        "model_name": model_name,
        "feature_names": list(names),
        "feature_means": raw_means[0].tolist(),
        "keys": list(key_names) if keys is not None else None,
        "key_feature_means": (
            {k: raw_means[i].tolist() for i, k in enumerate(key_names)}
            if keys is not None
            else None
        ),
        "calibration": calibration,
        "params": params,
        "metrics": metrics,
    }
    layers = [
        (w.astype(np.float32), b.astype(np.float32), i < len(mlp.coefs_) - 1)
        for i, (w, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_, strict=True))
    ]
    proto = scoring_graph(
        names, means, 1.0 / stds, log_mask, layers, keyed=keys is not None, clip=clip,
        deviation_weight=weight,
    )  # fmt: skip
    helper.set_model_props(proto, {METADATA_KEY: json.dumps(metadata)})
    onnx.checker.check_model(proto)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(x), size=min(len(x), REFERENCE_ROWS), replace=False))
    logger.info(
        "trained %s: %d rows x %d features in %.2f s, calibration p99 error %.4g",
        model_name,
        len(x),
        len(names),
        train_seconds,
        metrics["calibration_error_p99"],
    )
    return TrainedAutoencoder(
        onnx_bytes=proto.SerializeToString(),
        params=params,
        metrics=metrics,
        reference=x[pick].astype(np.float32),
        feature_names=names,
    )


def calibration_of(errors: np.ndarray) -> dict[str, Any]:
    """The calibration of reconstruction errors of normal rows, as stored in the metadata.

    ``quantiles`` holds the errors at cumulative probabilities ``probs`` (0 to 0.99 by 0.01).
    Beyond the 0.99 quantile ``tail_start`` the tail probability is modelled as
    ``tail_prob * exp(-(e - tail_start) / tail_scale)``, ``tail_scale`` being the mean
    exceedance over ``tail_start`` (an exponential peaks-over-threshold fit), so scores keep
    rising smoothly past the largest error seen.
    """
    e = np.sort(np.asarray(errors, dtype=np.float64)[np.isfinite(errors)])
    if len(e) == 0:
        raise ValueError("calibration_of: no finite errors to calibrate with")
    quantiles = np.quantile(e, _CAL_PROBS)
    start = float(quantiles[-1])
    excess = e[e > start] - start
    spread = float(e[-1] - e[0])
    # Guard the scale: a constant error (no exceedances) must still give a finite tail.
    scale = float(excess.mean()) if len(excess) else 0.0
    scale = max(scale, 1e-6 * max(spread, abs(start), 1e-12))
    return {
        "probs": _CAL_PROBS.tolist(),
        "quantiles": quantiles.tolist(),
        "tail_start": start,
        "tail_prob": float(1.0 - _CAL_PROBS[-1]),
        "tail_scale": scale,
        "n": len(e),
        "max": float(e[-1]),
    }


def model_metadata(model: bytes | str | Path | onnx.ModelProto) -> dict[str, Any]:
    """The `METADATA_KEY` JSON of an ONNX model (bytes, a path, or a loaded proto)."""
    if isinstance(model, onnx.ModelProto):
        proto = model
    elif isinstance(model, bytes | bytearray):
        proto = onnx.load_model_from_string(bytes(model))
    else:
        proto = onnx.load_model(str(model))
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise ValueError(f"ONNX model has no {METADATA_KEY!r} metadata (not an airis autoencoder)")
    return json.loads(props[METADATA_KEY])


def _validate(
    x: np.ndarray,
    names: tuple[str, ...],
    hidden: Sequence[int],
    max_iter: int,
    calibration_fraction: float,
    log_features: Sequence[str],
    keys: Sequence[str] | None,
    floors: np.ndarray,
) -> None:
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"train_autoencoder: features must be [n, d] with d > 0, got {x.shape}")
    if len(names) != x.shape[1] or len(set(names)) != len(names):
        raise ValueError(
            f"train_autoencoder: need {x.shape[1]} distinct feature_names, got {len(names)}"
        )
    if not hidden or any(int(h) < 1 for h in hidden):
        raise ValueError(f"train_autoencoder: hidden must be positive sizes, got {hidden!r}")
    if max_iter < 1:
        raise ValueError(f"train_autoencoder: max_iter must be >= 1, got {max_iter}")
    if not 0.0 < calibration_fraction < 1.0:
        raise ValueError(
            f"train_autoencoder: calibration_fraction must be in (0, 1), got {calibration_fraction}"
        )
    if len(x) < 20 or round(len(x) * calibration_fraction) >= len(x) - 10:
        raise ValueError(f"train_autoencoder: {len(x)} rows are too few to fit and calibrate")
    unknown = sorted(set(log_features) - set(names))
    if unknown:
        raise ValueError(f"train_autoencoder: log_features {unknown} are not feature names")
    if keys is not None and len(keys) != len(x):
        raise ValueError(f"train_autoencoder: {len(keys)} keys for {len(x)} rows")
    if not np.all(floors > 0):
        raise ValueError(f"train_autoencoder: min_std must be > 0, got {floors.tolist()}")


def _fill_non_finite(x: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(x)
    if not bad.any():
        return x
    x = x.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column → 0 below
        col = np.nanmean(np.where(bad, np.nan, x), axis=0)
    col = np.where(np.isfinite(col), col, 0.0)
    x[bad] = np.broadcast_to(col, x.shape)[bad]
    return x


def _transform(x: np.ndarray, log_mask: np.ndarray) -> np.ndarray:
    """The graph's preprocessing before standardisation, in numpy (float64)."""
    if not log_mask.any():
        return x
    return np.where(log_mask, np.log1p(np.maximum(x, 0.0)), x)


def _key_index(keys: Sequence[str] | None, n: int) -> tuple[tuple[str, ...], np.ndarray]:
    """Table rows: ``(POOLED_KEY, *sorted keys)`` and each row's index into them."""
    if keys is None:
        return (POOLED_KEY,), np.zeros(n, dtype=np.int64)
    names = tuple(sorted({str(k) for k in keys}))
    if POOLED_KEY in names:
        raise ValueError(f"train_autoencoder: key {POOLED_KEY!r} is reserved for pooled stats")
    lookup = {k: i + 1 for i, k in enumerate(names)}
    return (POOLED_KEY, *names), np.array([lookup[str(k)] for k in keys], dtype=np.int64)


def _key_stats(
    t: np.ndarray, index: np.ndarray, n_keys: int, floors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per table row, the mean and floored deviation of the transformed features."""
    means = np.empty((n_keys, t.shape[1]))
    stds = np.empty((n_keys, t.shape[1]))
    means[0], stds[0] = t.mean(axis=0), t.std(axis=0)
    for k in range(1, n_keys):
        rows = t[index == k]
        means[k], stds[k] = rows.mean(axis=0), rows.std(axis=0)
    return means, np.maximum(stds, floors)


def _floors(names: tuple[str, ...], min_std: float | Mapping[str, float]) -> np.ndarray:
    if not isinstance(min_std, Mapping):
        return np.full(len(names), float(min_std))
    unknown = sorted(set(min_std) - set(names))
    if unknown:
        raise ValueError(f"train_autoencoder: min_std names {unknown} are not feature names")
    return np.array([float(min_std.get(n, DEFAULT_MIN_STD)) for n in names])


def _key_means(x: np.ndarray, index: np.ndarray, n_keys: int) -> np.ndarray:
    out = np.empty((n_keys, x.shape[1]))
    out[0] = x.mean(axis=0)
    for k in range(1, n_keys):
        out[k] = x[index == k].mean(axis=0)
    return out


def _errors(mlp: MLPRegressor, z: np.ndarray, deviation_weight: float) -> np.ndarray:
    """The graph's ``error`` in numpy: reconstruction error plus weighted deviation."""
    error = ((mlp.predict(z) - z) ** 2).mean(axis=1)
    if deviation_weight:
        error = error + deviation_weight * (z**2).mean(axis=1)
    return error


def _quantiles(prefix: str, errors: np.ndarray) -> dict[str, float]:
    qs = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}
    out = {f"{prefix}_{k}": float(np.quantile(errors, q)) for k, q in qs.items()}
    out[f"{prefix}_max"] = float(errors.max())
    return out
