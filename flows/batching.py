"""Group a batch of input by key before a keyed step, so an exchange moves one item per key
and batch of input instead of one per event."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from airis.batches import PickledOnce

T = TypeVar("T")

__all__ = ["flatten", "group_by", "grouped_by_service", "one_item"]


def group_by(items: Iterable[T], key: Callable[[T], str]) -> dict[str, list[T]]:
    """``items`` per ``key(item)``, each list in arrival order.

    >>> group_by(["ab", "ac", "b"], lambda s: s[0])
    {'a': ['ab', 'ac'], 'b': ['b']}
    """
    groups: dict[str, list[T]] = {}
    for item in items:
        k = key(item)
        group = groups.get(k)
        if group is None:
            groups[k] = [item]
        else:
            group.append(item)
    return groups


def grouped_by_service(events: list[Any]) -> list[tuple[str, list[Any]]]:
    """``(service, its events)`` per service of a batch of input: what a keyed step is given."""
    return list(group_by(events, _service).items())


def one_item(key: str) -> Callable[[list[Any]], list[tuple[str, list[Any]]]]:
    """A batch of input as one item of ``key`` that pickles once (`PickledOnce`): what
    crosses to a step of one key, such as the incidents', or to the store's one partition.

    >>> one_item("incidents")(["a", "b"])
    [('incidents', ['a', 'b'])]
    """
    return lambda batch: [(key, PickledOnce(batch))]


def flatten(groups: list[list[Any]]) -> list[Any]:
    """The events of the groups a keyed step was given, in order."""
    return groups[0] if len(groups) == 1 else [event for group in groups for event in group]


def _service(event: Any) -> str:
    return event.service
