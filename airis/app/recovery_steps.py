"""Carry recovery snapshots over when the flows' sub-pipelines became Bytewax operators.

Bytewax keys each snapshot by the step id of its stateful step. Since our sub-pipelines are
``@operator`` steps (`read_topic`, `detect_and_alert`, `log_signals` …), their steps' ids
carry the sub-pipeline's name: ``airis_kafka_metrics.detect_and_window`` became
``airis_kafka_metrics.detect.detect_and_window``, and the Kafka offsets of
``airis_kafka_metrics.read_metrics`` moved to ``airis_kafka_metrics.metrics_topic.read_metrics``.
A recovery directory written before would resume with empty state and offsets (re-reading
the topics from the start), so `airis run` renames its snapshots first (`carry_over`):
each step id as it was is the step's id without the names of our own operators.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bytewax.dataflow import Dataflow

logger = logging.getLogger(__name__)

__all__ = ["carry_over", "former_step_ids"]

#: Operators defined in modules under this prefix are ours (the others are Bytewax's).
_OURS = "airis."


def former_step_ids(flow: Dataflow, ours: tuple[str, ...] = (_OURS,)) -> dict[str, str]:
    """Former step id → step id, for every innermost step inside one of our operators (those
    defined in modules whose names start with one of ``ours``)."""
    renamed: dict[str, str] = {}

    def walk(steps: Iterable[Any], former: str) -> None:
        for step in steps:
            name = step.step_id.rsplit(".", 1)[-1]
            inner = former if type(step).__module__.startswith(ours) else f"{former}.{name}"
            if step.substeps:
                walk(step.substeps, inner)
            elif inner != step.step_id:
                renamed[inner] = step.step_id

    walk(flow.substeps, flow.flow_id)
    return renamed


def carry_over(directory: Path, renamed: Mapping[str, str]) -> int:
    """Rename the snapshots of former step ids in ``directory``'s recovery partitions; the
    count renamed. Snapshots already under the new id win (the old ones are then dropped)."""
    count = 0
    for part in sorted(directory.glob("part-*.sqlite3")):
        with sqlite3.connect(part) as db:
            for former, current in renamed.items():
                cursor = db.execute(
                    "UPDATE OR IGNORE snaps SET step_id = ? WHERE step_id = ?", (current, former)
                )
                count += cursor.rowcount
                db.execute("DELETE FROM snaps WHERE step_id = ?", (former,))
        db.close()
    if count:
        logger.warning(
            "recovery %s: %d snapshots of steps from before the sub-flow operators renamed",
            directory,
            count,
        )
    return count
