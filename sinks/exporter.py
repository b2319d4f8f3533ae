"""The contract every delivery client of `airis.sinks` keeps (the OpenTelemetry SDK's
exporter): ``export(batch) -> ExportResult``, ``force_flush() -> bool``, ``shutdown()``.

- `export` delivers (or buffers) one batch and says whether that worked; a delivery failure
  is a `ExportResult.FAILURE`, never an exception. After `shutdown` it fails fast.
- `force_flush` delivers whatever is buffered; True when nothing is left.
- `shutdown` flushes and releases the client; a second call does nothing but warn.

What to do about a failure is the caller's decision, not the exporter's: the ClickHouse sink
keeps its rows and retries while the flow goes on, the Kafka topics sink fails the batch so
that a restart replays it. Every backend has an in-memory twin keeping the same contract, for
tests and dry runs; ``tests/sinks/test_exporter_contract.py`` holds all of them to it. Where
a backend wants batches larger than the flow's, a batching processor sits beside the exporter
(`airis.sinks.batching.BlockBatcher`, as the ClickHouse writer uses it).
"""

from __future__ import annotations

import abc
import enum
import logging
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["ExportResult", "Exporter"]


class ExportResult(enum.Enum):
    """What one `Exporter.export` achieved."""

    SUCCESS = 0
    FAILURE = 1


class Exporter(abc.ABC):
    """A delivery client: see the module docstring for the contract."""

    @abc.abstractmethod
    def export(self, batch: Sequence[Any]) -> ExportResult:
        """Deliver or buffer ``batch``; FAILURE (never an exception) when that did not work."""

    @abc.abstractmethod
    def force_flush(self) -> bool:
        """Deliver what is buffered; True if nothing is left."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Flush and release the client; a second call only warns."""

    # Helpers for the contract's fail-fast rules; subclasses set ``_shutdown`` and
    # ``last_error`` in ``__init__``.
    _shutdown: bool
    last_error: str

    def _refused(self, count: int) -> ExportResult:
        """The FAILURE of an export after `shutdown` (logged, with `last_error`)."""
        logger.warning(
            "%s: export of %d items after shutdown: rejected", type(self).__name__, count
        )
        self.last_error = "the exporter is shut down"
        return ExportResult.FAILURE

    def _shutting_down(self) -> bool:
        """Mark the exporter shut down; False (with a warning) if it already was."""
        if self._shutdown:
            logger.warning("%s.shutdown called again: ignored", type(self).__name__)
            return False
        self._shutdown = True
        return True
