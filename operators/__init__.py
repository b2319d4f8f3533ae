"""Engine-agnostic stream logic: plain classes that learn from and score one event at a time.

Nothing here imports Bytewax, does I/O, reads settings or records metrics (a test enforces
it), so every operator is unit-testable and reusable under another engine. The families,
each a sub-package whose ``__init__`` states its contract and re-exports its classes:

- `airis.operators.detectors`: per-series scorers (score in ``[0, 1]``, high = anomalous);
- `airis.operators.windowing`: event-time windows per partition and per service;
- `airis.operators.signals`: logs, spans and OTLP aggregates → metric points;
- `airis.operators.alerting`: windows → alerts;
- `airis.operators.incidents`: anomalies → incidents, root causes, signatures;
- `airis.operators.planning`: forecasts, exhaustion warnings, replica advice;
- `airis.operators.drift`: input drift of a model.

`base` holds the detector protocol, `types` the records the families pass each other, and
`closed_windows` the windows detection closes, as the columns the steps after it read.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

#: Where each module that lived directly in this package before the families is now: recovery
#: snapshots (and anything else pickled then) name their classes by the old module paths.
#: (The former ``incidents`` module's name is now its family's package, which re-exports its
#: classes.)
FORMER_MODULES = {
    "alert_manager": "alerting.alert_manager",
    "call_graph": "incidents.call_graph",
    "capacity": "planning.capacity",
    "cold_start": "detectors.cold_start",
    "detector_bank": "detectors.detector_bank",
    "ensemble_detector": "detectors.ensemble_detector",
    "ensemble_kernel": "detectors.ensemble_kernel",
    "event_windows": "windowing.event_windows",
    "forecaster": "planning.forecaster",
    "incident_embedding": "incidents.incident_embedding",
    "ks_drift": "drift.ks_drift",
    "log_signals": "signals.log_signals",
    "log_templates": "signals.log_templates",
    "otlp_metrics": "signals.otlp_metrics",
    "partition_aligner": "windowing.partition_aligner",
    "pot_threshold": "detectors.pot_threshold",
    "rca": "incidents.rca",
    "scaling": "planning.scaling",
    "service_planner": "planning.service_planner",
    "service_window": "windowing.service_window",
    "trace_signals": "signals.trace_signals",
    "windowed_detector": "windowing.windowed_detector",
}


class _FormerModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``airis.operators.<former module>`` as a view of the module's new home, so that
    pickles made before the move still load (their classes are the same objects)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in FORMER_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def exec_module(self, module: ModuleType) -> None:
        name = module.__name__.rpartition(".")[2]
        moved = importlib.import_module(f"{__name__}.{FORMER_MODULES[name]}")
        module.__dict__.update(
            (key, value) for key, value in vars(moved).items() if not key.startswith("__")
        )


if not any(isinstance(finder, _FormerModules) for finder in sys.meta_path):
    sys.meta_path.append(_FormerModules())
