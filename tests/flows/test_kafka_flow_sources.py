"""The Kafka metrics flow without a broker: its sources and sinks injected (issue 13).

The same simulation as JSON messages, read from a Bytewax testing source instead of Kafka,
gives exactly the alerts of the simulator flow (`metrics_anomaly`), as the broker tests in
tests/flows/test_kafka_metrics.py check against a real broker.
"""

from __future__ import annotations

import orjson
import pytest
from bytewax.testing import TestingSink, TestingSource, run_main

from airis.app.kafka_producer import encode_tick
from airis.batches import MetricBatch
from airis.events import Alert
from airis.flows import kafka_metrics, metrics_anomaly
from airis.settings import Settings
from airis.sources.iterable_source import simulator_source
from airis.sources.kafka_polls import RawMessage
from airis.sources.simulator import recent_simulation


@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "unkeyed"])
def test_the_kafka_flow_reads_injected_sources_and_alerts_as_the_simulator_flow(
    keyed: bool,
) -> None:
    """Unkeyed messages go through the partition alignment, and its released runs of points
    become batches: the same points stored, the same alerts."""
    sim = recent_simulation(4.0, 3)
    reference: list = []
    run_main(metrics_anomaly.build_flow(simulator_source(sim), TestingSink(reference), Settings()))
    expected = {a.id: a.status for a in reference if isinstance(a, Alert)}
    assert expected, "the reference run must raise alerts for the test to mean anything"

    messages = [
        RawMessage(key if keyed else None, value, "metrics", offset, 0, 0.0)
        for offset, (key, value) in enumerate(
            message for tick in sim.ticks() for message in encode_tick(tick, "json")
        )
    ]
    stored: list = []
    published: list = []
    flow = kafka_metrics.build_flow(
        Settings(),
        sources={
            "metrics": TestingSource(messages, batch_size=500),
            "logs": TestingSource([]),
            "traces": TestingSource([]),
        },
        store_sink=TestingSink(stored),
        topics_sink=TestingSink(published),
        memory_sink=TestingSink([]),
    )
    run_main(flow)

    points = sum(len(e) for _key, batch in stored for e in batch if isinstance(e, MetricBatch))
    assert points == len(messages)
    settings = Settings()
    alerts = [orjson.loads(m.value) for m in published if m.topic == settings.kafka_alerts_topic]
    assert {a["id"]: a["status"] for a in alerts} == expected
