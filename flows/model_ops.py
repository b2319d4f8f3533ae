"""Model and planning steps of the metrics dataflow, on its closed service windows.

- `score_with_model`: all services' windows of a batch, scored at once by the registered
  ONNX model's production version (`ModelServer`: hot reload between batches), with a KS
  drift test of the live rows against the training reference;
- `plan_capacity`: per service, forecasts with intervals, exhaustion warnings (which the
  alert manager turns into alerts) and replica advice (`ServicePlanner`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulBatchLogic

from airis.batches import ForecastBatch, ModelScoreBatch, PickledOnce
from airis.events import Anomaly, CapacityWarning, DriftEvent, ScalingAdvice
from airis.flows.batching import flatten
from airis.flows.snapshots import stateful_map
from airis.models.model_events import model_events
from airis.models.serving import ModelServer
from airis.operators.closed_windows import ClosedWindows, ObservedWindows
from airis.operators.planning.events import plan_events
from airis.operators.planning.service_planner import ServicePlanner
from airis.settings import ModelConfig, PlanningConfig

__all__ = ["ModelOut", "PlanOut", "plan_capacity", "planning_step", "score_with_model"]


@dataclass(frozen=True)
class ModelOut:
    """The streams `score_with_model` adds to a flow."""

    scores: Stream[ModelScoreBatch]
    anomalies: Stream[Anomaly]
    drift: Stream[DriftEvent]


@operator
def score_with_model(
    step_id: str, closed: Stream[tuple[str, ClosedWindows]], model: ModelConfig, threshold: float
) -> ModelOut:
    """Score every metrics window with the production model, one batch at a time; a score at
    or above ``threshold`` is an anomaly."""
    name = model.name or ""
    metric_windows = op.filter("model_metric_windows", closed, lambda kv: "/" not in kv[0])
    one_key = op.flat_map_batch("key_model", metric_windows, _observed_item(name))
    scored = op.stateful_batch(
        "score_model", one_key, lambda r: ScoreWindows(r or _server(model), threshold)
    )
    events = op.map("model_events", scored, lambda kv: kv[1])  # scores, anomalies, drift events
    split = op.branch("split_model_scores", events, lambda e: isinstance(e, ModelScoreBatch))
    rest = op.branch("split_model_anomalies", split.falses, lambda e: isinstance(e, Anomaly))
    return ModelOut(split.trues, rest.trues, rest.falses)


def _observed_item(name: str) -> Callable[[list[Any]], list[tuple[str, list[ObservedWindows]]]]:
    """A batch of input's closed windows as one item of the model's key (pickled once)."""
    return lambda batch: [(name, PickledOnce([windows.observed() for _, windows in batch]))]


def _server(model: ModelConfig) -> ModelServer:
    return ModelServer(
        model.model_dir,
        model.name or "",
        providers=model.providers,
        require_gpu=model.require_gpu,
        drift_window=model.drift_window_rows,
        drift_p_threshold=model.drift_p_threshold,
        drift_sample_every=model.drift_sample_every,
    )


class ScoreWindows(StatefulBatchLogic[list[ObservedWindows], Any, ModelServer]):
    """Bytewax's side of `ModelServer`: windows in (each service's closed windows of a batch
    of input), one score per window out, plus anomalies (score at or above the threshold) and
    drift events. Until a version is promoted, the windows are not even read."""

    def __init__(self, server: ModelServer, threshold: float) -> None:
        self.server = server
        self.threshold = threshold

    def on_batch(self, groups: list[list[ObservedWindows]]) -> tuple[list[Any], bool]:
        if not self.server.serving():
            return [], self.RETAIN
        values = [value for windows in flatten(groups) for value in windows.values()]
        batch = self.server.score([w.values for w in values], [w.service for w in values])
        if batch is None:
            return [], self.RETAIN
        return model_events(self.server.name, values, batch, self.threshold), self.RETAIN

    def snapshot(self) -> ModelServer:
        # Pickles as its configuration and the version it serves (not the session), which
        # cannot change before Bytewax pickles it: the step is single-threaded.
        return self.server


@dataclass(frozen=True)
class PlanOut:
    """The streams `plan_capacity` adds to a flow."""

    forecasts: Stream[ForecastBatch]
    warnings: Stream[CapacityWarning]
    advice: Stream[ScalingAdvice]


@operator
def plan_capacity(
    step_id: str, closed: Stream[tuple[str, ClosedWindows]], planning: PlanningConfig
) -> PlanOut:
    """Per service: forecasts, exhaustion warnings, replica advice."""
    metric_windows = op.filter("plan_metric_windows", closed, lambda kv: "/" not in kv[0])
    plans = stateful_map("plan", metric_windows, planning_step(planning))  # (service, [event])
    events = op.flat_map("plan_events", plans, lambda kv: kv[1])
    forecasts = op.branch("split_forecasts", events, lambda e: isinstance(e, ForecastBatch))
    warned = op.branch("split_warnings", forecasts.falses, lambda e: isinstance(e, CapacityWarning))
    return PlanOut(forecasts.trues, warned.trues, warned.falses)


def planning_step(planning: PlanningConfig):
    """``plan(planner or None, windows) -> (planner, events)``: one service's closed windows
    planned for (a new planner for a service not seen yet)."""
    horizon = max(1, math.ceil(planning.horizon_seconds / planning.step_seconds))
    every = planning.report_every
    steps = [s for s in range(every, horizon + 1, every)] or [horizon]
    if steps[-1] != horizon:
        steps.append(horizon)

    def plan(planner: ServicePlanner | None, windows: ClosedWindows):
        service = windows.service
        planner = planner or _planner(planning, service, horizon)
        columns = {signal: windows.observed_column(signal) for signal in planner.signals}
        plans = planner.update_columns(windows.end_times(), windows.ends(), columns)
        return planner, plan_events(service, plans, steps)

    return plan


def _planner(planning: PlanningConfig, service: str, horizon: int) -> ServicePlanner:
    signals = planning.signals
    return ServicePlanner(
        step_seconds=planning.step_seconds,
        horizon_steps=horizon,
        season_steps=round(86_400 / planning.step_seconds),
        report_every=planning.report_every,
        forecast_signals=signals,
        capacity_signals=[s for s in ("memory", "disk") if s in signals] or ("memory", "disk"),
        threshold=planning.capacity_threshold_percent,
        warn_within_seconds=planning.capacity_warn_within_seconds,
        scaling_signal="cpu" if "cpu" in signals else "",
        scaling_target=planning.scaling_target_percent,
        replicas=planning.scaling_replicas.get(service, 1),
    )
