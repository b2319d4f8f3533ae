"""Tests of JSON Lines writing and replay."""

from __future__ import annotations

import doctest
import gzip
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

import airis.sources.jsonl as jsonl
from airis.events import MetricPoint
from airis.sources.jsonl import decode_line, encode_event, read_jsonl, write_jsonl
from airis.sources.simulator import Simulator

T0 = datetime(2024, 1, 3, 12, tzinfo=UTC)


def sample_events() -> list[dict]:
    sim = Simulator(start=T0, hours=0.1, seed=3, faults=[])
    return list(sim.points())


@pytest.mark.parametrize("name", ["metrics.jsonl", "metrics.jsonl.gz"])
def test_round_trip_gives_the_same_metric_points(tmp_path: Path, name: str) -> None:
    events = sample_events()
    path = tmp_path / name
    assert write_jsonl(path, events) == len(events) == 36 * 120
    replayed = list(read_jsonl(path))
    assert len(replayed) == len(events)
    for original, line in zip(events, replayed, strict=True):
        assert isinstance(line, dict)
        assert line["ts"].endswith("Z")
        assert MetricPoint.model_validate(line) == MetricPoint.model_validate(original)
    if name.endswith(".gz"):
        with gzip.open(path) as raw:
            assert raw.readline().startswith(b'{"ts":"2024-01-03T12:00:00Z"')


def test_bad_lines_come_back_as_bytes_in_order(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b'{"ts": "2024-01-03T12:00:00Z", "service": "api", "signal": "cpu", "value": 1}\n'
        b"not json at all\n"
        b"[1, 2, 3]\n"
        b"42\n"
        b'"a string"\n'
        b"\xff\xfe\x00 not utf-8\n"
        b"\n"
        b"   \n"
        b'{"truncated": \r\n'
        b'{"service": "db"}\r\n'
        b"null\n"
        b'{"last": "line without newline"}'
    )
    assert list(read_jsonl(path)) == [
        {"ts": "2024-01-03T12:00:00Z", "service": "api", "signal": "cpu", "value": 1},
        b"not json at all",
        b"[1, 2, 3]",
        b"42",
        b'"a string"',
        b"\xff\xfe\x00 not utf-8",
        b'{"truncated": ',
        {"service": "db"},
        b"null",
        {"last": "line without newline"},
    ]


def test_empty_file_and_no_events(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    assert write_jsonl(path, []) == 0
    assert path.read_bytes() == b""
    assert list(read_jsonl(path)) == []


def test_encoding_handles_models_numpy_and_offsets() -> None:
    point = MetricPoint(ts=T0, service="api", signal="cpu", value=2.5, labels={"zone": "a"})
    assert decode_line(encode_event(point)) == {
        "ts": "2024-01-03T12:00:00Z",
        "service": "api",
        "signal": "cpu",
        "value": 2.5,
        "labels": {"zone": "a"},
    }
    event = {"ts": T0.astimezone(timezone(timedelta(hours=2))), "value": np.float64(0.25)}
    line = encode_event(event)
    assert line == b'{"ts":"2024-01-03T14:00:00+02:00","value":0.25}'
    assert MetricPoint.model_validate({**decode_line(line), "service": "s", "signal": "x"}).ts == T0


def test_unencodable_event_names_its_position(tmp_path: Path) -> None:
    path = tmp_path / "partial.jsonl"
    events = [{"value": 1}, {"value": object()}]
    with pytest.raises(TypeError, match="event #2"):
        write_jsonl(path, events)
    assert list(read_jsonl(path)) == [{"value": 1}]


def test_large_files_are_written_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    events = ({"i": i} for i in range(10_000))  # a generator, more than one batch
    assert write_jsonl(path, events) == 10_000
    assert [e["i"] for e in read_jsonl(path)] == list(range(10_000))


def test_docstring_examples() -> None:
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(jsonl, optionflags=flags)
    assert result.attempted >= 5 and result.failed == 0
