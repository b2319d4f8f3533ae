"""Embedded ClickHouse for the sink tests.

chdb serves one data directory per process at a time: each test module keeps one directory
open (the anchor) for all its tests, and each test gets a database of its own in it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from airis.sinks.chdb_store import ChdbStore


@pytest.fixture(scope="module")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("chdb")
    anchor = ChdbStore(path)  # keeps the embedded engine on this directory for the module
    yield path
    anchor.close()


@pytest.fixture
def database() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(chdb_dir: Path, database: str) -> Iterator[ChdbStore]:
    with ChdbStore(chdb_dir, database=database) as s:
        yield s
        s.execute(f"DROP DATABASE IF EXISTS {database}")


@pytest.fixture
def migrated_store(store: ChdbStore) -> ChdbStore:
    """`store` with the schema migrated."""
    from airis.sinks.migrations import migrate

    migrate(store)
    return store
