"""Blocks of rows kept as columns, as the writer buffers them and the stores insert them.

A `Block` holds one sequence per column, all of one length. Batches of events (a
`MetricBatch`) become blocks without a row being built; events that arrive one object at a
time are gathered as rows and turned into a block once per export (`rows_to_block`, one
C-level transpose). A table's buffer (`BlockBuffer`) is a list of blocks, joined column by
column only when it is inserted.

>>> buffer = BlockBuffer()
>>> buffer.add(((1, 2), ("a", "b")))
>>> buffer.add(rows_to_block([(3, "c")]))
>>> len(buffer), buffer.take()
(3, [[1, 2, 3], ['a', 'b', 'c']])
>>> buffer.add(((4, 5, 6), ("d", "e", "f"))); buffer.drop_oldest(2); buffer.take()
2
[[6], ['f']]
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

__all__ = ["Block", "BlockBuffer", "block_rows", "rows_to_block"]

#: One sequence of values per column, all of one length.
Block = Sequence[Sequence[Any]]


def rows_to_block(rows: Sequence[tuple[Any, ...]]) -> Block:
    """``rows`` (tuples of equal length) as a block; no rows, no columns."""
    return tuple(zip(*rows, strict=True))


def block_rows(block: Block) -> int:
    """How many rows ``block`` holds."""
    return len(block[0]) if block else 0


class BlockBuffer:
    """A table's pending rows as a list of blocks, oldest first."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def add(self, block: Block) -> None:
        """Append ``block`` (empty blocks are ignored)."""
        rows = block_rows(block)
        if rows:
            self.blocks.append(block)
            self._rows += rows

    def add_oldest(self, block: Block) -> None:
        """Put ``block`` back in front, older than every row pending (a failed delivery's)."""
        rows = block_rows(block)
        if rows:
            self.blocks.insert(0, block)
            self._rows += rows

    def take(self) -> list[list[Any]]:
        """Every pending row as one block (each column a list), and empty the buffer."""
        blocks, self.blocks, self._rows = self.blocks, [], 0
        if not blocks:
            return []
        return [list(chain.from_iterable(b[i] for b in blocks)) for i in range(len(blocks[0]))]

    def peek(self) -> list[list[Any]]:
        """Every pending row as one block, keeping them pending."""
        data = self.take()
        self.add(data)
        return data

    def drop_oldest(self, count: int) -> int:
        """Forget the ``count`` oldest rows (or all); return how many were forgotten."""
        dropped = 0
        while self.blocks and dropped < count:
            block = self.blocks[0]
            rows = block_rows(block)
            cut = min(rows, count - dropped)
            if cut == rows:
                self.blocks.pop(0)
            else:
                self.blocks[0] = tuple(values[cut:] for values in block)
            dropped += cut
        self._rows -= dropped
        return dropped
