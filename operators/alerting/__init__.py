"""Alerting: the decision to page, from closed service windows.

The contract: `AlertManager.update_one` takes one `ServiceWindow` and returns the `Alert`\\ s it
opens, updates or resolves — with hysteresis (open after consecutive anomalous windows,
resolve after consecutive normal ones) and flap suppression, so one problem is one alert.
`AlertManager.update_warning` does the same for the capacity planner's exhaustion warnings:
one alert per episode, updated when the expected crossing moves earlier.
"""

from airis.operators.alerting.alert_manager import AlertManager

__all__ = ["AlertManager"]
