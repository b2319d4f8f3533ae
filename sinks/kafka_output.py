"""Kafka topics out: alerts (Alertmanager's alert model), anomalies, and dead letters.

Alerts are JSON keyed by fingerprint, so every event of one alert lands on one partition in
order. The body maps onto Prometheus Alertmanager's alert (``labels``, ``annotations``,
``startsAt``, ``endsAt``, ``generatorURL``) plus ``status``, ``fingerprint`` and ``id``.
A firing alert's ``endsAt`` is Alertmanager's zero time; a resolved one's is when it ended.
``id`` is deterministic: after a restart the same event may be published again (at-least-once)
and consumers deduplicate on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from airis import telemetry
from airis.events import Alert, Anomaly, Incident
from airis.sinks.exporter import Exporter, ExportResult

logger = logging.getLogger(__name__)

__all__ = [
    "ZERO_TIME",
    "InMemoryTopicsExporter",
    "KafkaTopicsExporter",
    "KafkaTopicsSink",
    "alert_message",
    "alertmanager_alert",
    "anomaly_message",
    "consume_topic",
    "incident_message",
]

#: Alertmanager's "not ended" time.
ZERO_TIME = "0001-01-01T00:00:00Z"
#: How long a batch may wait for the broker's acknowledgements before the flow fails (and a
#: restart replays it from the last snapshot).
DELIVERY_TIMEOUT_S = 120.0
#: How long a new exporter waits for the cluster's metadata before its first export.
CONNECT_TIMEOUT_S = 2.0
#: Errors that mean "this record is larger than the producer or the topic takes".
_TOO_LARGE = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})
#: The header every dead-letter copy carries (see `to_dead_letter_message`).
_DEAD_LETTER_HEADER = "airis.scope"


def alertmanager_alert(alert: Alert, generator_url: str = "") -> dict[str, Any]:
    """``alert`` in Alertmanager's alert model.

    >>> from datetime import UTC, datetime
    >>> a = Alert(id="e1", fingerprint="f1", status="firing", service="api", signal="latency_p99",
    ...           kind="spike", severity="critical", starts_at=datetime(2026, 1, 1, tzinfo=UTC),
    ...           score=0.99, summary="latency_p99 of api is 840 (expected 120)")
    >>> body = alertmanager_alert(a, "http://grafana/d/airis")
    >>> body["labels"]["alertname"], body["startsAt"], body["endsAt"]
    ('AnomalousSignal', '2026-01-01T00:00:00Z', '0001-01-01T00:00:00Z')
    """
    labels = {
        "alertname": "AnomalousSignal",
        "service": alert.service,
        "signal": alert.signal,
        "kind": alert.kind,
        "severity": alert.severity,
        **alert.labels,
    }
    return {
        "id": alert.id,
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "labels": labels,
        "annotations": {
            "summary": alert.summary,
            "score": f"{alert.score:.3f}",
            "updatedAt": _iso(alert.updated_at) if alert.updated_at else "",
        },
        "startsAt": _iso(alert.starts_at),
        "endsAt": _iso(alert.ends_at) if alert.ends_at else ZERO_TIME,
        "generatorURL": _generator_url(generator_url, alert),
    }


def alert_message(alert: Alert, topic: str, generator_url: str = "") -> KafkaSinkMessage:
    """The alerts topic's record for ``alert``: keyed by fingerprint."""
    body = orjson.dumps(alertmanager_alert(alert, generator_url))
    return KafkaSinkMessage(key=alert.fingerprint.encode(), value=body, topic=topic)


def anomaly_message(anomaly: Anomaly, topic: str) -> KafkaSinkMessage:
    """The anomalies topic's record: the anomaly as JSON, keyed by series."""
    key = f"{anomaly.service}/{anomaly.signal}".encode()
    return KafkaSinkMessage(key=key, value=anomaly.model_dump_json().encode(), topic=topic)


def incident_message(incident: Incident, topic: str) -> KafkaSinkMessage:
    """The incidents topic's record: the incident and its ranked candidates, keyed by id."""
    return KafkaSinkMessage(
        key=incident.id.encode(), value=incident.model_dump_json().encode(), topic=topic
    )


def _iso(ts) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _generator_url(base: str, alert: Alert) -> str:
    if not base:
        return ""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}var-service={alert.service}&var-signal={alert.signal}"


