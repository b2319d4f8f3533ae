"""The contract every delivery client of `airis.sinks` keeps (the OpenTelemetry SDK's
exporter): ``export(batch) -> ExportResult``, ``force_flush() -> bool``, ``shutdown()``.

- `export` delivers (or buffers) one batch and says whether that worked; a delivery failure
  is a `ExportResult.FAILURE`, never an exception. After `shutdown` it fails fast.
- `force_flush` delivers whatever is buffered; True when nothing is left.
- `shutdown` flushes and releases the client; a second call does nothing but warn.

What to do about a failure is the caller's decision, not the exporter's: the ClickHouse sink
keeps its rows and retries while the flow goes on, the Kafka topics sink fails the batch so
that a restart replays it. Every backend has an in-memory twin keeping the same contract, for
tests and dry runs; ``tests/sinks/test_exporter_contract.py`` holds all of them to it.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from typing import Any

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
