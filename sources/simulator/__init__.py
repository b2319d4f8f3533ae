"""The simulator: a seeded microservice system with injected faults and their ground truth.

One public module per concern:

- `topology`: the services, their roles and the calls between them (a DAG);
- `ground_truth`: what a fault, a deploy and a harmless spike are (`Fault`, `Deploy`,
  `Spike`), as JSON-able records, and which incident a fault became (`incident_of`);
- `effects`: how each kind of fault changes its root service and spreads through the DAG;
- `schedule`: the day of faults, deploys and spikes drawn when none are given;
- `traffic`: the daily and weekly load curve and each service's drawn profile;
- `metrics`: `Simulator`, the true state of every service per tick and the metric points
  measured from it;
- `logs` and `traces`: log lines and spans sampled from the same states (`log_messages`: the
  messages each role and fault writes);
- `pacing`: replaying at a chosen speed of simulated time;
- `process`: a simulator in a process of its own, as a producer would be.

The names most callers need are re-exported here (``from airis.sources.simulator import
Simulator, recent_simulation``).
"""

from airis.sources.simulator.metrics import (
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_PEAK_RATE,
    DEFAULT_SPIKES_PER_DAY,
    SIGNALS,
    ServiceState,
    Simulator,
    recent_simulation,
)
from airis.sources.simulator.pacing import pace
from airis.sources.simulator.traffic import seasonality

__all__ = [
    "DEFAULT_INTERVAL_SECONDS",
    "DEFAULT_PEAK_RATE",
    "DEFAULT_SPIKES_PER_DAY",
    "SIGNALS",
    "ServiceState",
    "Simulator",
    "pace",
    "recent_simulation",
    "seasonality",
]
