"""Input formats: one decoder per wire format, in a registry keyed by the format's name.

A decoder reads one message's bytes of one signal (metrics, logs or traces) into a `Decoded`:
the events, and the items it rejected with their reasons. A message that cannot be read as a
whole raises `FormatError`, whose text is the dead letter's reason. `sniff_format` tells the
built-in formats apart by a message's first bytes (``AIRIS_KAFKA_INPUT_FORMAT=auto``).

Built in:

* ``json``: our JSON events, one `MetricPoint`, `LogRecord` or `Span` per message;
* ``otlp_proto`` and ``otlp_json``: OTLP as the OpenTelemetry Collector's Kafka exporter
  writes it, many points, records or spans per message (`airis.sources.otlp`).

A new format is one decoder and one `register` call (and its name in the settings'
``InputFormat``, which a test keeps equal to this registry).

>>> decode = decoder_for("json")
>>> decode(b'{"ts": "2026-01-01T00:00:00Z", "service": "api", "signal": "cpu", "value": 1}',
...        "metrics").events[0].value
1.0
>>> decoder_for("xml")
Traceback (most recent call last):
...
ValueError: unknown input format 'xml'; known: json, otlp_json, otlp_proto
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ValidationError

from airis.events import MAX_TEXT, LogRecord, MetricPoint, Span, validation_reason
from airis.sources import otlp
from airis.sources.fast_point import point_from_json
from airis.sources.otlp import Decoded

__all__ = [
    "MAX_JSON_EVENT_BYTES",
    "FormatError",
    "MessageDecoder",
    "Signal",
    "decoder_for",
    "formats",
    "register",
    "sniff_format",
]

Signal = Literal["metrics", "logs", "traces"]

#: Largest JSON event read: a bigger one cannot fit its text fields' limits.
MAX_JSON_EVENT_BYTES = MAX_TEXT * 16


class FormatError(ValueError):
    """The whole message cannot be read in its format; ``str(exc)`` is the reason."""


class MessageDecoder(Protocol):
    def __call__(self, value: bytes, signal: Signal, *, columns: bool = False) -> Decoded[Any]:
        """One message's events and rejections. With ``columns``, metric points may come as
        `MetricBatch` items instead of a `MetricPoint` each."""
        ...


_DECODERS: dict[str, MessageDecoder] = {}


def register(name: str, decoder: MessageDecoder) -> None:
    """Make ``decoder`` the one for format ``name``."""
    _DECODERS[name] = decoder


def formats() -> list[str]:
    """The registered formats' names, sorted."""
    return sorted(_DECODERS)


def decoder_for(name: str) -> MessageDecoder:
    """The decoder of format ``name``; ValueError, naming the known ones, if there is none."""
    try:
        return _DECODERS[name]
    except KeyError:
        known = ", ".join(formats())
        raise ValueError(f"unknown input format {name!r}; known: {known}") from None


def sniff_format(value: bytes) -> str:
    """The built-in format ``value`` is in, from its first bytes (`otlp.sniff_encoding`)."""
    return otlp.sniff_encoding(value)


_MODELS: dict[Signal, type[BaseModel]] = {"metrics": MetricPoint, "logs": LogRecord, "traces": Span}


def decode_json_event(value: bytes, signal: Signal, *, columns: bool = False) -> Decoded[Any]:
    """Our JSON event: one event, validated by its model (a metric point by the exact fast
    check first; see `airis.sources.fast_point`)."""
    if len(value) > MAX_JSON_EVENT_BYTES:
        raise FormatError(f"JSON event of {len(value):,} bytes")
    fast = point_from_json(value) if signal == "metrics" else None
    if fast is not None:
        return Decoded([fast], [])
    try:
        return Decoded([_MODELS[signal].model_validate_json(value)], [])
    except ValidationError as exc:
        raise FormatError(validation_reason(exc)) from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise FormatError(f"undecodable: {exc}") from None


_OTLP_SIGNALS: dict[Signal, Callable[..., Decoded[Any]]] = {
    "metrics": otlp.decode_metrics,
    "logs": otlp.decode_logs,
    "traces": otlp.decode_traces,
}


def _otlp_decoder(encoding: otlp.OtlpEncoding) -> MessageDecoder:
    def decode(value: bytes, signal: Signal, *, columns: bool = False) -> Decoded[Any]:
        try:
            if signal == "metrics":
                decoded = otlp.decode_metrics(value, encoding, columns=columns)
            else:
                decoded = _OTLP_SIGNALS[signal](value, encoding)
        except otlp.OtlpDecodeError as exc:
            raise FormatError(f"undecodable {encoding}: {exc}") from None
        if not decoded.events and not decoded.rejected:  # garbage can parse as an empty request
            raise FormatError(f"no data in {encoding} message")
        return decoded

    decode.__doc__ = f"OTLP in the {encoding} encoding: a whole export request."
    return decode


register("json", decode_json_event)
register("otlp_proto", _otlp_decoder("otlp_proto"))
register("otlp_json", _otlp_decoder("otlp_json"))
