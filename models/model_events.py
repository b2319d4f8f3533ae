"""A model-scored batch of service windows as the events the sinks write.

A `ModelScore` per window, as one `ModelScoreBatch` of columns per service; an `Anomaly`
where the score reached the threshold (signal ``model_<name>``: auxiliary in incidents, see
`airis.operators.incidents.grouping.AUXILIARY_PREFIXES`); and the drift events of a drift
window the batch completed.
"""

from __future__ import annotations

import math
from typing import Any

from airis.batches import ModelScoreBatch, plain_name, plain_window
from airis.events import Anomaly, event_id
from airis.models.drift_events import drift_events, record_drift_metrics
from airis.models.serving import ScoredBatch
from airis.operators.types import WindowValues

__all__ = ["MODEL_SIGNAL_PREFIX", "model_events"]

#: Signal name prefix of a model's anomalies.
MODEL_SIGNAL_PREFIX = "model_"


def model_events(
    name: str, windows: list[WindowValues], batch: ScoredBatch, threshold: float
) -> list[Any]:
    """The windows' scores as a `ModelScoreBatch` per service (in order of its first
    window), an `Anomaly` where a window scored at least ``threshold``, and the drift events
    of a completed drift window.

    A score is what `ModelScore` validates (raising what it raises), without a model per
    window: a row the checks here vouch for is taken as it is, any other one is validated.
    """
    scores: dict[str, list[tuple[Any, ...]]] = {}
    anomalies: list[Any] = []
    signal = f"{MODEL_SIGNAL_PREFIX}{name}"
    detector = f"onnx:{name}:v{batch.version}"
    version, providers = batch.version, list(batch.providers)  # one list: rows never change
    named = (
        plain_name(name) and type(version) is int and version >= 1
        and all(type(p) is str for p in providers)
    )  # fmt: skip
    values = zip(windows, batch.scores.tolist(), batch.errors.tolist(), strict=True)
    for window, score, error in values:
        score, error = float(score), float(error)
        start, end, service = window.start, window.end, window.service
        row = (start, end, service, name, version, score, error, providers)
        plain = named and 0.0 <= score <= 1.0 and error >= 0.0
        if not (plain and plain_window(service, start, end)):
            row = ModelScoreBatch.validated(row)
        rows = scores.get(service)
        if rows is None:
            scores[service] = [row]
        else:
            rows.append(row)
        if score >= threshold and math.isfinite(error):
            anomalies.append(
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
    out: list[Any] = [
        ModelScoreBatch(service, tuple(zip(*rows, strict=True))) for service, rows in scores.items()
    ]
    out += anomalies
    if batch.drift is not None:
        record_drift_metrics(batch.drift, model=name)
        ts = windows[-1].end
        out += drift_events(
            batch.drift, ts=ts, model=name, version=batch.version, threshold=batch.drift_threshold
        )
    return out
