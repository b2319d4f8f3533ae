"""`train_and_register` with rows worked out before (what `airis demo` gives it)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import onnx

from airis.models.registry import ModelRegistry
from airis.models.service_features import training_rows
from airis.models.serving import MODEL_FILE, REFERENCE_FILE
from airis.models.train import train_and_register

END = datetime(2026, 3, 2, 9, tzinfo=UTC)


def test_rows_given_train_the_model_the_run_would(tmp_path) -> None:
    given = ModelRegistry(tmp_path / "given")
    worked_out = ModelRegistry(tmp_path / "worked_out")
    rows = training_rows(2.0, 5, END)

    with_rows = train_and_register(given, hours=2, seed=5, end=END, max_iter=5, rows=rows)
    without = train_and_register(worked_out, hours=2, seed=5, end=END, max_iter=5)

    assert with_rows.held_out == without.held_out
    assert with_rows.version.params == without.version.params
    reference = [np.load(run.version.path(REFERENCE_FILE)) for run in (with_rows, without)]
    np.testing.assert_array_equal(*reference)
    # The same weights and graph (the model's metadata holds its own fit time).
    graphs = [onnx.load_model(run.version.path(MODEL_FILE)).graph for run in (with_rows, without)]
    assert graphs[0].SerializeToString() == graphs[1].SerializeToString()


def test_rows_given_are_the_rows_trained_on(tmp_path) -> None:
    other_seed = training_rows(2.0, 6, END)

    run = train_and_register(
        ModelRegistry(tmp_path), hours=2, seed=5, end=END, max_iter=5, rows=other_seed
    )

    on_seed_6 = train_and_register(
        ModelRegistry(tmp_path / "6"), hours=2, seed=6, end=END, max_iter=5
    )
    assert run.held_out == on_seed_6.held_out
