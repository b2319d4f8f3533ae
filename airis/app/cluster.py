"""`airis run --kafka`: start the Kafka metrics dataflow as a cluster of local processes.

Each process is ``python -m bytewax.run airis.flows.kafka_metrics:build_flow(...)`` with
Bytewax's ``-i/-a`` cluster options: Kafka partitions are spread over the processes' workers
and items are exchanged between processes by key. With a recovery directory, the Kafka offsets
and all operator state are snapshotted every ``snapshot_seconds``; a restart (after a crash,
``kill -9`` included) resumes from the last snapshot rather than replaying the topics.

Storage: every write to ClickHouse goes through one sink partition, which Bytewax places in
exactly one process; so the embedded chdb store works with any number of processes (only that
process opens it). A ClickHouse server (``AIRIS_CLICKHOUSE_URL``) gets one partition per
process instead.

The processes of one cluster end together: the dataflow is done when every worker is. So
when one process has ended well and another is still running ``straggler_seconds`` later
(time for the last inserts of the store's partition at close), the cluster is stuck, not
busy: `run_cluster` stops the rest and fails, rather than waiting forever.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["ClusterPlan", "init_recovery", "run_cluster"]

FLOW = "airis.flows.kafka_metrics:build_flow"
#: How long the others may outlive a process that ended well (seconds).
STRAGGLER_SECONDS = 300.0
#: `run_cluster`'s status when it stopped processes that outlived a finished one.
STRAGGLER_STATUS = 3


@dataclass(frozen=True)
class ClusterPlan:
    """How to start the flow: process count, workers per process, recovery, metrics port."""

    processes: int = 1
    workers: int = 1
    recovery_dir: Path | None = None
    snapshot_seconds: int = 5
    metrics_port: int | None = None
    store_partitions: int = 1
    data_dir: Path = Path("var")
    #: ``AIRIS_*`` settings given to the processes on top of this process's environment (which
    #: is left as it is).
    settings_overrides: dict[str, str] = field(default_factory=dict)

    def commands(self) -> list[list[str]]:
        """The command line of every process."""
        # Without recovery nothing reads the snapshots Bytewax asks for every epoch.
        keep = self.recovery_dir is not None
        flow = f"{FLOW}(store_partitions={self.store_partitions}, snapshots={keep})"
        base = [sys.executable, "-m", "bytewax.run", flow, "-w", str(self.workers)]
        if self.recovery_dir is not None:
            base += ["-r", str(self.recovery_dir), "-s", str(self.snapshot_seconds), "-b", "0"]
        if self.processes == 1:
            return [base]
        addresses = ";".join(f"127.0.0.1:{port}" for port in _free_ports(self.processes))
        return [[*base, "-i", str(i), "-a", addresses] for i in range(self.processes)]

    def environment(self, index: int) -> dict[str, str]:
        """The environment of process ``index``: this one's, the settings overrides, and its
        metrics port, if any."""
        env = {**os.environ, **self.settings_overrides}
        # Bytewax's API server writes dataflow.json into this directory (default: the cwd).
        cache = self.data_dir / f"bytewax-{index}"
        cache.mkdir(parents=True, exist_ok=True)
        env["BYTEWAX_DATAFLOW_API_CACHE_PATH"] = str(cache)
        if self.metrics_port is not None:
            env["BYTEWAX_DATAFLOW_API_ENABLED"] = "true"
            env["BYTEWAX_DATAFLOW_API_PORT"] = str(self.metrics_port + index)
        return env


def init_recovery(directory: Path, partitions: int) -> bool:
    """Create ``partitions`` recovery partitions in ``directory`` unless it has them already.

    Returns True if it created them. ``partitions`` must cover the most workers the flow
    will ever run with (Bytewax's rule).
    """
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.glob("part-*.sqlite3")):
        return False
    subprocess.run(
        [sys.executable, "-m", "bytewax.recovery", str(directory), str(partitions)],
        check=True,
        capture_output=True,
    )
    return True


def run_cluster(
    plan: ClusterPlan, poll_seconds: float = 0.5, straggler_seconds: float = STRAGGLER_SECONDS
) -> int:
    """Run every process until all exit; stop the rest as soon as one fails, or when they
    outlive one that ended well by ``straggler_seconds`` (see the module docstring).

    Ctrl-C (SIGINT) and SIGTERM are passed on to the processes. Returns the first non-zero
    exit status, `STRAGGLER_STATUS` for stragglers stopped, or 0.
    """
    plan.data_dir.mkdir(parents=True, exist_ok=True)
    procs = [
        subprocess.Popen(cmd, env=plan.environment(i)) for i, cmd in enumerate(plan.commands())
    ]
    logger.info("started %d dataflow processes: %s", len(procs), [p.pid for p in procs])

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    first_ended: float | None = None  # when the first process ended well
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [c for c in codes if c not in (None, 0)]
            if failed:
                _stop(procs)
                return failed[0]
            if all(c == 0 for c in codes):
                return 0
            if 0 in codes:
                first_ended = first_ended or time.monotonic()
                if time.monotonic() - first_ended > straggler_seconds:
                    running = [i for i, c in enumerate(codes) if c is None]
                    logger.error(
                        "process(es) %s still running %.0f s after process %d ended well: "
                        "the cluster is stuck; stopping them",
                        running, straggler_seconds, codes.index(0),
                    )  # fmt: skip
                    _stop(procs)
                    return STRAGGLER_STATUS
            time.sleep(poll_seconds)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _stop(procs: list[subprocess.Popen], grace: float = 10.0) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
