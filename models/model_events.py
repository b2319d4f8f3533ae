"""A model-scored batch of service windows as the events the sinks write.

One `ModelScore` per window, an `Anomaly` where the score reached the threshold (signal
``model_<name>``: auxiliary in incidents, see
`airis.operators.incidents.grouping.AUXILIARY_PREFIXES`),
and the drift events of a drift window the batch completed.
"""

from __future__ import annotations

import math
from typing import Any

from airis.events import Anomaly, ModelScore, event_id
from airis.models.drift_events import drift_events, record_drift_metrics
from airis.models.serving import ScoredBatch
from airis.operators.types import WindowValues

__all__ = ["MODEL_SIGNAL_PREFIX", "model_events"]

#: Signal name prefix of a model's anomalies.
MODEL_SIGNAL_PREFIX = "model_"


def model_events(
    name: str, windows: list[WindowValues], batch: ScoredBatch, threshold: float
) -> list[Any]:
    """One `ModelScore` per window, an `Anomaly` where it scored at least ``threshold``, and
    the drift events of a completed drift window."""
    out: list[Any] = []
    signal = f"{MODEL_SIGNAL_PREFIX}{name}"
    detector = f"onnx:{name}:v{batch.version}"
    for window, score, error in zip(windows, batch.scores, batch.errors, strict=True):
        score, error = float(score), float(error)
        out.append(
            ModelScore(
                window_start=window.start,
                window_end=window.end,
                service=window.service,
                model=name,
                version=batch.version,
                score=score,
                error=error,
                providers=list(batch.providers),
            )
        )
        if score >= threshold and math.isfinite(error):
            out.append(
                Anomaly(
                    id=event_id(window.service, signal, "spike", window.start),
                    service=window.service,
                    signal=signal,
                    kind="spike",
                    window_start=window.start,
                    window_end=window.end,
                    score=score,
                    observed=error,
                    expected=batch.normal_error_p50,
                    lower=0.0,
                    upper=batch.normal_error_p99,
                    state="recent",
                    detector=detector,
                )
            )
    if batch.drift is not None:
        record_drift_metrics(batch.drift, model=name)
        ts = windows[-1].end
        out += drift_events(
            batch.drift, ts=ts, model=name, version=batch.version, threshold=batch.drift_threshold
        )
    return out
