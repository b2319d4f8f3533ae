"""Rows that could not be inserted yet, kept on local disk until the store is back.

`RowSpill` is a directory of files, one per spilled block of one table (its columns, see
`airis.sinks.column_block`; files of rows from before blocks are read too), named so that they
sort oldest first. A file is written to a temporary name, flushed to disk and renamed, so a
crash leaves either the whole batch or none of it; a restart finds the files and the writer
sends them before anything newer. Beyond ``max_bytes`` the oldest files are dropped, with an
error log and a count (``airis_sink_rows_dropped_total``): the bound is the operator's
choice, and the default is large.

Examples
--------
>>> import tempfile
>>> spill = RowSpill(tempfile.mkdtemp())
>>> spill.put("metrics", [[1, 2], ["a", "b"]])  # nothing dropped
[]
>>> _ = spill.put("metrics", [[3], ["c"]])
>>> spill.tables(), spill.rows("metrics")
(['metrics'], 3)
>>> path, block = spill.oldest("metrics")
>>> block
[[1, 2], ['a', 'b']]
>>> spill.remove(path); spill.rows("metrics")
1
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from pathlib import Path
from typing import Any

from airis.sinks.column_block import Block, block_rows, rows_to_block

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_SPILL_BYTES", "RowSpill"]

#: Default bound on a spill directory.
DEFAULT_SPILL_BYTES = 2 * 1024**3

_COLUMNS = "columns"
_NAME = re.compile(r"^(\d{12})-(\d+)\.rows$")


class RowSpill:
    """Batches of rows per table on disk, oldest first (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int = DEFAULT_SPILL_BYTES):
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        # table -> [(sequence, path, bytes, rows)], oldest first.
        self._files: dict[str, list[tuple[int, Path, int, int]]] = {}
        self._next = 0
        for table_dir in sorted(p for p in self.directory.iterdir() if p.is_dir()):
            for path in sorted(table_dir.iterdir()):
                match = _NAME.match(path.name)
                if match is None:
                    path.unlink(missing_ok=True)  # a write that a crash cut short
                    continue
                seq, rows = int(match[1]), int(match[2])
                entry = (seq, path, path.stat().st_size, rows)
                self._files.setdefault(table_dir.name, []).append(entry)
                self._next = max(self._next, seq + 1)
        if self._files:
            found = {t: sum(e[3] for e in f) for t, f in self._files.items()}
            logger.warning("spill %s holds rows from before a restart: %s", self.directory, found)

    @property
    def bytes(self) -> int:
        """Bytes on disk."""
        return sum(e[2] for files in self._files.values() for e in files)

    def tables(self) -> list[str]:
        """Tables with spilled rows."""
        return sorted(t for t, files in self._files.items() if files)

    def rows(self, table: str) -> int:
        """Spilled rows of ``table``."""
        return sum(e[3] for e in self._files.get(table, ()))

    def put(self, table: str, block: Block) -> list[tuple[str, int]]:
        """Write ``block`` as one file; return what the bound made it drop: (table, rows)."""
        rows = block_rows(block)
        if not rows:
            return []
        table_dir = self.directory / table
        table_dir.mkdir(exist_ok=True)
        seq, self._next = self._next, self._next + 1
        path = table_dir / f"{seq:012d}-{rows}.rows"
        temporary = path.with_suffix(".tmp")
        with open(temporary, "wb") as f:
            pickle.dump({_COLUMNS: block}, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        temporary.rename(path)
        self._files.setdefault(table, []).append((seq, path, path.stat().st_size, rows))
        return self._enforce_bound()

    def oldest(self, table: str) -> tuple[Path, Block] | None:
        """The oldest file of ``table`` and its block, or None."""
        files = self._files.get(table)
        if not files:
            return None
        path = files[0][1]
        with open(path, "rb") as f:
            data: Any = pickle.load(f)
        # A file written before blocks holds a list of row tuples.
        return path, data[_COLUMNS] if isinstance(data, dict) else rows_to_block(data)

    def remove(self, path: Path) -> None:
        """Forget a file once its rows are stored."""
        for files in self._files.values():
            for i, entry in enumerate(files):
                if entry[1] == path:
                    del files[i]
                    path.unlink(missing_ok=True)
                    return

    def _enforce_bound(self) -> list[tuple[str, int]]:
        dropped: list[tuple[str, int]] = []
        while self.bytes > self.max_bytes:
            table, files = min(
                ((t, f) for t, f in self._files.items() if f), key=lambda tf: tf[1][0][0]
            )
            _, path, _, rows = files.pop(0)
            path.unlink(missing_ok=True)
            logger.error("spill %s over %d bytes: dropped %d rows of %s", self.directory,
                         self.max_bytes, rows, table)  # fmt: skip
            dropped.append((table, rows))
        return dropped
