"""What decoding gives: events and rejections, the error for an unreadable message, limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

#: Largest message we try to decode; checked before parsing anything.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
UNKNOWN_SERVICE = "unknown_service"
#: Resource attributes copied into every metric point's labels.
RESOURCE_LABELS = ("service.namespace", "service.instance.id", "host.name")
#: Scope name written by the encoders.
SCOPE_NAME = "airis-mon"

MAX_NAME = 128
MAX_LABEL_VALUE = 1024
MAX_SPAN_NAME = 256
MAX_UNIT = 64
#: Bounds and bucket counts of a rejected histogram kept in its dead letter.
MAX_ITEM_BUCKETS = 64

OtlpEncoding = Literal["otlp_proto", "otlp_json"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Rejected:
    """One data point, log record or span of a decodable message that failed validation."""

    reason: str
    item: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Decoded(Generic[T]):
    """What one message gave: valid events, and the items that were rejected."""

    events: list[T]
    rejected: list[Rejected]


class OtlpDecodeError(ValueError):
    """The whole message is undecodable; ``str(exc)`` is a short reason."""
