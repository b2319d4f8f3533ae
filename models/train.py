"""Train the flow's service autoencoder on simulated telemetry and register it.

`train_and_register` is what ``airis models train`` and ``airis demo`` run. The model learns
the normal rows of ``hours`` of telemetry ending at ``end`` (the day before the data it will
score), and is checked on the ``hours`` before those, which it never saw: faults included,
so the registered metrics say how well it separates them (``held_out_auc``,
``held_out_f1_at_0.9``...). Both days come from one simulator run of twice ``hours``: the
simulator draws a system (capacities, latencies) and its noise from the seed, so one run
gives the same system with fresh noise on each day.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

# The training libraries (scikit-learn, onnx: about 1.6 s) load with this module, not at the
# first training: `airis demo` imports them while its rows are simulated elsewhere
# (`airis.app.demo_rows`).
import airis.models.autoencoder  # noqa: F401
from airis.models.onnx_detector import OnnxDetector
from airis.models.registry import ModelRegistry, ModelVersion, fingerprint_array
from airis.models.service_features import (
    DEFAULT_SERVICE_HIDDEN,
    DEFAULT_SERVICE_MAX_ITER,
    ServiceRows,
    separation,
    service_rows,
    train_service_autoencoder,
    training_run,
)
from airis.models.serving import MODEL_FILE, REFERENCE_FILE

__all__ = ["DEFAULT_MODEL_NAME", "TrainingRun", "npy_bytes", "train_and_register"]

#: The registered name of the flow's model (``AIRIS_ONNX_MODEL``'s default).
DEFAULT_MODEL_NAME = "service_autoencoder"


@dataclass(frozen=True)
class TrainingRun:
    """A registered version and how it was made."""

    version: ModelVersion
    train_seconds: float
    held_out: dict[str, Any]


def train_and_register(
    registry: ModelRegistry,
    name: str = DEFAULT_MODEL_NAME,
    *,
    hours: float = 24.0,
    seed: int = 7,
    end: datetime | None = None,
    hidden: tuple[int, ...] = DEFAULT_SERVICE_HIDDEN,
    max_iter: int = DEFAULT_SERVICE_MAX_ITER,
    promote: bool = False,
    rows: ServiceRows | None = None,
) -> TrainingRun:
    """Train on the ``hours`` before ``end`` (default: now), check on the ``hours`` before
    that, register the model (its parent: the production version, else the latest) and
    optionally promote it to production. Train on at least a day: a model that never saw
    the night flags it. ``rows``: `training_rows` of these ``hours``, ``seed`` and ``end``,
    if already worked out (the simulated run's rows; its time counts as training time only
    when worked out here)."""
    if hours <= 0:
        raise ValueError(f"train: hours must be > 0, got {hours}")
    end = (end or datetime.now(UTC)).replace(microsecond=0)
    sim = training_run(hours, seed, end)
    split = round(hours * 3600 / sim.interval_seconds)
    started = time.perf_counter()
    rows = rows if rows is not None else service_rows(sim)
    trained = train_service_autoencoder(
        sim, rows=rows, from_tick=split, hidden=hidden, max_iter=max_iter, seed=0, model_name=name
    )
    train_seconds = time.perf_counter() - started
    held = rows.select((rows.tick < split) & ~rows.settling)
    detector = OnnxDetector(trained.onnx_bytes, providers="cpu", model_name=f"{name}-check")
    held_out = separation(detector.score_batch(held.features, keys=held.services), held.fault)
    metrics = {
        **trained.metrics,
        "train_seconds": round(train_seconds, 2),
        "held_out_auc": held_out["auc"],
        **{
            f"held_out_{k}_at_{t}": v
            for t in ("0.9", "0.99")
            for k, v in held_out[f"at_{t}"].items()
        },
    }
    # The parent is the version this one is meant to replace: production, else the latest.
    known = name in registry.names()
    parent = (registry.production(name) or registry.latest(name)) if known else None
    version = registry.register(
        name,
        {MODEL_FILE: trained.onnx_bytes, REFERENCE_FILE: npy_bytes(trained.reference)},
        params={
            **trained.params,
            "data": "simulator",
            "seed": seed,
            "hours": hours,
            "trained_on": [(end - timedelta(hours=hours)).isoformat(), end.isoformat()],
        },
        metrics=metrics,
        data_fingerprint=fingerprint_array(trained.reference),
        parent=parent.version if parent else None,
    )
    if promote:
        version = registry.promote(name, version.version)
    return TrainingRun(version, train_seconds, held_out)


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` in ``np.save`` format (a registered ``reference.npy``)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()
