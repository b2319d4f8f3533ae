"""Fixtures shared by the whole suite: the real Kafka broker, and the embedded ClickHouse.

`kafka_bootstrap` starts one broker per test run with deploy/kafka/kafka.sh (jars from Maven
Central, no Docker) on a free port in a temporary directory and stops it at the end, or uses
the broker named by AIRIS_TEST_KAFKA_BOOTSTRAP. Missing Java or a broker that does not come up
fails the tests that need it (it never skips them). `kafka_topic` creates uniquely named topics
and deletes them after the test. Every test using the broker is marked `kafka`, and every test
using a real external part (the broker, the ClickHouse server) `integration`, so
`pytest -m "not integration"` runs the rest.

(The fixtures live here rather than in a plugin module: tests/ has no __init__.py, so
`tests.kafka_broker` would not be importable for `pytest_plugins`.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
KAFKA_LIB = REPO / "deploy" / "kafka" / "lib"


@pytest.fixture(autouse=True, scope="session")
def _isolated_model_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Flows built with default settings read the model registry: give the suite an empty
    one, never the developer's ``var/models``."""
    previous = os.environ.get("AIRIS_MODEL_DIR")
    os.environ["AIRIS_MODEL_DIR"] = str(tmp_path_factory.mktemp("models"))
    yield
    if previous is None:
        os.environ.pop("AIRIS_MODEL_DIR", None)
    else:
        os.environ["AIRIS_MODEL_DIR"] = previous


#: Fixtures that start a real external part: a test using one is an integration test.
INTEGRATION_FIXTURES = frozenset({"kafka_bootstrap", "clickhouse18_url"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "kafka_bootstrap" in fixtures:
            item.add_marker(pytest.mark.kafka)
        if fixtures & INTEGRATION_FIXTURES:
            item.add_marker(pytest.mark.integration)


def _kafka_sh(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KAFKA_SH), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_metadata(bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        md = admin.list_topics(timeout=10)
    except Exception as exc:  # KafkaException: the broker did not answer
        pytest.fail(f"Kafka broker at {bootstrap} does not answer metadata requests: {exc}")
    if not md.brokers:
        pytest.fail(f"Kafka broker at {bootstrap} reports no brokers")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """'127.0.0.1:PORT' of a running broker: AIRIS_TEST_KAFKA_BOOTSTRAP's, or one started here."""
    external = os.environ.get("AIRIS_TEST_KAFKA_BOOTSTRAP")
    if external:
        _check_metadata(external)
        yield external
        return

    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        pytest.fail(
            "the Kafka tests need Java 17+ (java on PATH or JAVA_HOME) to run the local broker; "
            "or point AIRIS_TEST_KAFKA_BOOTSTRAP at a running broker"
        )
    if not (KAFKA_LIB / ".pom.sha256").exists():
        r = _kafka_sh("fetch", timeout=900)
        if r.returncode != 0:
            pytest.fail(f"`deploy/kafka/kafka.sh fetch` (Maven) failed:\n{r.stdout}{r.stderr}")

    port = _free_port()
    data = tmp_path_factory.mktemp("kafka")
    try:
        # --owner-pid: the broker stops itself if this run dies without the teardown below.
        up = ["up", "--port", str(port), "--dir", str(data), "--owner-pid", str(os.getpid())]
        r = _kafka_sh(*up, timeout=180)
    except subprocess.TimeoutExpired as exc:
        _kafka_sh("down", "--dir", str(data), timeout=60)
        pytest.fail(f"`deploy/kafka/kafka.sh up` hung: {exc}; log: {data / 'server.log'}")
    if r.returncode != 0:
        pytest.fail(
            f"the local Kafka broker did not start (deploy/kafka/kafka.sh up --port {port} "
            f"--dir {data}):\n{r.stdout}{r.stderr}"
        )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        _kafka_sh("down", "--dir", str(data), timeout=60)


@pytest.fixture
def kafka_topic(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Factory `make(name_prefix="t", partitions=1, config=None) -> topic name`.

    Each call creates a new topic (uuid suffix) and returns once every partition has a leader;
    the topics are deleted after the test (best effort).
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created: list[str] = []

    def make(
        name_prefix: str = "t", partitions: int = 1, config: dict[str, str] | None = None
    ) -> str:
        name = f"{name_prefix}-{uuid.uuid4().hex[:12]}"
        new = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
        admin.create_topics([new], operation_timeout=30)[name].result(timeout=60)
        created.append(name)
        deadline = time.monotonic() + 30
        while True:
            topic = admin.list_topics(topic=name, timeout=10).topics.get(name)
            if (
                topic is not None
                and topic.error is None
                and len(topic.partitions) == partitions
                and all(p.leader >= 0 for p in topic.partitions.values())
            ):
                return name
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name} has no leaders 30 s after creation")
            time.sleep(0.05)

    yield make
    if created:
        for future in admin.delete_topics(created, operation_timeout=30).values():
            with contextlib.suppress(Exception):  # best effort: the broker may already be gone
                future.result(timeout=30)


# --- the embedded ClickHouse (chdb) for tests that store rows ---------------------------------
# chdb serves one data directory per process at a time: each test module keeps one directory
# open (the anchor) for all its tests, and each test gets a database of its own in it.


@pytest.fixture(scope="module")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("chdb")
    from airis.sinks.chdb_store import ChdbStore

    anchor = ChdbStore(path)  # keeps the embedded engine on this directory for the module
    yield path
    anchor.close()


@pytest.fixture
def database() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(chdb_dir: Path, database: str) -> Iterator[Any]:
    from airis.sinks.chdb_store import ChdbStore

    with ChdbStore(chdb_dir, database=database) as s:
        yield s
        s.execute(f"DROP DATABASE IF EXISTS {database}")


@pytest.fixture
def migrated_store(store: Any) -> Any:
    """`store` with the schema migrated."""
    from airis.sinks.migrations import migrate

    migrate(store)
    return store


# --- a demo's stores, for the tests of what reads them (dashboards, reports) -----------------


def _airis_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``airis ARGS`` in a subprocess on the embedded stores under ``data_dir``."""
    import sys

    env = {**os.environ, "AIRIS_DATA_DIR": str(data_dir)}
    for name in (
        "AIRIS_CLICKHOUSE_URL",
        "AIRIS_CHDB_PATH",
        "AIRIS_QDRANT_PATH",
        "AIRIS_QDRANT_URL",
    ):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "airis.cli", *args], capture_output=True,
                          text=True, env=env, timeout=900)  # fmt: skip


@pytest.fixture(scope="session")
def airis_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``airis_cli(*args, data_dir=D)``: the command line in a subprocess, stores under D."""
    return _airis_cli


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of an 8-hour demo's stores (``chdb``, ``qdrant``, ``report.html``), the
    same simulated day whenever this runs (it ends at midnight UTC of the latest Monday)."""
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = (today - timedelta(days=today.weekday())).isoformat()
    data = tmp_path_factory.mktemp("demo")
    done = _airis_cli("demo", "--hours", "8", "--seed", "3", "--end", monday, data_dir=data)
    assert done.returncode == 0, done.stderr[-3000:]
    return data / "demo"
