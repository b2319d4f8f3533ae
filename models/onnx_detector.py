"""Vectorised scoring of feature rows with an ONNX autoencoder, as a calibrated score in [0, 1].

`OnnxDetector` runs a model written by `airis.models.autoencoder.train_autoencoder` with
onnxruntime: one ``session.run`` per batch, for all keys (services, machines) at once.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort

from airis.telemetry import (
    ONNX_BATCH_ROWS,
    ONNX_INFERENCE_SECONDS,
    ONNX_PROVIDER,
    ONNX_SCORE_QUANTILE,
)

logger = logging.getLogger(__name__)

__all__ = ["OnnxDetector"]

#: Exponent of the map from tail probability to score (the one `EnsembleDetector` uses, so that
#: the scores of the online detectors and of this model mean the same thing).
DEFAULT_TAIL_POWER = 0.3
#: Key of the model's JSON metadata (`airis.models.autoencoder.METADATA_KEY`).
_METADATA_KEY = "airis.autoencoder"
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"
#: Quantiles of each batch's scores exported as `ONNX_SCORE_QUANTILE`.
_SCORE_QUANTILES = (0.5, 0.9, 0.99, 1.0)
#: Device nodes of an NVIDIA driver (Linux, WSL): without one, asking for CUDA only logs errors.
_GPU_DEVICES = ("/dev/nvidiactl", "/dev/dxg")

Providers = Literal["auto", "cpu", "cuda"]


class OnnxDetector:
    """Scores feature rows by the reconstruction error of an ONNX autoencoder.

    The model's ``error`` output (mean squared standardised reconstruction error per row) is
    turned into a tail probability against the errors of held-out normal rows, stored in the
    model's metadata: the empirical share of normal rows with a larger error, and beyond their
    0.99 quantile an exponential tail fitted to the largest ones. The score is
    ``1 - tail ** tail_power``: with the default 0.3 a typical normal row (tail 0.5) scores
    0.19, a row worse than 90 % of normal ones 0.5, 0.9 means a tail of 5e-4 and 0.99 one of
    2e-7 (the same scale as `~airis.operators.detectors.ensemble_detector.EnsembleDetector`). A row
    far beyond the largest normal error approaches 1. There is no warm-up and no learning: the
    model was trained offline, and the same rows always get the same scores.

    Execution providers: ``"cpu"``; ``"cuda"`` (CUDA first, CPU for what it cannot run);
    ``"auto"`` (CUDA only where onnxruntime offers it and an NVIDIA device is present).
    onnxruntime falls back to CPU silently when CUDA cannot start, so the providers actually
    in use are read from the session (`providers`), logged once, and exported as the
    ``airis_onnx_provider`` metric; with ``require_gpu`` a session without CUDA raises.

    Missing or non-finite features are imputed with the model's training means (per key for a
    keyed model), so a row is always scored. The detector pickles as its model source and
    settings; unpickling rebuilds the session (checking ``require_gpu`` again).

    Parameters
    ----------
    model
        Path of the ``.onnx`` file, or its bytes.
    providers
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    require_gpu
        Raise `RuntimeError` unless the CUDA provider is in use.
    intra_op_threads
        Threads onnxruntime may use inside one run; 0 lets it choose (all cores).
    tail_power
        Exponent of the map from tail probability to score.
    model_name
        Label of the metrics; the name stored in the model when ``None``.

    Examples
    --------
    >>> import random
    >>> from airis.models.autoencoder import train_autoencoder
    >>> rng = random.Random(42)
    >>> rows = []
    >>> for _ in range(3000):
    ...     a, b = rng.gauss(0, 1), rng.gauss(0, 1)
    ...     rows.append([a, b, a + b + rng.gauss(0, 0.05)])
    >>> names = ["a", "b", "a_plus_b"]
    >>> trained = train_autoencoder(np.array(rows), names, hidden=(2,), max_iter=400)
    >>> detector = OnnxDetector(trained.onnx_bytes, providers="cpu")
    >>> detector.providers, detector.feature_names
    (('CPUExecutionProvider',), ('a', 'b', 'a_plus_b'))
    >>> normal = {"a": 0.3, "b": -0.2, "a_plus_b": 0.1}
    >>> broken = {"a": 0.3, "b": -0.2, "a_plus_b": 3.0}  # the sum no longer adds up
    >>> scores = detector.score_rows([normal, broken, {"a": 0.3}])  # b and a_plus_b imputed
    >>> scores.round(2)
    array([0.04, 0.8 , 0.45])
    """

    def __init__(
        self,
        model: str | Path | bytes,
        *,
        providers: Providers = "auto",
        require_gpu: bool = False,
        intra_op_threads: int = 1,
        tail_power: float = DEFAULT_TAIL_POWER,
        model_name: str | None = None,
    ) -> None:
        if providers not in ("auto", "cpu", "cuda"):
            raise ValueError(
                f"OnnxDetector: providers must be auto, cpu or cuda, got {providers!r}"
            )
        if require_gpu and providers == "cpu":
            raise ValueError("OnnxDetector: require_gpu=True contradicts providers='cpu'")
        if intra_op_threads < 0:
            raise ValueError(f"OnnxDetector: intra_op_threads must be >= 0, got {intra_op_threads}")
        if not (math.isfinite(tail_power) and tail_power > 0):
            raise ValueError(f"OnnxDetector: tail_power must be > 0, got {tail_power!r}")
        self.model = model if isinstance(model, bytes) else str(model)
        self.providers_requested = providers
        self.require_gpu = require_gpu
        self.intra_op_threads = intra_op_threads
        self.tail_power = tail_power
        self.model_name = model_name
        self._build()

    # -- public ---------------------------------------------------------------------------

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The model's feature order (columns of `score_batch`'s input)."""
        return self._names

    @property
    def metadata(self) -> dict[str, Any]:
        """The model's JSON metadata: names, means, keys, calibration, training params."""
        return self._meta

    @property
    def providers(self) -> tuple[str, ...]:
        """The execution providers the session actually uses, in priority order."""
        return self._providers

    @property
    def keys(self) -> tuple[str, ...] | None:
        """The keys a keyed model normalises separately (``None``: not keyed)."""
        return self._keys

    def score_batch(self, x: np.ndarray, keys: Sequence[str] | None = None) -> np.ndarray:
        """Scores in [0, 1] of the rows of ``x`` (``[n, d]``, model feature order).

        ``keys`` names each row's key for a keyed model (unknown keys and ``None`` use the
        pooled statistics); a model without keys rejects them.
        """
        return self.scores_of(self.errors_batch(x, keys))

    def score_rows(
        self, rows: Sequence[Mapping[str, float]], keys: Sequence[str] | None = None
    ) -> np.ndarray:
        """Scores of feature dicts; missing, ``None`` or non-finite features are imputed."""
        return self.score_batch(self.as_array(rows), keys)

    def errors_batch(self, x: np.ndarray, keys: Sequence[str] | None = None) -> np.ndarray:
        """The model's reconstruction error of each row (one ``session.run``); see `score_batch`."""
        started = time.perf_counter()
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self._names):
            raise ValueError(
                f"OnnxDetector({self._label}): expected rows of {len(self._names)} features "
                f"{self._names[:3]}..., got shape {x.shape}"
            )
        index = self._key_index(keys, len(x))
        if len(x) == 0:
            return np.zeros(0, dtype=np.float64)
        if not np.isfinite(x).all():
            x = self._impute(x, index)
        feeds: dict[str, np.ndarray] = {"features": np.ascontiguousarray(x)}
        if self._keys is not None:
            feeds["key"] = index
        (error,) = self._session.run(["error"], feeds)
        self._m_seconds.observe(time.perf_counter() - started)
        self._m_rows.observe(len(x))
        return error.astype(np.float64)

    def scores_of(self, errors: np.ndarray) -> np.ndarray:
        """Calibrated scores in [0, 1] of reconstruction errors (see the class docstring)."""
        scores = self._calibrate(np.asarray(errors, dtype=np.float64))
        if len(scores):
            self._observe_scores(scores)
        return scores

    def normal_error(self, quantile: float) -> float:
        """The reconstruction error below which ``quantile`` of held-out normal rows fall."""
        return float(np.interp(quantile, self._cal_p, self._cal_q))

    def as_array(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """Feature dicts as an ``[n, d]`` array in model order (missing features as NaN)."""
        names = self._names
        try:
            x = np.array([[row.get(n, math.nan) for n in names] for row in rows], dtype=np.float32)
        except (TypeError, ValueError):
            x = np.array([[_as_float(row.get(n)) for n in names] for row in rows], np.float32)
        return x.reshape(len(rows), len(names))

    # -- state ----------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "providers": self.providers_requested,
            "require_gpu": self.require_gpu,
            "intra_op_threads": self.intra_op_threads,
            "tail_power": self.tail_power,
            "model_name": self.model_name,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.model = state["model"]
        self.providers_requested = state["providers"]
        self.require_gpu = state["require_gpu"]
        self.intra_op_threads = state["intra_op_threads"]
        self.tail_power = state["tail_power"]
        self.model_name = state["model_name"]
        self._build()

    def __repr__(self) -> str:
        source = f"<{len(self.model)} bytes>" if isinstance(self.model, bytes) else self.model
        return f"OnnxDetector({source!r}, model_name={self._label!r}, providers={self._providers})"

    # -- internals ------------------------------------------------------------------------

    def _build(self) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        wanted = self._wanted_providers()
        self._session = ort.InferenceSession(self.model, options, providers=wanted)
        self._providers = tuple(self._session.get_providers())
        meta = self._session.get_modelmeta().custom_metadata_map
        if _METADATA_KEY not in meta:
            raise ValueError(f"OnnxDetector: {self._source()} has no {_METADATA_KEY!r} metadata")
        self._meta = json.loads(meta[_METADATA_KEY])
        self._names = tuple(self._meta["feature_names"])
        self._label = self.model_name or self._meta.get("model_name", "autoencoder")
        keys = self._meta.get("keys")
        self._keys = tuple(keys) if keys is not None else None
        self._key_rows = {k: i for i, k in enumerate(keys or ())}
        if self._keys is not None:
            table = self._meta["key_feature_means"]
            self._means = np.array([table[k] for k in self._keys], dtype=np.float32)
        else:
            self._means = np.array([self._meta["feature_means"]], dtype=np.float32)
        cal = self._meta["calibration"]
        self._cal_q = np.asarray(cal["quantiles"], dtype=np.float64)
        self._cal_p = np.asarray(cal["probs"], dtype=np.float64)
        self._tail_start = float(cal["tail_start"])
        self._tail_prob = float(cal["tail_prob"])
        self._tail_scale = float(cal["tail_scale"])
        self._bind_metrics()
        logger.info(
            "onnx model %s: providers requested %s, in use %s",
            self._label,
            wanted,
            list(self._providers),
        )
        if _CUDA in wanted and _CUDA not in self._providers:
            available = ort.get_available_providers()
            message = (
                f"OnnxDetector({self._label}): asked for {wanted} but the session uses "
                f"{list(self._providers)} (onnxruntime lists {available} as available; "
                "CUDA needs a usable NVIDIA GPU with CUDA 13 and cuDNN 9 libraries)"
            )
            if self.require_gpu:
                raise RuntimeError(message)
            logger.warning("%s; scoring on CPU", message)
        elif self.require_gpu and _CUDA not in self._providers:
            raise RuntimeError(
                f"OnnxDetector({self._label}): require_gpu=True but providers="
                f"{self.providers_requested!r} found no usable GPU (in use: "
                f"{list(self._providers)}, available: {ort.get_available_providers()})"
            )

    def _wanted_providers(self) -> list[str]:
        if self.providers_requested == "cpu":
            return [_CPU]
        if self.providers_requested == "cuda":
            return [_CUDA, _CPU]
        offered = _CUDA in ort.get_available_providers()
        return [_CUDA, _CPU] if offered and _gpu_device_present() else [_CPU]

    def _source(self) -> str:
        return f"<{len(self.model)} bytes>" if isinstance(self.model, bytes) else str(self.model)

    def _bind_metrics(self) -> None:
        label = self._label
        # 0 for what is offered but not in use: a silent fallback shows as CUDA = 0.
        for provider in {*ort.get_available_providers(), *self._providers}:
            in_use = provider in self._providers
            ONNX_PROVIDER.labels(model=label, provider=provider).set(1 if in_use else 0)
        self._m_seconds = ONNX_INFERENCE_SECONDS.labels(model=label)
        self._m_rows = ONNX_BATCH_ROWS.labels(model=label)
        self._m_quantiles = [
            ONNX_SCORE_QUANTILE.labels(model=label, quantile=f"{q:g}") for q in _SCORE_QUANTILES
        ]

    def _key_index(self, keys: Sequence[str] | None, n: int) -> np.ndarray:
        if self._keys is None:
            if keys is not None:
                raise ValueError(f"OnnxDetector({self._label}): the model has no keys")
            return np.zeros(n, dtype=np.int64)
        if keys is None:
            return np.zeros(n, dtype=np.int64)
        if len(keys) != n:
            raise ValueError(f"OnnxDetector({self._label}): {len(keys)} keys for {n} rows")
        rows = self._key_rows
        return np.fromiter((rows.get(k, 0) for k in keys), dtype=np.int64, count=n)

    def _impute(self, x: np.ndarray, index: np.ndarray) -> np.ndarray:
        means = self._means[index] if self._keys is not None else self._means
        return np.where(np.isfinite(x), x, means)

    def _calibrate(self, error: np.ndarray) -> np.ndarray:
        """Tail probability of each error among normal ones, mapped to ``1 - tail ** power``."""
        e = error.astype(np.float64)
        e[np.isnan(e)] = np.inf  # an overflowing row is as anomalous as it gets
        body = 1.0 - np.interp(e, self._cal_q, self._cal_p)
        excess = np.maximum(e - self._tail_start, 0.0) / self._tail_scale
        tail = np.where(e > self._tail_start, self._tail_prob * np.exp(-excess), body)
        return 1.0 - np.power(np.clip(tail, 0.0, 1.0), self.tail_power)

    def _observe_scores(self, scores: np.ndarray) -> None:
        """A few quantiles of the batch's scores (nearest rank: np.quantile costs more than
        the model)."""
        n = len(scores)
        ranked = np.sort(scores)
        for gauge, q in zip(self._m_quantiles, _SCORE_QUANTILES, strict=True):
            gauge.set(float(ranked[min(n - 1, max(0, math.ceil(q * n) - 1))]))


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _gpu_device_present() -> bool:
    return any(Path(p).exists() for p in _GPU_DEVICES)
