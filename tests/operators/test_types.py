"""The records operators pass around: what snapshots keep of them."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

from airis.operators.types import Assessment, SignalSummary

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
