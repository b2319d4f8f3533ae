"""Decoding OTLP as the OpenTelemetry Collector's Kafka exporter writes it, in bulk.

One Kafka message carries one ``Export{Metrics,Logs,Trace}ServiceRequest``: many data points,
log records or spans. Two encodings are understood:

* ``otlp_proto`` (the exporter's default): the serialized protobuf request.
* ``otlp_json``: the protobuf JSON mapping of the same request as OTLP/JSON defines it:
  camelCase keys (snake_case accepted too), 64-bit integers as strings or numbers, enums as
  numbers or names, and ``traceId``/``spanId``/``parentSpanId`` as **hex** (base64 is accepted
  as a fallback; other ``bytes`` such as ``bytesValue`` are base64 as usual). The JSON is
  walked as plain dicts after `orjson` parsing: ``google.protobuf.json_format`` would read the
  hex ids as base64 and is several times slower.

`sniff_encoding` tells these apart from our own JSON events by their first bytes.

Mapping rules:

* **service** = resource attribute ``service.name``; missing or empty → ``unknown_service``
  (as the OpenTelemetry spec says). Names we keep (service, metric signal, label and attribute
  keys, peer service) have every character outside ``[A-Za-z0-9_.:/-]`` replaced by ``_`` and
  are cut to 128 characters; when two keys clash after that, the later one wins.
* **values of attributes** become strings: a string as is, bool/int/double as compact JSON
  (``true``, ``3``, ``0.5``; non-finite doubles as ``NaN``/``Infinity``/``-Infinity``), bytes as
  hex, arrays and key-value lists as compact JSON, an empty value as ``""``; cut to 1,024
  characters. More than 64 labels: the first 64 by key are kept (nothing is rejected).
* **metrics**: signal = metric name. Gauge points and non-monotonic Sum points (an
  UpDownCounter: a level) → one `MetricPoint` each (``as_double`` or ``as_int``). Running
  totals become one `AggregatePoint` each, which
  `airis.operators.signals.otlp_metrics.OtlpMetricPoints` turns into per-interval rates, means and
  percentiles later in the flow (per series state cannot live here: a Collector spreads one
  service's messages over partitions): a monotonic Sum (``kind="sum"``); a Histogram
  (``kind="histogram"``: count, sum when present, explicit bounds and bucket counts); an
  ExponentialHistogram as explicit buckets (``base = 2 ** 2 ** -scale``, bucket ``i`` covering
  ``(base ** (offset + i), base ** (offset + i + 1)]``, the negative ones mirrored below zero,
  the zero bucket between, an empty bucket at each end); a Summary's count and sum as a
  histogram without buckets, its quantiles as given → ``<name>.q<quantile>`` points
  (``latency.q0.99``, ``latency.q1``; the name is cut so that the suffix always fits).
  ``temporality`` = the metric's aggregation temporality (unspecified, which OTLP forbids,
  read as cumulative; Summaries are cumulative), ``start`` = ``start_time_unix_nano`` (0 →
  None), ``unit`` = the metric's unit. An aggregate whose bucket counts do not fit its bounds
  (bounds + 1), whose bounds do not increase, whose count is not the sum of its buckets, whose
  exponential bounds overflow a double, or whose start is after its time is `Rejected`.
  ts = ``time_unix_nano`` (UTC, truncated to µs), or
  ``start_time_unix_nano`` when that is 0. Labels = the point's attributes plus the resource
  attributes ``service.namespace``, ``service.instance.id`` and ``host.name`` (the point's own
  attribute wins a clash). A point flagged NoRecordedValue, with no value or no timestamp, a
  non-finite value or a timestamp outside [2000, 2100) is `Rejected`, with the reason; each
  point derived from a summary is judged on its own. Metric points and aggregates whose fields
  pass an exact pre-check are built without pydantic's validation (it would double the cost);
  the rest are validated by the model, which gives the reason.
* **logs**: ts = ``time_unix_nano``, else ``observed_time_unix_nano``; severity from
  ``severity_number`` (1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR, 21-24 FATAL),
  else from ``severity_text`` when it names a level (``WARNING`` → WARN, ``CRITICAL`` → FATAL),
  else INFO. body = a string as is, any other value as compact JSON, cut to `MAX_TEXT`.
  trace/span ids as hex; empty or all-zero → None. attributes = the record's attributes.
* **traces**: ids as hex (an empty or all-zero parent → None), name cut to 256 characters,
  start = ``start_time_unix_nano``, duration_ms = (end - start) / 1e6 (negative → `Rejected`),
  status ERROR → ``error``, OK → ``ok``, anything else → ``unset``; peer_service from the
  attribute ``peer.service``, else ``server.address``, else ``net.peer.name``.
  attributes = the span's attributes (``peer.service`` included) and ``span.kind``
  (``internal``, ``server``, ``client``, ``producer`` or ``consumer``) from the span's kind,
  unless an attribute of that name came with it or the kind is unspecified.

Failures: a message that cannot be read at all — over `MAX_MESSAGE_BYTES`, invalid protobuf,
invalid UTF-8 or JSON, or JSON whose containers have the wrong shape (anything outside a data
point, log record or span) — raises `OtlpDecodeError`. A data point, record or span that fails
validation, or whose own JSON fields are malformed, becomes one `Rejected` with the reason and a
JSON-able description (for malformed JSON, the item's JSON cut to 1,024 characters), and the
rest of the message is kept. Nothing else is ever raised for any payload (an unknown
``encoding`` argument is the caller's bug: ValueError). Protobuf is permissive, so random bytes
sometimes parse: they then give events and rejections like any other message.
"""

from __future__ import annotations

from airis.sources.otlp._decode import (
    SNIFF_BYTES,
    decode_logs,
    decode_metrics,
    decode_traces,
    sniff_encoding,
)
from airis.sources.otlp._encode import encode_logs, encode_metrics, encode_traces
from airis.sources.otlp._types import (
    MAX_MESSAGE_BYTES,
    RESOURCE_LABELS,
    SCOPE_NAME,
    UNKNOWN_SERVICE,
    Decoded,
    OtlpDecodeError,
    OtlpEncoding,
    Rejected,
)

__all__ = [
    "MAX_MESSAGE_BYTES",
    "RESOURCE_LABELS",
    "SCOPE_NAME",
    "SNIFF_BYTES",
    "UNKNOWN_SERVICE",
    "Decoded",
    "OtlpDecodeError",
    "OtlpEncoding",
    "Rejected",
    "decode_logs",
    "decode_metrics",
    "decode_traces",
    "encode_logs",
    "encode_metrics",
    "encode_traces",
    "sniff_encoding",
]