class KafkaTopicsExporter(Exporter):
    """Publish messages to the topics they name with one idempotent producer
    (`airis.sinks.exporter.Exporter`).

    ``export`` returns once the broker has acknowledged every message of the batch, or
    FAILURE (with `last_error`) when some were not acknowledged within `DELIVERY_TIMEOUT_S`.
    Not ``acknowledged`` (a flow without snapshots, where no snapshot needs it): ``export``
    queues the batch and returns; a delivery that failed is the FAILURE of the next
    ``export`` or of `force_flush`, so nothing is lost unsaid.
    Dead letters a topic refuses as too large are cut to fit and sent again: a dead letter
    carries someone else's bytes, so its size is not ours to promise. When the producer or the
    broker refuses one as too large, it is sent again alone (the broker refuses a whole record
    batch for one large record), then, while still refused, with its value halved (down to
    nothing, then the key goes too); the header ``airis.truncated.from`` gives the original
    length. Any other refusal is a FAILURE.
    """

    def __init__(
        self, bootstrap: str, config: dict[str, str] | None = None, acknowledged: bool = True
    ) -> None:
        self.acknowledged = acknowledged
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "linger.ms": 5,
                "compression.type": "lz4",
                "message.max.bytes": 4 * 1024 * 1024,
                **(config or {}),
            }
        )
        self._failures: list[str] = []
        self._too_large: list[KafkaSinkMessage] = []
        self._shutdown = False
        #: Why the last FAILURE happened.
        self.last_error = ""
        self._connect()

    def _connect(self) -> None:
        """Ask for the cluster's metadata now. A new producer's first message waited about
        half a second for its connection, and the flow makes this exporter when its first
        alert comes (Bytewax builds a sink's partition then): that alert was late by as much
        (`benchmarks/bench_kafka.py --only c`). The metadata takes about 50 ms. A broker that
        does not answer is the first export's to report."""
        try:
            self._producer.list_topics(timeout=CONNECT_TIMEOUT_S)
        except KafkaException as exc:
            logger.warning("Kafka did not answer within %.0f s: %s", CONNECT_TIMEOUT_S, exc)

    def export(self, batch: Sequence[KafkaSinkMessage]) -> ExportResult:
        """Publish ``batch``; SUCCESS once the broker acknowledged all of it (queued, if not
        ``acknowledged``)."""
        if self._shutdown:
            return self._refused(len(batch))
        if not (self._send(batch) if self.acknowledged else self._queue(batch)):
            return ExportResult.FAILURE
        return self._send_refused()

    def _send_refused(self) -> ExportResult:
        # The broker refuses a whole record batch for one large record: each refused dead
        # letter is sent again alone, as it was, and cut only if it is refused alone too.
        refused, self._too_large = self._too_large, []
        for msg in refused:
            while msg is not None:
                if not self._send([msg]):
                    return ExportResult.FAILURE
                if not self._too_large:
                    break
                self._too_large = []
                msg = _cut(msg)
        return ExportResult.SUCCESS

    def force_flush(self) -> bool:
        """Wait for every queued message's acknowledgement; True if every one was delivered
        (else `last_error` says why)."""
        remaining = self._producer.flush(DELIVERY_TIMEOUT_S)
        if remaining:
            self.last_error = f"Kafka did not acknowledge {remaining} queued messages"
            return False
        return self._queue([]) and self._send_refused() is ExportResult.SUCCESS

    def shutdown(self) -> None:
        """Flush; later exports fail fast. A second call only warns."""
        if not self._shutting_down():
            return
        self.force_flush()

    def _send(self, items: Sequence[KafkaSinkMessage]) -> bool:
        for msg in items:
            self._produce(msg)
        remaining = self._producer.flush(DELIVERY_TIMEOUT_S)
        if self._failures or remaining:
            failures, self._failures = self._failures, []
            self._too_large = []
            self.last_error = (
                f"Kafka did not acknowledge {len(failures) + remaining} of {len(items)} "
                f"messages: {failures[:3]}"
            )
            return False
        return True

    def _queue(self, items: Sequence[KafkaSinkMessage]) -> bool:
        """Queue ``items`` without waiting; False if an earlier message was not delivered."""
        for msg in items:
            self._produce(msg)
        self._producer.poll(0)  # the delivery reports that came in
        if not self._failures:
            return True
        failures, self._failures = self._failures, []
        self._too_large = []
        self.last_error = f"Kafka did not acknowledge {len(failures)} messages: {failures[:3]}"
        return False

    def _produce(self, msg: KafkaSinkMessage) -> None:
        def on_delivery(err: KafkaError | None, _record: Any) -> None:
            self._on_delivery(err, msg)

        while True:
            try:
                self._producer.produce(
                    msg.topic, value=msg.value, key=msg.key, headers=msg.headers,
                    on_delivery=on_delivery,
                )  # fmt: skip
                return
            except BufferError:  # local queue full: let deliveries drain, then retry
                self._producer.poll(0.1)
            except KafkaException as exc:  # larger than the producer takes: never queued
                self._on_delivery(exc.args[0], msg)
                return

    def _on_delivery(self, err: KafkaError | None, msg: KafkaSinkMessage) -> None:
        if err is None:
            return
        if err.code() in _TOO_LARGE and _is_dead_letter(msg):
            self._too_large.append(msg)
        else:
            self._failures.append(str(err))


class InMemoryTopicsExporter(Exporter):
    """`KafkaTopicsExporter`'s twin: keeps the messages it is given, per topic."""

    def __init__(self) -> None:
        self.messages: dict[str, list[KafkaSinkMessage]] = {}
        self._shutdown = False
        self.last_error = ""

    def export(self, batch: Sequence[KafkaSinkMessage]) -> ExportResult:
        """Keep ``batch``; FAILURE after shutdown."""
        if self._shutdown:
            return self._refused(len(batch))
        for msg in batch:
            self.messages.setdefault(msg.topic, []).append(msg)
        return ExportResult.SUCCESS

    def force_flush(self) -> bool:
        """Nothing is queued: always True."""
        return True

    def shutdown(self) -> None:
        """Stop accepting messages; a second call only warns."""
        self._shutting_down()


