"""`airis alerts tail`: follow the alerts topic and print each alert event readably."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape

from airis.settings import KafkaConfig
from airis.sinks.kafka_output import consume_topic

__all__ = ["format_alert", "tail_alerts"]

_STATUS_STYLE = {"firing": "bold red", "resolved": "green"}
_SEVERITY_STYLE = {"critical": "red", "warning": "yellow", "info": "cyan"}


def format_alert(body: dict[str, Any]) -> str:
    """One alert event as one line of rich markup.

    >>> format_alert({"status": "firing", "labels": {"service": "api", "signal": "cpu",
    ...   "kind": "spike", "severity": "warning"}, "annotations": {"summary": "cpu high",
    ...   "score": "0.990"}, "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z"})
    '2026-01-01T00:00:00Z [bold red]FIRING  [/] [yellow]warning [/] api/cpu spike (score 0.990):...'
    """
    labels = body.get("labels", {})
    notes = body.get("annotations", {})
    status = body.get("status", "?")
    severity = labels.get("severity", "?")
    when = body.get("startsAt", "?") if status == "firing" else body.get("endsAt", "?")
    return (
        f"{when} [{_STATUS_STYLE.get(status, 'bold')}]{status.upper():<8}[/] "
        f"[{_SEVERITY_STYLE.get(severity, 'white')}]{severity:<8}[/] "
        f"{escape(labels.get('service', '?'))}/{escape(labels.get('signal', '?'))} "
        f"{escape(labels.get('kind', ''))} (score {notes.get('score', '?')}): "
        f"{escape(notes.get('summary', ''))}"
    )


def tail_alerts(
    kafka: KafkaConfig,
    console: Console,
    *,
    from_beginning: bool = False,
    group: str | None = None,
    max_alerts: int | None = None,
    idle_timeout: float | None = None,
    on_alert: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Print alert events as they arrive; return how many were printed.

    Subscribes with the consumer group ``group`` (default ``airis-tail-<user>``), so a second
    tail continues where the first stopped; ``from_beginning`` starts a group that has no
    committed offsets at the oldest alert instead of the next one.
    """
    group = group or f"airis-tail-{os.environ.get('USER', 'user')}"
    count = 0
    messages = consume_topic(
        kafka.bootstrap,
        kafka.alerts_topic,
        group=group,
        from_beginning=from_beginning,
        idle_timeout=idle_timeout,
    )
    for msg in messages:
        try:
            body = orjson.loads(msg.value())
        except orjson.JSONDecodeError:
            console.print(f"[red]undecodable alert at offset {msg.offset()}[/]")
            continue
        console.print(format_alert(body), highlight=False)
        if on_alert is not None:
            on_alert(body)
        count += 1
        if max_alerts is not None and count >= max_alerts:
            break
    return count
