"""Serve a registered model's production version to a running flow, with hot reload.

`ModelServer` scores batches of feature rows with the production version of one model in a
`~airis.models.registry.ModelRegistry`. Before each batch it polls the registry (one
``stat()``): a newly promoted version, or a rollback, is loaded and scores the batch, so
every row is scored exactly once, by exactly one version, and the flow never restarts.
A version that cannot be loaded (a missing or tampered file) is logged and counted, and the
current one keeps serving; one that would run on CPU when the settings require a GPU stops
the flow with the providers asked for and available.

A version's artifacts: ``model.onnx`` (`~airis.models.onnx_detector.OnnxDetector`) and,
optionally, ``reference.npy`` (training feature rows) for the
`~airis.operators.drift.ks_drift.KSDrift` test of the live rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from airis.models.onnx_detector import OnnxDetector
from airis.models.registry import ModelRegistry, ModelVersion, ProductionWatcher, RegistryError
from airis.operators.drift.ks_drift import DriftReport, KSDrift
from airis.telemetry import MODEL_RELOADS, MODEL_VERSION

logger = logging.getLogger(__name__)

__all__ = ["MODEL_FILE", "REFERENCE_FILE", "ModelServer", "ScoredBatch"]

#: The ONNX model's file name in a registered version.
MODEL_FILE = "model.onnx"
#: The training reference rows (``np.save`` format) for drift tests, when registered.
REFERENCE_FILE = "reference.npy"


@dataclass(frozen=True)
class ScoredBatch:
    """One batch scored by one version: scores in [0, 1], reconstruction errors, and the drift
    report of a live window the batch completed (or None)."""

    version: int
    providers: tuple[str, ...]
    scores: np.ndarray
    errors: np.ndarray
    drift: DriftReport | None
    #: Reconstruction error below which 99 % of held-out normal rows fall (the band's top).
    normal_error_p99: float
    #: Median error of held-out normal rows (what a normal row looks like).
    normal_error_p50: float
    #: The drift test's family-wise significance.
    drift_threshold: float


class ModelServer:
    """The production version of model ``name`` in the registry at ``registry_root``.

    `score` returns None while the model has no production version (the flow carries on
    without it). Pickles as its configuration and the version it serves; unpickling loads
    that version again (the drift window restarts empty).

    Parameters
    ----------
    registry_root
        The registry directory.
    name
        The registered model's name.
    providers
        onnxruntime providers: ``"auto"``, ``"cpu"`` or ``"cuda"`` (see `OnnxDetector`).
    require_gpu
        Raise `RuntimeError` (and so stop the flow) when a version would not run on the GPU.
    drift_window
        Live rows per drift test.
    drift_sample_every
        One row in this many (at random) goes into the drift window.
    seed
        Seed of that sampling.
    drift_p_threshold
        Family-wise significance of each drift test.
    """

    def __init__(
        self,
        registry_root: Path | str,
        name: str,
        *,
        providers: Literal["auto", "cpu", "cuda"] = "auto",
        require_gpu: bool = False,
        drift_window: int = 2000,
        drift_p_threshold: float = 0.01,
        drift_sample_every: int = 64,
        seed: int = 0,
    ) -> None:
        self.registry_root = Path(registry_root)
        self.name = name
        self.providers = providers
        self.require_gpu = require_gpu
        self.drift_window = drift_window
        self.drift_p_threshold = drift_p_threshold
        if drift_sample_every < 1:
            raise ValueError(f"ModelServer: drift_sample_every must be >= 1: {drift_sample_every}")
        self.drift_sample_every = drift_sample_every
        self.seed = seed
        self._sampler = np.random.default_rng(seed)
        self._watcher = ProductionWatcher(self.registry_root, name)
        self._version: int | None = None
        self._detector: OnnxDetector | None = None
        self._drift: KSDrift | None = None
        self._warned_missing = False

    def __repr__(self) -> str:
        return f"ModelServer({str(self.registry_root)!r}, {self.name!r}, version={self._version})"

    @property
    def version(self) -> int | None:
        """The version serving now (None before one was loaded)."""
        return self._version

    def serving(self) -> bool:
        """Whether a version serves now (one promoted since the last call is loaded first)."""
        self.reload_if_promoted()
        return self._detector is not None and self._version is not None

    def score(
        self, rows: Sequence[Mapping[str, float]], keys: Sequence[str] | None = None
    ) -> ScoredBatch | None:
        """Score feature dicts (one ``session.run``) with the production version of now."""
        self.reload_if_promoted()
        if self._detector is None or self._version is None:
            return None
        detector = self._detector
        x = detector.as_array(rows)
        model_keys = keys if detector.keys is not None else None
        errors = detector.errors_batch(x, model_keys)
        drift = self._drift.update_batch(self._sample(x)) if self._drift is not None else None
        return ScoredBatch(
            version=self._version,
            providers=detector.providers,
            scores=detector.scores_of(errors),
            errors=errors,
            drift=drift,
            normal_error_p99=detector.normal_error(0.99),
            normal_error_p50=detector.normal_error(0.5),
            drift_threshold=self.drift_p_threshold,
        )

    def _sample(self, x: np.ndarray) -> np.ndarray:
        """A random share of 1 in ``drift_sample_every`` rows, so that a drift window spans
        many hours (a window of minutes always differs from a day of training data: daily
        cycles) without aliasing with the order of the services in a batch."""
        if self.drift_sample_every == 1:
            return x
        return x[self._sampler.random(len(x)) < 1.0 / self.drift_sample_every]

    def reload_if_promoted(self) -> bool:
        """Load the production version if it changed since the last call; True if loaded."""
        try:
            found = self._watcher.poll()
        except (RegistryError, OSError, ValueError) as exc:
            MODEL_RELOADS.labels(model=self.name, outcome="failed").inc()
            logger.error(
                "model %s: cannot read the registry (%s); keeping v%s",
                self.name,
                exc,
                self._version,
            )
            return False
        if found is None:
            if self._version is None and not self._warned_missing:
                self._warned_missing = True
                logger.warning(
                    "model %s has no production version in %s: ONNX scoring starts when one "
                    "is promoted (airis models train --promote)",
                    self.name,
                    self.registry_root,
                )
            return False
        return self._load(found)

    def _load(self, found: ModelVersion) -> bool:
        try:
            detector = OnnxDetector(
                found.path(MODEL_FILE),
                providers=self.providers,
                require_gpu=self.require_gpu,
                model_name=self.name,
            )
            drift = None
            if REFERENCE_FILE in found.files:
                reference = np.load(found.path(REFERENCE_FILE))
                drift = KSDrift(
                    reference,
                    detector.feature_names,
                    window=self.drift_window,
                    p_threshold=self.drift_p_threshold,
                )
        except (RegistryError, OSError, ValueError, RuntimeError) as exc:
            MODEL_RELOADS.labels(model=self.name, outcome="failed").inc()
            if self.require_gpu and isinstance(exc, RuntimeError):
                raise  # the settings demand a GPU that is not there: stop, loudly
            logger.error(
                "model %s v%d could not be loaded (%s); keeping v%s",
                self.name,
                found.version,
                exc,
                self._version,
            )
            return False
        previous = self._version
        self._detector, self._drift, self._version = detector, drift, found.version
        MODEL_VERSION.labels(model=self.name).set(found.version)
        MODEL_RELOADS.labels(model=self.name, outcome="loaded").inc()
        logger.info(
            "model %s: now serving v%d (was %s) on %s",
            self.name,
            found.version,
            f"v{previous}" if previous else "none",
            list(detector.providers),
        )
        return True

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_detector"] = state["_drift"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._version is not None:
            try:
                found = ModelRegistry(self.registry_root).get(self.name, self._version)
            except (RegistryError, OSError) as exc:
                logger.error(
                    "model %s v%d is gone after a restore: %s", self.name, self._version, exc
                )
                self._version = None
                return
            self._load(found)
