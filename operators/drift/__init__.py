"""Drift: whether a model's input still looks like its training data.

The contract (River's drift detectors'): ``update_batch`` takes live feature rows and returns a
`DriftReport` for each window they complete (per-feature two-sample Kolmogorov–Smirnov tests
against the reference, Holm-corrected); the read-only ``drift_detected`` says whether the last
completed window drifted.
"""

from airis.operators.drift.ks_drift import DriftReport, KSDrift

__all__ = ["DriftReport", "KSDrift"]
