"""`TrainingRows`: the demo model's rows from a spawned process, as if worked out here."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from airis.app.demo_rows import MODEL_HOURS, TrainingRows
from airis.models.service_features import training_rows

DEMO_END = datetime(2026, 3, 2, 9, tzinfo=UTC)
DEMO_HOURS = 6.0
#: Where the demo's simulated hours start: the model's run ends there.
TRAINING_END = DEMO_END - timedelta(hours=DEMO_HOURS)


def test_rows_from_the_process_are_the_rows_worked_out_here() -> None:
    started = TrainingRows.start(DEMO_HOURS, 3, DEMO_END)
    assert (started.hours, started.seed, started.end) == (MODEL_HOURS, 3, TRAINING_END)

    rows = started.rows_for(MODEL_HOURS, 3, TRAINING_END)

    here = training_rows(MODEL_HOURS, 3, TRAINING_END)
    assert rows is not None and rows.services == here.services
    for field in ("features", "tick", "fault", "settling", "kind"):
        np.testing.assert_array_equal(getattr(rows, field), getattr(here, field))
    assert rows.fault.any()  # the run has its faults: the comparison covers their labels


@pytest.mark.parametrize(
    ("hours", "seed", "end"),
    [(12.0, 3, TRAINING_END), (MODEL_HOURS, 4, TRAINING_END), (MODEL_HOURS, 3, DEMO_END)],
    ids=["other hours", "other seed", "other end"],
)
def test_rows_started_for_other_arguments_are_not_given(hours, seed, end) -> None:
    future: Future = Future()
    future.set_result("rows of another run")
    started = TrainingRows(MODEL_HOURS, 3, TRAINING_END, future)

    assert started.rows_for(hours, seed, end) is None


def test_a_failed_process_gives_no_rows_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    future: Future = Future()
    future.set_exception(RuntimeError("the process could not start"))
    started = TrainingRows(MODEL_HOURS, 3, TRAINING_END, future)

    with caplog.at_level(logging.WARNING, logger="airis.app.demo_rows"):
        assert started.rows_for(MODEL_HOURS, 3, TRAINING_END) is None
    assert "the process could not start" in caplog.text