class KafkaTopicsSink(DynamicSink[KafkaSinkMessage]):
    """Publish messages to the topics they name, one `KafkaTopicsExporter` per worker.

    Delivery: ``write_batch`` returns only once the broker has acknowledged every message of
    the batch, so Bytewax's snapshot after it never covers an unpublished message
    (at-least-once; duplicates after a restart carry the same ``id``). A batch the exporter
    could not deliver (past `DELIVERY_TIMEOUT_S`) fails the flow rather than lose a message.
    Not ``acknowledged`` (a flow without snapshots): ``write_batch`` does not wait, and a
    message not delivered fails a later batch, or the flow's end.
    """

    def __init__(
        self, bootstrap: str, config: dict[str, str] | None = None, acknowledged: bool = True
    ) -> None:
        self.bootstrap = bootstrap
        self.config = config or {}
        self.acknowledged = acknowledged

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _TopicsPartition:
        exporter = KafkaTopicsExporter(self.bootstrap, self.config, self.acknowledged)
        return _TopicsPartition(exporter)


class _TopicsPartition(StatelessSinkPartition[KafkaSinkMessage]):
    def __init__(self, exporter: KafkaTopicsExporter | InMemoryTopicsExporter) -> None:
        self._exporter = exporter

    def write_batch(self, items: list[KafkaSinkMessage]) -> None:
        started = time.perf_counter()
        if self._exporter.export(items) is ExportResult.FAILURE:
            raise RuntimeError(self._exporter.last_error)
        telemetry.SINK_SECONDS.labels(sink="kafka").observe(time.perf_counter() - started)
        telemetry.SINK_BATCH.labels(sink="kafka").observe(len(items))

    def close(self) -> None:
        delivered = self._exporter.force_flush()
        self._exporter.shutdown()
        if not delivered:
            raise RuntimeError(self._exporter.last_error)


def _is_dead_letter(msg: KafkaSinkMessage) -> bool:
    return any(name == _DEAD_LETTER_HEADER for name, _ in msg.headers or ())


def _cut(msg: KafkaSinkMessage) -> KafkaSinkMessage | None:
    """``msg`` with half its value (no key once the value is gone); None when nothing is left.

    >>> m = KafkaSinkMessage(b"k", b"x" * 10, "dlq", headers=[("airis.scope", b"message")])
    >>> cut = _cut(m)
    >>> len(cut.value), dict(cut.headers)["airis.truncated.from"]
    (5, b'10')
    >>> _cut(KafkaSinkMessage(None, b"", "dlq", headers=[("airis.scope", b"message")])) is None
    True
    """
    value, key = msg.value or b"", msg.key
    if value:
        value = value[: len(value) // 2]
    elif key:
        key = None
    else:
        logger.error(
            "dead letter for %s refused even empty: not published (still stored)", msg.topic
        )
        telemetry.DEAD_LETTERS_CUT.labels(outcome="dropped").inc()
        return None
    headers = [(n, v) for n, v in msg.headers or () if n != "airis.truncated.from"]
    original = dict(msg.headers or ()).get(
        "airis.truncated.from", str(len(msg.value or b"")).encode()
    )
    headers.append(("airis.truncated.from", original))
    telemetry.DEAD_LETTERS_CUT.labels(outcome="cut").inc()
    return KafkaSinkMessage(key=key, value=value, topic=msg.topic, headers=headers)


def consume_topic(
    bootstrap: str,
    topic: str,
    *,
    group: str | None = None,
    from_beginning: bool = True,
    idle_timeout: float | None = 5.0,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[Any]:
    """Messages of ``topic`` as they arrive (confluent-kafka ``Message`` objects).

    With ``group`` it subscribes as that consumer group (committing offsets, so a second run
    continues where the first stopped); without, it reads every partition by assignment.
    Ends after ``idle_timeout`` seconds without a message (None: never), or when ``stop()``.
    """
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": group or "airis-reader",
        "enable.auto.commit": group is not None,
        "auto.offset.reset": "earliest" if from_beginning else "latest",
    }
    consumer = Consumer(config)
    try:
        if group:
            consumer.subscribe([topic])
        else:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            if meta.error is not None:
                raise KafkaException(meta.error)
            offset = -2 if from_beginning else -1  # OFFSET_BEGINNING / OFFSET_END
            consumer.assign([TopicPartition(topic, p, offset) for p in meta.partitions])
        last = time.monotonic()
        while not stop():
            batch = consumer.consume(500, 0.2)
            now = time.monotonic()
            for msg in batch:
                if msg.error() is None:
                    last = now
                    yield msg
                else:
                    logger.warning("%s: %s", topic, msg.error())
            if idle_timeout is not None and not batch and now - last > idle_timeout:
                return
    finally:
        consumer.close()
