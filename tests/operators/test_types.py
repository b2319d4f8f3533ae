"""The records operators pass around: what snapshots keep of them."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from airis.operators.types import (
    Assessment,
    SignalCodes,
    SignalSummary,
    _cycle_codes,
    _run_codes,
)

#: An `Assessment` as the frozen dataclass of releases before 2026-12-05 pickled it (what a
#: recovery snapshot taken mid-window holds).
FROZEN_PICKLE = (
    b"\x80\x04\x95s\x00\x00\x00\x00\x00\x00\x00\x8c\x15airis.operators.types\x94\x8c\n"
    b"Assessment\x94\x93\x94)\x81\x94]\x94(G?\xd0\x00\x00\x00\x00\x00\x00G@\x08\x00\x00\x00"
    b"\x00\x00\x00G?\xf0\x00\x00\x00\x00\x00\x00G?\xe0\x00\x00\x00\x00\x00\x00G?\xf8\x00\x00"
    b"\x00\x00\x00\x00\x8c\x02ok\x94\x8c\x05level\x94G?\xe8\x00\x00\x00\x00\x00\x00eb."
)


def test_an_assessment_pickled_by_the_frozen_class_still_loads() -> None:
    assessment = pickle.loads(FROZEN_PICKLE)
    assert assessment == Assessment(0.25, 3.0, 1.0, 0.5, 1.5, "ok", "level", 0.75)
    assert assessment.direction == "spike"


def test_an_assessment_round_trips_and_hashes_by_value() -> None:
    assessment = Assessment(0.9, 1.0, 2.0, 1.5, 2.5, "ok", "drift", 0.5)
    again = pickle.loads(pickle.dumps(assessment))
    assert again == assessment and hash(again) == hash(assessment)
    assert again.direction == "dip"


#: A `SignalSummary` as the frozen dataclass of releases before 2026-12-06 pickled it.
FROZEN_SUMMARY_PICKLE = (
    b"\x80\x04\x95\x01\x01\x00\x00\x00\x00\x00\x00\x8c\x15airis.operators.types\x94\x8c\r"
    b"SignalSummary\x94\x93\x94)\x81\x94]\x94(\x8c\x08datetime\x94\x8c\x08datetime\x94\x93"
    b"\x94C\n\x07\xea\x01\x01\x00\x00\x00\x00\x00\x00\x94h\x05\x8c\x08timezone\x94\x93"
    b"\x94h\x05\x8c\ttimedelta\x94\x93\x94K\x00K\x00K\x00\x87\x94R\x94\x85\x94R\x94\x86"
    b"\x94R\x94\x8c\x15airis.operators.types\x94\x8c\nAssessment\x94\x93\x94)\x81\x94]\x94"
    b"(G?\xd0\x00\x00\x00\x00\x00\x00G@\x08\x00\x00\x00\x00\x00\x00G?\xf0\x00\x00\x00"
    b"\x00\x00\x00G?\xe0\x00\x00\x00\x00\x00\x00G?\xf8\x00\x00\x00\x00\x00\x00\x8c\x06"
    b"recent\x94\x8c\x05level\x94G?\xe8\x00\x00\x00\x00\x00\x00ebK\x04eb."
)


def test_a_signal_summary_pickled_by_the_frozen_class_still_loads_and_round_trips() -> None:
    summary = pickle.loads(FROZEN_SUMMARY_PICKLE)
    assessment = Assessment(0.25, 3.0, 1.0, 0.5, 1.5, "recent", "level", 0.75)
    assert summary == SignalSummary(datetime(2026, 1, 1, tzinfo=UTC), assessment, 4)
    again = pickle.loads(pickle.dumps(summary))
    assert again == summary and hash(again) == hash(summary)


_NAMES = st.sampled_from(["cpu", "mem", "disk", "net"])


@st.composite
def _signal_orders(draw: st.DrawFn) -> list[str]:
    """Signals as batches hold them: a scrape's names again and again, one name's run after
    another's, or any order (equal names as distinct string objects too)."""
    kind = draw(st.sampled_from(["cycle", "runs", "any"]))
    if kind == "any":
        names = draw(st.lists(_NAMES, max_size=40))
    elif kind == "cycle":
        scrape = draw(st.lists(_NAMES, min_size=1, max_size=4, unique=True))
        names = (scrape * 20)[: draw(st.integers(0, 80))]
    else:
        runs = draw(st.lists(st.tuples(_NAMES, st.integers(1, 9)), max_size=6))
        names = [name for name, length in runs for _ in range(length)]
    return [("" + name + "!")[:-1] if draw(st.booleans()) else name for name in names]


@settings(max_examples=300, deadline=None)
@given(signals=_signal_orders())
def test_signal_codes_name_each_point_by_the_distinct_names_in_order_of_first_point(
    signals: list[str],
) -> None:
    codes = SignalCodes.of(signals)
    assert codes.names == tuple(dict.fromkeys(signals))
    assert codes.codes.dtype == np.int64
    assert [codes.names[c] for c in codes.codes.tolist()] == signals


def test_signal_codes_of_a_scrape_again_and_again_or_of_runs_skip_the_lookup_per_point() -> None:
    scrapes = ("cpu", "mem", "disk") * 5 + ("cpu",)
    runs = ("cpu",) * 4 + ("mem",) * 3 + ("disk",)
    assert _cycle_codes(scrapes).codes.tolist() == [0, 1, 2] * 5 + [0]
    assert _run_codes(runs).codes.tolist() == [0] * 4 + [1] * 3 + [2]
    for neither in [("cpu", "mem", "cpu", "cpu"), ("cpu", "cpu", "mem", "cpu")]:
        assert _cycle_codes(neither) is None and _run_codes(neither) is None
