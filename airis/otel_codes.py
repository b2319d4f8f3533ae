"""OpenTelemetry's code tables, once: log severities, span kinds and span status codes.

What our events say (``LogRecord.severity``, ``Span.status``, a span's ``span.kind``
attribute) ↔ OTLP's numbers (what the decoders read and the encoders write) ↔ the names the
Collector's ClickHouse exporter stores (what ``otel_logs`` and ``otel_traces`` rows hold).

>>> severity_of(17, ""), severity_of(0, "warning"), SEVERITY_NUMBER["ERROR"]
('ERROR', 'WARN', 17)
>>> SPAN_KINDS[2], SPAN_KIND_NAMES["client"], STATUS_CODE_NAMES["error"]
('server', 'SPAN_KIND_CLIENT', 'STATUS_CODE_ERROR')
"""

from __future__ import annotations

__all__ = [
    "SEVERITY_LEVELS",
    "SEVERITY_NUMBER",
    "SPAN_KINDS",
    "SPAN_KIND_NAMES",
    "SPAN_KIND_NUMBERS",
    "STATUS_CODE",
    "STATUS_CODE_NAMES",
    "STATUS_OF_CODE",
    "severity_of",
]

#: Our log levels, lowest first (`airis.events.LogRecord.severity`).
SEVERITY_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
#: Severity numbers 1-24 come in runs of four per level; a level's own is its run's first.
SEVERITY_NUMBER = {level: 1 + 4 * i for i, level in enumerate(SEVERITY_LEVELS)}
_LEVEL_OF_NUMBER = tuple(level for level in SEVERITY_LEVELS for _ in range(4))
_LEVEL_OF_TEXT = {
    **{level: level for level in SEVERITY_LEVELS},
    "WARNING": "WARN",
    "CRITICAL": "FATAL",
}


def severity_of(number: int, text: str) -> str:
    """Our level for an OTLP record: by its severity number, else by a text naming a level,
    else INFO."""
    if 1 <= number <= 24:
        return _LEVEL_OF_NUMBER[number - 1]
    return _LEVEL_OF_TEXT.get(text.strip().upper(), "INFO")


#: OTLP's span status codes ↔ `airis.events.Span.status`.
STATUS_OF_CODE = {2: "error", 1: "ok"}
STATUS_CODE = {"error": 2, "ok": 1, "unset": 0}
#: OTLP's SpanKind numbers ↔ the ``span.kind`` attribute of a `Span` (UNSPECIFIED: none).
SPAN_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
SPAN_KIND_NUMBERS = {name: number for number, name in SPAN_KINDS.items()}

#: The Collector's ClickHouse exporter's names for them.
SPAN_KIND_NAMES = {name: f"SPAN_KIND_{name.upper()}" for name in SPAN_KIND_NUMBERS}
STATUS_CODE_NAMES = {status: f"STATUS_CODE_{status.upper()}" for status in STATUS_CODE}
