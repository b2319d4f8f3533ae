"""`ScalingAdvisor`: the HPA rule on forecast load, with tolerance, bounds and damping."""

from __future__ import annotations

import math

import pytest

from airis.operators.planning.scaling import ScalingAdvisor


@pytest.mark.parametrize(
    ("current", "metric", "desired", "action"),
    [
        (4, 91.0, 6, "scale_up"),  # ceil(4 * 1.3) = 6
        (4, 140.0, 8, "scale_up"),
        (3, 70.0, 3, "hold"),
        (3, 76.9, 3, "hold"),  # inside the 10 % band
        (3, 63.1, 3, "hold"),
        (10, 35.0, 5, "scale_down"),  # ceil(10 * 0.5) = 5
        (10, 14.0, 5, "scale_down"),  # 2 by the rule; at most half removed
        (1, 10.0, 1, "hold"),  # min_replicas
    ],
)
def test_hpa_rule(current: int, metric: float, desired: int, action: str) -> None:
    rec = ScalingAdvisor(target=70.0).recommend(current, metric)
    assert (rec.desired_replicas, rec.action) == (desired, action)
    assert rec.factor == pytest.approx(desired / current)
    assert rec.current_replicas == current and rec.target == 70.0


def test_bounds_and_non_finite_metric() -> None:
    advisor = ScalingAdvisor(target=50.0, max_replicas=5)
    assert advisor.recommend(4, 400.0).desired_replicas == 5
    assert advisor.recommend(4, math.nan).action == "hold"


def test_an_exact_multiple_is_not_rounded_up() -> None:
    assert ScalingAdvisor(target=50.0, tolerance=0.0).recommend(3, 100.0).desired_replicas == 6


@pytest.mark.parametrize(
    "kwargs", [{"target": 0}, {"tolerance": 1.0}, {"min_replicas": 0}, {"max_scale_down": 2}]
)
def test_rejects_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="ScalingAdvisor"):
        ScalingAdvisor(**kwargs)


def test_rejects_no_replicas() -> None:
    with pytest.raises(ValueError, match="current_replicas"):
        ScalingAdvisor().recommend(0, 50.0)
