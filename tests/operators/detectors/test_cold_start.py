from __future__ import annotations

import math
import pickle
import random
from datetime import UTC, datetime, timedelta

import pytest

from airis.events import MetricPoint
from airis.operators.detectors.cold_start import SATURATION, ColdStartPrior
from airis.operators.detectors.detector_bank import DetectorBank

T0 = datetime(2026, 1, 5, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _feed(prior: ColdStartPrior, values: list[float], step: timedelta = MINUTE) -> list[float]:
    return [prior.update_one(T0 + step * i, v).score for i, v in enumerate(values)]


def test_an_error_ratio_jump_from_zero_to_half_scores_above_the_alert_threshold() -> None:
    scores = _feed(ColdStartPrior("ratio"), [0.0] * 6 + [0.5] * 3)
    assert max(scores[:6]) == 0.0
    assert min(scores[6:]) > 0.99


def test_a_ratio_is_judged_against_its_first_minutes() -> None:
    """A service that always fails 40 % of its requests is not a cold-start anomaly at 45 %."""
    rng = random.Random(1)
    values = [0.4 + rng.uniform(-0.03, 0.03) for _ in range(10)] + [0.45]
    assert _feed(ColdStartPrior("ratio"), values)[-1] < 0.5


def test_small_ratio_changes_stay_below_the_alert_threshold() -> None:
    assert _feed(ColdStartPrior("ratio"), [0.0] * 6 + [0.2])[-1] < 0.9


def test_latency_many_times_its_first_minutes() -> None:
    rng = random.Random(2)
    calm = [100 + rng.gauss(0, 5) for _ in range(6)]
    scores = _feed(ColdStartPrior("latency"), [*calm, 200.0, 500.0, 1000.0])
    assert max(scores[:6]) < 0.9
    assert scores[6] < 0.9 < scores[7] < scores[8]


def test_latency_says_nothing_before_it_has_a_baseline() -> None:
    assert _feed(ColdStartPrior("latency"), [10.0, 1000.0]) == [0.0, 0.0]


@pytest.mark.parametrize(("value", "expected"), [(50.0, 0.0), (94.9, 0.0), (95.0, 0.9)])
def test_utilisation_scores_saturation_only(value: float, expected: float) -> None:
    assert _feed(ColdStartPrior("utilisation"), [value])[0] == pytest.approx(expected)
    assert SATURATION == 95.0


def test_baseline_period_is_a_duration() -> None:
    """10-s points fill the 5-minute baseline with 30 values; a spike after it is judged
    against them, not against the values that came after the period."""
    prior = ColdStartPrior("latency")
    step = timedelta(seconds=10)
    _feed(prior, [100.0] * 30, step)
    later = [prior.update_one(T0 + step * (30 + i), 300.0) for i in range(60)]
    assert later[-1].expected == 100.0
    assert later[-1].score > 0.85


def test_verdicts_state_the_rule_and_its_confidence() -> None:
    verdict = ColdStartPrior("utilisation").update_one(T0, 99.0)
    assert verdict.state == "prior"
    assert verdict.component == "prior/utilisation"
    assert verdict.confidence == 0.9
    assert verdict.direction == "spike"


def test_non_finite_values_score_nothing_and_are_not_learned() -> None:
    prior = ColdStartPrior("ratio")
    before = pickle.dumps(prior)
    assert prior.update_one(T0, math.nan).score == 0.0
    assert pickle.dumps(prior) == before


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        ColdStartPrior("temperature")


def _point(i: int, signal: str, value: float, step: timedelta = MINUTE) -> MetricPoint:
    return MetricPoint(ts=T0 + step * i, service="payments", signal=signal, value=value)


def test_the_bank_reports_a_prior_only_while_the_detector_warms_up() -> None:
    bank = DetectorBank()
    states = [bank.update_one(_point(i, "trace_error_ratio", 0.0)).assessment.state
              for i in range(10)]  # fmt: skip
    assert set(states) == {"warming"}
    jump = bank.update_one(_point(10, "trace_error_ratio", 0.5)).assessment
    assert (jump.state, jump.component) == ("prior", "prior/ratio")
    assert jump.score > 0.99
    # Once the detector is warm, the prior is gone (no state) and the detector speaks.
    for i in range(11, 130):
        last = bank.update_one(_point(i, "trace_error_ratio", 0.0)).assessment
    assert last.state != "warming"
    assert "trace_error_ratio" not in bank._priors


def test_a_bank_without_priors_stays_silent_during_warm_up() -> None:
    bank = DetectorBank(priors={})
    for i in range(10):
        bank.update_one(_point(i, "trace_error_ratio", 0.0))
    assert bank.update_one(_point(10, "trace_error_ratio", 0.5)).assessment.score == 0.0


def test_signals_without_a_kind_get_no_prior() -> None:
    bank = DetectorBank()
    bank.update_one(_point(0, "request_rate", 5.0))
    assert bank._priors == {}
