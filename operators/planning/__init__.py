"""Planning: forecasts with intervals, resource exhaustion warnings and replica advice.

The contract: learning is strictly causal (a forecast uses values up to the latest learned
one only) and a forecast says whether it is ``ready``; `ServicePlanner.update_one` takes one
window's values of a service and returns what they produced (forecasts, warnings, advice).
"""

from airis.operators.planning.capacity import ExhaustionPredictor, ExhaustionWarning
from airis.operators.planning.forecaster import Forecast, IntervalForecaster
from airis.operators.planning.scaling import ScalingAdvisor, ScalingRecommendation
from airis.operators.planning.service_planner import Plan, ServicePlanner

__all__ = [
    "ExhaustionPredictor",
    "ExhaustionWarning",
    "Forecast",
    "IntervalForecaster",
    "Plan",
    "ScalingAdvisor",
    "ScalingRecommendation",
    "ServicePlanner",
]
