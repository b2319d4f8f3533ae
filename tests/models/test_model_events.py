"""`model_events` writes each window's score as `ModelScore` validates it, as columns."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from airis.batches import ModelScoreBatch, unbatched
from airis.events import Anomaly, ModelScore
from airis.models.model_events import model_events
from airis.models.serving import ScoredBatch
from airis.operators.types import WindowValues

T0 = datetime(2026, 12, 1, tzinfo=UTC)
# Spans, services and numbers the checks vouch for, and ones validation converts or refuses.
_STARTS = st.sampled_from(
    [T0, T0 + timedelta(seconds=10), T0.astimezone(timezone(timedelta(hours=2))),
     T0.replace(tzinfo=None), datetime(2100, 1, 1, tzinfo=UTC)]
)  # fmt: skip
_SERVICES = st.sampled_from(["api", "db", "bad service", ""])
_NUMBERS = st.sampled_from([0.0, 0.25, 1.0, 0.999, 1.5, -0.1, math.inf, math.nan, 3.0])
_WINDOWS = st.lists(st.tuples(_SERVICES, _STARTS, _STARTS, _NUMBERS, _NUMBERS), max_size=8)


def _scored(scores: list[float], errors: list[float], version: int) -> ScoredBatch:
    return ScoredBatch(
        version=version,
        providers=("CPUExecutionProvider",),
        scores=np.array(scores, dtype=np.float32),
        errors=np.array(errors, dtype=np.float64),
        drift=None,
        normal_error_p99=0.9,
        normal_error_p50=0.1,
        drift_threshold=0.01,
    )


@settings(max_examples=500, deadline=None)
# Each check alone refusing what it must (the rows valid but for it; no anomaly above 1).
@example(windows=[("bad service", T0, T0, 0.5, 0.5)], name="ae", version=1, threshold=0.9)
@example(
    windows=[("api", T0.replace(tzinfo=None), T0, 0.5, 0.5)], name="ae", version=1, threshold=0.9
)
@example(
    windows=[("api", T0, T0.replace(tzinfo=None), 0.5, 0.5)], name="ae", version=1, threshold=0.9
)
@example(windows=[("api", T0, T0, 1.5, 0.5)], name="ae", version=1, threshold=2.0)
@example(windows=[("api", T0, T0, 0.5, -0.1)], name="ae", version=1, threshold=0.9)
@example(windows=[("api", T0, T0, 0.5, 0.5)], name="bad name", version=1, threshold=0.9)
@example(windows=[("api", T0, T0, 0.5, 0.5)], name="ae", version=0, threshold=0.9)
@given(
    windows=_WINDOWS,
    name=st.sampled_from(["ae", "bad name"]),
    version=st.sampled_from([1, 0]),
    threshold=st.sampled_from([0.9, 2.0]),
)
def test_the_scores_are_the_validated_scores_a_batch_a_service(
    windows: list[tuple[str, datetime, datetime, float, float]],
    name: str,
    version: int,
    threshold: float,
) -> None:
    values = [WindowValues(s, start, end, {}) for s, start, end, *_ in windows]
    scored = _scored([w[3] for w in windows], [w[4] for w in windows], version)
    order = list(dict.fromkeys(w.service for w in values))

    def validated() -> list[ModelScore]:
        return [
            ModelScore(
                window_start=w.start,
                window_end=w.end,
                service=w.service,
                model=name,
                version=version,
                score=float(score),
                error=float(error),
                providers=["CPUExecutionProvider"],
            )
            for service in order
            for w, score, error in zip(values, scored.scores, scored.errors, strict=True)
            if w.service == service
        ]

    try:
        expected = validated()
    except ValidationError:
        with pytest.raises(ValidationError):
            model_events(name, values, scored, threshold)
        return
    out = model_events(name, values, scored, threshold)
    batches = [e for e in out if isinstance(e, ModelScoreBatch)]
    assert [b.service for b in batches] == order
    got = unbatched(batches)
    assert got == expected
    for a, b in zip(got, expected, strict=True):
        assert list(a.__dict__.items()) == list(b.__dict__.items())
        assert [type(v) for v in a.__dict__.values()] == [type(v) for v in b.__dict__.values()]
        assert a.model_dump_json() == b.model_dump_json()
    anomalies = [e for e in out if isinstance(e, Anomaly)]
    flagged = [s for s in got if s.score >= threshold and math.isfinite(s.error)]
    assert sorted((a.service, a.window_start) for a in anomalies) == sorted(
        (s.service, s.window_start) for s in flagged
    )
