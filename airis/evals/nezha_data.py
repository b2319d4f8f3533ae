"""Reading the Nezha RCA benchmark's days: pod metrics, the call graph and the injected faults."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

#: The days of each system in ``rca_nezha`` (the README's table).
SYSTEMS: dict[str, str] = {
    "2022-08-22": "OnlineBoutique",
    "2022-08-23": "OnlineBoutique",
    "2023-01-29": "TrainTicket",
    "2023-01-30": "TrainTicket",
}


MINUTE = 60.0


#: Columns that are not metrics.
_SKIP_COLUMNS = ("Time", "TimeStamp", "PodName")


#: Metrics that a running pod never measures as exactly 0, so that a 0 is a missing sample:
#: a latency percentile over no request (TrainTicket writes 0 for every minute without
#: workload, OnlineBoutique leaves it empty), CPU and memory of a pod whose container series
#: the collector did not find (0 in every row) or a scrape gap (0 for one minute), syscall and
#: network counters that were not collected. Workload and success rate can be 0.
_ZERO_IS_MISSING = ("Latency", "Cpu", "Memory", "Syscall", "Network")


_POD_SUFFIX = re.compile(r"-[a-z0-9]+-[a-z0-9]+$")


def service_of(pod: str) -> str:
    """The service of a Kubernetes pod name (its deployment's name).

    >>> service_of("ts-admin-basic-info-service-5f55b6cf68-77cfw"), service_of("frontend")
    ('ts-admin-basic-info-service', 'frontend')
    """
    return _POD_SUFFIX.sub("", pod)


def _epoch(text: str) -> float:
    # "2022-08-22 03:51:19.573905004 +0000 UTC m=+0.079858984" or "2022-08-22 03:53:54":
    # the first 19 characters are the UTC wall clock.
    stamp = datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return stamp.timestamp()


@dataclass(frozen=True)
class NezhaFault:
    """One injected fault: when (``inject_time``, seconds UTC), where and what."""

    ts: float
    pod: str
    kind: str

    @property
    def service(self) -> str:
        return service_of(self.pod)


@dataclass
class NezhaDay:
    """One day of one system: pod metrics per service, the SLO series, graph and faults."""

    name: str
    system: str
    metrics: dict[str, pd.DataFrame]
    front: pd.DataFrame
    faults: list[NezhaFault]
    graph: dict[str, set[str]] | None = None
    pods: dict[str, str] = field(default_factory=dict)


def _read_series(path: Path) -> pd.DataFrame:
    """A metric CSV indexed by its ``Time`` column (epoch seconds); numeric columns only.

    ``TimeStamp`` is not used: on 2022-08-22 adservice's is 200,000,000 s too large, while
    ``Time`` is right everywhere and on the clock of the faults' ``inject_time``.
    """
    df = pd.read_csv(path)
    # Rows are a minute apart, a fraction of a second off the minute mark that differs between
    # files: rounded to the minute, every series of a day shares one time grid.
    minutes = [round(_epoch(str(t)) / MINUTE) * MINUTE for t in df["Time"]]
    index = pd.Index(minutes, name="ts")
    out = df.drop(columns=[c for c in (*_SKIP_COLUMNS, "ServiceName") if c in df.columns])
    out = out.apply(pd.to_numeric, errors="coerce")
    # Zero means "no sample" where a live pod cannot measure 0 (see `_ZERO_IS_MISSING`).
    gaps = [c for c in out.columns if any(k in c for k in _ZERO_IS_MISSING)]
    out[gaps] = out[gaps].where(out[gaps] != 0)
    out.index = index
    return out.groupby(level=0).mean().sort_index()


def _read_graph(path: Path, services: Iterable[str]) -> dict[str, set[str]]:
    """Caller → callees from ``dependency.csv`` (``Source,Target,Weight``), between known
    services only (IP addresses and the load generator are dropped)."""
    known = set(services)
    deps = pd.read_csv(path)
    graph: dict[str, set[str]] = {s: set() for s in sorted(known)}
    for source, target in zip(deps["Source"], deps["Target"], strict=True):
        if source in known and target in known and source != target:
            graph[str(source)].add(str(target))
    return graph


def load_day(folder: Path) -> NezhaDay:
    """Read one day folder (``metric/``, ``fault_list.json``) of ``rca_nezha``."""
    folder = Path(folder)
    metric_dir = folder / "metric"
    if not metric_dir.is_dir():
        raise FileNotFoundError(f"no Nezha metrics at {metric_dir}")
    metrics: dict[str, pd.DataFrame] = {}
    pods: dict[str, str] = {}
    for path in sorted(metric_dir.glob("*_metric.csv")):
        pod = path.name.removesuffix("_metric.csv")
        service = service_of(pod)
        if service in metrics:
            logger.warning("%s: a second pod of %s (%s) is ignored", folder.name, service, pod)
            continue
        metrics[service] = _read_series(path)
        pods[service] = pod
    front = _read_series(metric_dir / "front_service.csv")
    faults = [
        NezhaFault(_epoch(f["inject_time"]), str(f["inject_pod"]), str(f["inject_type"]))
        for hour in json.loads((folder / "fault_list.json").read_text()).values()
        for f in hour
    ]
    faults.sort(key=lambda f: f.ts)
    dep = metric_dir / "dependency.csv"
    graph = _read_graph(dep, metrics) if dep.exists() else None
    system = SYSTEMS.get(folder.name, folder.name)
    return NezhaDay(folder.name, system, metrics, front, faults, graph, pods)
