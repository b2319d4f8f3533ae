"""Training rows for the flow-shaped autoencoder: one row per service and 10-s window.

The metrics flow sees, per service and window, the eight signals of
`airis.signals.SERVICE_SIGNALS`. `service_rows` turns a `Simulator` run into exactly those
rows (raw values, in `SIGNALS` order), with the service of each row and whether a fault was
visibly changing that service at the time (the simulator's ground truth: a fault's
``affected`` services while it is active). `train_service_autoencoder` fits one model for
every service on the normal rows: rates and latencies go through ``log1p`` and every service
is standardised by its own statistics, both inside the ONNX graph (the model has a ``key``
input, the service), so `OnnxDetector.score_rows(raw_signal_dicts, keys=services)` is all a
flow needs. `separation` measures how well the scores tell fault rows from normal ones.

The error is the autoencoder's reconstruction error plus the per-feature deviation (the mean
squared z-score, `DEFAULT_SERVICE_DEVIATION_WEIGHT`), each standardised signal clipped to
±`DEFAULT_SERVICE_CLIP`, and a model that reconstructs held-out rows no better than their
training mean falls back to the deviation alone (`DEFAULT_SERVICE_MIN_SKILL`): the options of
``airis eval multivariate``. Measured with `held_out_day` (seeds 1-8 to decide, 101-108 to
report), they raise the held-out AUC from 0.81 to 0.84 (seeds 1-8) and 0.86 to 0.89
(101-108), and the F1 at score 0.9 from 0.68 to 0.70 and 0.65 to 0.71, with fewer normal rows
flagged. Its other two options did not help here: each row's change since the service's
previous window (F1 at 0.9 down to 0.56 and 0.55, twice the normal rows flagged) and a
streaming POT threshold on the error instead of the calibrated score (at risk 1e-2, ten
times the normal rows flagged for a lower F1; at 1e-3, a recall under 0.1).

The model learns one system: the simulator's service profiles (capacities, latencies) are
drawn from its seed, so train and score with the same seed. `held_out_day` shows the intended
protocol: train on the first day of a two-day run, score the second (later noise, other faults);
``python -m airis.models.service_features SEED ...`` prints it as JSON (``--plain``: without
the deviation term, clip and fallback).

What one row can and cannot show: a fault that breaks the usual relations between signals or
leaves a service's usual range (errors, latency, saturation, a leak, a full disk, an outage)
stands out; a ``traffic_surge`` mostly does not, since more traffic with proportionally more
cpu looks like a busy hour (the rows carry no time of day). Disk usage gets a wide floor
(`SIGNAL_MIN_STD`): it creeps up day by day, and a training day's spread would turn the next
day's creep into a false alarm on every storage service.

Examples
--------
>>> from datetime import UTC, datetime
>>> from airis.sources.simulator import Simulator
>>> sim = Simulator(start=datetime(2024, 1, 1, tzinfo=UTC), hours=0.5, seed=42, faults=[])
>>> rows = service_rows(sim)
>>> rows.features.shape, rows.services[:2], int(rows.fault.sum())
((2700, 8), ('frontend', 'api-gateway'), 0)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from airis.signals import SERVICE_SIGNALS as SIGNALS
from airis.sources.simulator import Simulator

if TYPE_CHECKING:
    from airis.models.autoencoder import TrainedAutoencoder

__all__ = [
    "DEFAULT_SERVICE_CLIP",
    "DEFAULT_SERVICE_DEVIATION_WEIGHT",
    "DEFAULT_SERVICE_HIDDEN",
    "DEFAULT_SERVICE_MIN_SKILL",
    "LOG_SIGNALS",
    "SIGNAL_MIN_STD",
    "ServiceRows",
    "held_out_day",
    "separation",
    "service_rows",
    "train_service_autoencoder",
    "training_rows",
    "training_run",
]

#: Signals spanning orders of magnitude: modelled as ``log1p(value)``.
LOG_SIGNALS: tuple[str, ...] = ("request_rate", "latency_p50", "latency_p95", "latency_p99")
#: Floors of the per-service standard deviations, in the signals' units (percentage points):
#: disk usage creeps up by about 1 % a day, so a training day's spread says nothing about the
#: next day's level; a deviation under a few points is not an anomaly of the model's kind
#: (the online detectors and capacity forecasts watch slow trends). Others: `DEFAULT_MIN_STD`.
SIGNAL_MIN_STD: dict[str, float] = {"disk": 2.0}
#: Hidden layer sizes of the flow-shaped model (8 signals → 4 → 8).
DEFAULT_SERVICE_HIDDEN: tuple[int, ...] = (4,)
#: Adam epochs of the flow-shaped model (≈130k rows a simulated day).
DEFAULT_SERVICE_MAX_ITER = 30
#: Weight of the per-feature deviation (mean squared z-score) in the error: a service whose
#: signals all move together (reconstructed well, as a bigger normal state) still stands out.
DEFAULT_SERVICE_DEVIATION_WEIGHT = 1.0
#: Bound of each standardised signal, so that no one signal outweighs all the others.
DEFAULT_SERVICE_CLIP = 20.0
#: Least held-out explained variance for the reconstruction to be used (else: the deviation).
DEFAULT_SERVICE_MIN_SKILL = 0.0
#: Rows of a service right after one of its faults ended are left out of training too: some
#: effects (a drained queue, a restarted leak) take a few windows to settle.
SETTLE_AFTER_FAULT = timedelta(minutes=5)


@dataclass(frozen=True)
class ServiceRows:
    """Per-service window rows of a simulated run, in time order (services within a tick).

    Parameters
    ----------
    features
        ``[n, 8]`` float32 raw signal values in `SIGNALS` order.
    services
        The service of each row.
    tick
        The tick index of each row.
    fault
        Whether an active fault visibly changes the row's service.
    settling
        Whether the row lies within `SETTLE_AFTER_FAULT` after one of its service's faults.
    kind
        The kind of the (last starting) fault changing the row's service, ``""`` for none.
    """

    features: np.ndarray
    services: tuple[str, ...]
    tick: np.ndarray
    fault: np.ndarray
    settling: np.ndarray
    kind: np.ndarray

    def select(self, mask: np.ndarray) -> ServiceRows:
        """The rows where ``mask`` is true."""
        index = np.flatnonzero(mask)
        return ServiceRows(
            self.features[index],
            tuple(self.services[i] for i in index),
            self.tick[index],
            self.fault[index],
            self.settling[index],
            self.kind[index],
        )

    def as_dicts(self) -> list[dict[str, float]]:
        """The rows as ``{signal: value}`` dicts (what the flow has per window)."""
        return [dict(zip(SIGNALS, row, strict=True)) for row in self.features.tolist()]


def service_rows(sim: Simulator) -> ServiceRows:
    """Every (tick, service) row of ``sim`` with its fault label (see the module docstring)."""
    services = sim.services
    n_services = len(services)
    position = {s: i for i, s in enumerate(services)}
    # A tick's table has a row per service, a column per signal: the features' layout.
    blocks = [table for _, table in sim.tables()]
    n_ticks = len(blocks)
    features = np.asarray(blocks, dtype=np.float32).reshape(n_ticks * n_services, len(SIGNALS))
    fault = np.zeros((n_ticks, n_services), dtype=bool)
    settling = np.zeros((n_ticks, n_services), dtype=bool)
    kind = np.full((n_ticks, n_services), "", dtype=object)
    interval = sim.interval_seconds
    settle_ticks = int(SETTLE_AFTER_FAULT.total_seconds() // interval)
    for f in sim.faults:
        first = max(0, int(np.ceil((f.start - sim.start).total_seconds() / interval)))
        stop = min(n_ticks, int(np.ceil((f.end - sim.start).total_seconds() / interval)))
        cols = [position[s] for s in f.affected]
        fault[first:stop, cols] = True
        kind[first:stop, cols] = f.kind
        settling[stop : stop + settle_ticks, cols] = True
    return ServiceRows(
        features=features,
        services=services * n_ticks,
        tick=np.repeat(np.arange(n_ticks), n_services),
        fault=fault.ravel(),
        settling=settling.ravel(),
        kind=kind.ravel(),
    )


def training_run(hours: float, seed: int, end: datetime) -> Simulator:
    """The simulated run a model of ``hours`` is trained on (its later half) and checked on
    (its earlier half): the ``2 * hours`` before ``end``, whole seconds.

    >>> from datetime import UTC, datetime
    >>> run = training_run(24.0, 7, datetime(2026, 1, 3, 0, 0, 0, 5, tzinfo=UTC))
    >>> run.start.isoformat(), run.hours
    ('2026-01-01T00:00:00+00:00', 48.0)
    """
    end = end.replace(microsecond=0)
    # The simulator's fault schedule needs 4 h: a shorter run is checked on normal rows only.
    faults = None if 2 * hours >= 4 else []
    return Simulator(
        start=end - timedelta(hours=2 * hours), hours=2 * hours, seed=seed, faults=faults
    )


def training_rows(hours: float, seed: int, end: datetime) -> ServiceRows:
    """`service_rows` of `training_run`: importing this module loads no training library, so
    a process of its own can work them out while another imports them (`airis demo`)."""
    return service_rows(training_run(hours, seed, end))


def train_service_autoencoder(
    sim: Simulator,
    *,
    rows: ServiceRows | None = None,
    from_tick: int = 0,
    hours: float | None = None,
    hidden: tuple[int, ...] = DEFAULT_SERVICE_HIDDEN,
    max_iter: int = DEFAULT_SERVICE_MAX_ITER,
    seed: int = 0,
    model_name: str = "service_autoencoder",
    deviation_weight: float = DEFAULT_SERVICE_DEVIATION_WEIGHT,
    clip: float | None = DEFAULT_SERVICE_CLIP,
    min_skill: float = DEFAULT_SERVICE_MIN_SKILL,
) -> TrainedAutoencoder:
    """One autoencoder for every service of ``sim``, trained on its normal rows.

    ``hours`` keeps only the first hours of the run, ``from_tick`` only the ticks from there
    on (the rest can be held out); fault and settling rows are dropped. ``rows``: the run's
    `service_rows`, if already computed. ``deviation_weight``, ``clip``, ``min_skill``: see
    `airis.models.autoencoder.train_autoencoder` (``0``, ``None``, ``-inf``: the plain
    reconstruction error). A simulated day (about 100k rows) takes about 5 s on one core,
    simulation included.
    """
    # Imported here: scikit-learn and onnx take about 1.6 s to import, and the rows alone
    # need neither (`training_rows`).
    from airis.models.autoencoder import train_autoencoder

    rows = rows if rows is not None else service_rows(sim)
    keep = ~(rows.fault | rows.settling) & (rows.tick >= from_tick)
    if hours is not None:
        keep &= rows.tick < round(hours * 3600 / sim.interval_seconds)
    train = rows.select(keep)
    return train_autoencoder(
        train.features,
        SIGNALS,
        hidden=hidden,
        seed=seed,
        max_iter=max_iter,
        log_features=LOG_SIGNALS,
        keys=train.services,
        min_std=SIGNAL_MIN_STD,
        clip=clip,
        deviation_weight=deviation_weight,
        min_skill=min_skill,
        model_name=model_name,
    )


def separation(
    scores: np.ndarray, fault: np.ndarray, thresholds: tuple[float, ...] = (0.9, 0.99)
) -> dict[str, Any]:
    """How well ``scores`` separate fault rows from normal ones: ROC AUC and, per threshold,
    precision, recall, F1 and the share of normal rows at or above it."""
    scores = np.asarray(scores, dtype=np.float64)
    fault = np.asarray(fault, dtype=bool)
    out: dict[str, Any] = {
        "rows": len(scores),
        "fault_rows": int(fault.sum()),
        "auc": _auc(scores, fault),
    }
    for t in thresholds:
        hit = scores >= t
        tp, fp = int((hit & fault).sum()), int((hit & ~fault).sum())
        fn = int((~hit & fault).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[f"at_{t:g}"] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "normal_flagged": fp / max(1, int((~fault).sum())),
        }
    return out


def held_out_day(
    seed: int = 7, start_hours: float = 24.0, *, plain: bool = False
) -> dict[str, Any]:
    """Train on the first ``start_hours`` of a run of twice that, score the rest.

    Returns the training metrics and seconds, `separation` on the held-out rows (their
    settling rows left out, as they are neither clearly faulty nor clearly normal), and the
    share of each fault kind's rows (root and propagated) scoring at least 0.9 and 0.99.
    ``plain``: the reconstruction error alone (no deviation term, clip or fallback), as the
    model was before those options.
    """
    from airis.models.onnx_detector import OnnxDetector

    sim = Simulator(hours=2 * start_hours, seed=seed)
    started = time.perf_counter()
    options = {"deviation_weight": 0.0, "clip": None, "min_skill": -math.inf} if plain else {}
    model = train_service_autoencoder(sim, hours=start_hours, seed=0, **options)
    train_seconds = time.perf_counter() - started
    rows = service_rows(sim)
    test = rows.select(
        (rows.tick >= round(start_hours * 3600 / sim.interval_seconds)) & ~rows.settling
    )
    detector = OnnxDetector(model.onnx_bytes, providers="cpu")
    scores = detector.score_batch(test.features, keys=test.services)
    return {
        "seed": seed,
        "train_hours": start_hours,
        "train_seconds": train_seconds,
        "train_metrics": model.metrics,
        "held_out": separation(scores, test.fault),
        "recall_by_kind": {
            k: {f"at_{t:g}": float((scores[test.kind == k] >= t).mean()) for t in (0.9, 0.99)}
            for k in sorted(set(test.kind.tolist()) - {""})
        },
    }


def _auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """ROC AUC by ranks (ties share their average rank); ``None`` without both classes."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _main(argv: list[str] | None = None) -> None:
    """``python -m airis.models.service_features [SEED ...]``: `held_out_day` per seed, as JSON."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description="held-out simulated day of the service model")
    parser.add_argument("seeds", type=int, nargs="*", default=[7])
    parser.add_argument(
        "--plain", action="store_true", help="reconstruction error alone (no deviation term)"
    )
    args = parser.parse_args(argv)
    for seed in args.seeds:
        result = held_out_day(seed, plain=args.plain)
        print(json.dumps({k: v for k, v in result.items() if k != "train_metrics"}))


if __name__ == "__main__":
    _main()
