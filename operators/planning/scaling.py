"""Scaling recommendations from forecast load, by the Kubernetes HPA rule.

`ScalingAdvisor` turns the upper bound of a utilisation forecast into a recommended replica
count, so that capacity is added before the load arrives rather than after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ScalingAdvisor", "ScalingRecommendation"]


@dataclass(frozen=True, slots=True)
class ScalingRecommendation:
    """Replicas to run for the forecast load, and why.

    ``factor`` is ``desired / current``; ``action`` is ``"scale_up"``, ``"scale_down"`` or
    ``"hold"`` (the load ratio is inside the tolerance band, or at a replica bound).
    """

    current_replicas: int
    desired_replicas: int
    factor: float
    metric: float
    target: float
    action: str


@dataclass(frozen=True)
class ScalingAdvisor:
    """The Horizontal Pod Autoscaler's rule, applied to forecast load instead of current load.

    ``desired = ceil(current * metric / target)``, where ``metric`` is the per-replica
    utilisation expected over the next horizon (take the forecast's *upper* bound: a
    recommendation should survive the load the interval allows) and ``target`` the
    utilisation each replica should run at. As in the HPA, nothing changes while
    ``|metric / target - 1| <= tolerance`` (no flapping on noise), and the result is kept
    within ``[min_replicas, max_replicas]``. Scaling down is limited to
    ``max_scale_down`` of the current replicas per recommendation (a forecast dip must not
    halve a service at once).

    Parameters
    ----------
    target
        Utilisation per replica to aim for (same unit as the metric, e.g. 70 % cpu).
    tolerance
        Relative band around the target inside which the replicas are held.
    min_replicas
        Fewest replicas ever recommended.
    max_replicas
        Most replicas ever recommended.
    max_scale_down
        Largest fraction of the current replicas removed by one recommendation.

    Examples
    --------
    >>> advisor = ScalingAdvisor(target=70.0)
    >>> advisor.recommend(4, 91.0)  # 4 * 91 / 70 = 5.2 → 6
    ScalingRecommendation(current_replicas=4, desired_replicas=6, factor=1.5, metric=91.0,
                          target=70.0, action='scale_up')
    >>> advisor.recommend(4, 73.0).action  # within 10 % of the target
    'hold'
    >>> advisor.recommend(10, 14.0).desired_replicas  # 2 by the rule, at most half removed
    5

    References
    ----------
    [^1]: Kubernetes documentation, "Horizontal Pod Autoscaling", algorithm details.
    """

    target: float = 70.0
    tolerance: float = 0.1
    min_replicas: int = 1
    max_replicas: int = 100
    max_scale_down: float = 0.5

    def __post_init__(self) -> None:
        if not self.target > 0:
            raise ValueError(f"ScalingAdvisor: target must be > 0, got {self.target}")
        if not 0 <= self.tolerance < 1:
            raise ValueError(f"ScalingAdvisor: tolerance must be in [0, 1), got {self.tolerance}")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError("ScalingAdvisor: need 1 <= min_replicas <= max_replicas")
        if not 0 <= self.max_scale_down <= 1:
            raise ValueError("ScalingAdvisor: max_scale_down must be in [0, 1]")

    def recommend(self, current_replicas: int, metric: float) -> ScalingRecommendation:
        """The replicas for per-replica utilisation ``metric`` on ``current_replicas``."""
        if current_replicas < 1:
            raise ValueError(f"ScalingAdvisor: current_replicas must be >= 1: {current_replicas}")
        ratio = metric / self.target if math.isfinite(metric) else 1.0
        if abs(ratio - 1.0) <= self.tolerance:
            desired = current_replicas
        else:
            desired = math.ceil(current_replicas * ratio - 1e-9)
            floor = math.ceil(current_replicas * (1 - self.max_scale_down) - 1e-9)
            desired = max(desired, floor)
        desired = min(max(desired, self.min_replicas), self.max_replicas)
        if desired > current_replicas:
            action = "scale_up"
        elif desired < current_replicas:
            action = "scale_down"
        else:
            action = "hold"
        return ScalingRecommendation(
            current_replicas=current_replicas,
            desired_replicas=desired,
            factor=desired / current_replicas,
            metric=metric,
            target=self.target,
            action=action,
        )
