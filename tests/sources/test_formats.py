"""The input format registry: one decoder per format, used by the Kafka source's decoding."""

from __future__ import annotations

import typing
from datetime import UTC, datetime

import orjson
import pytest
from bytewax.connectors.kafka import KafkaSourceMessage

from airis.events import LogRecord, MetricPoint
from airis.settings import InputFormat
from airis.sources import formats, otlp
from airis.sources.formats import FormatError, decoder_for, sniff_format
from airis.sources.kafka_input import KafkaDeadLetter, decode_messages
from airis.sources.otlp import Decoded

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POINT = MetricPoint(ts=T0, service="api", signal="cpu", value=1.5)
LOG = LogRecord(ts=T0, service="api", severity="ERROR", body="disk full")


def message(value: bytes, offset: int = 0) -> KafkaSourceMessage:
    return KafkaSourceMessage(None, value, "in", offset=offset, partition=0)


def test_the_settings_offer_exactly_the_registered_formats_and_auto() -> None:
    assert set(typing.get_args(InputFormat)) == {"auto", *formats.formats()}


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (orjson.dumps(POINT.model_dump(mode="json")), "json"),
        (otlp.encode_metrics([POINT], "otlp_json"), "otlp_json"),
        (otlp.encode_metrics([POINT], "otlp_proto"), "otlp_proto"),
    ],
)
def test_each_format_is_sniffed_and_decoded_by_its_own_decoder(
    encoded: bytes, expected: str
) -> None:
    assert sniff_format(encoded) == expected
    decoded = decoder_for(expected)(encoded, "metrics")
    assert [(p.service, p.signal, p.value) for p in decoded.events] == [("api", "cpu", 1.5)]


def test_a_json_event_of_another_signal_is_validated_by_its_model() -> None:
    decoded = decoder_for("json")(orjson.dumps(LOG.model_dump(mode="json")), "logs")
    assert decoded.events == [LOG]
    with pytest.raises(FormatError, match="body: Input should be a valid string"):
        decoder_for("json")(b'{"ts": "2026-01-01T00:00:00Z", "service": "a", "body": 1}', "logs")


def test_an_otlp_message_without_data_is_a_format_error() -> None:
    empty = otlp.encode_metrics([], "otlp_proto")
    with pytest.raises(FormatError, match="no data in otlp_proto message"):
        decoder_for("otlp_proto")(empty, "metrics")


def test_an_unknown_format_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: json, otlp_json, otlp_proto"):
        decoder_for("avro")


def test_a_registered_format_is_what_the_kafka_decoding_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new format is one decoder and one `register` call."""

    def csv(value: bytes, signal: str, *, columns: bool = False) -> Decoded:
        service, name, number = value.decode().split(",")
        if not number:
            raise FormatError("csv: no value")
        return Decoded([MetricPoint(ts=T0, service=service, signal=name, value=number)], [])

    monkeypatch.setitem(formats._DECODERS, "csv", csv)
    out = decode_messages(
        [message(b"api,cpu,2.5"), message(b"api,cpu,", 1)], "metrics", input_format="csv"
    )
    assert isinstance(out[0], MetricPoint) and out[0].value == 2.5
    assert isinstance(out[1], KafkaDeadLetter) and out[1].letter.reason == "csv: no value"
