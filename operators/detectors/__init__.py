"""Detectors: per-series online anomaly scorers, and what turns their scores into decisions.

The contract (`airis.operators.base.SeriesDetector`, checked for every class exported here
that implements it by ``tests/operators/detectors/test_detector_contract.py``): ``update_one``
assesses a value against what was learned so far and only then learns it; the assessment's
score is in ``[0, 1]``, high means anomalous, 0 while the detector is warming up (its
``state`` says ``"warming"``); hyper-parameters are same-named attributes with literal
defaults; the state pickles, and a restored copy scores exactly as the original.

- `EnsembleDetector`: the one detector of the metrics flow and of ``airis detect``;
  `EventOnset` wraps it to report an event once, at its onset;
- `DetectorBank`: one service's detectors as rows of one array, scored in batches by the
  compiled kernel (`ensemble_kernel`), with cold-start priors (`ColdStartPrior`);
- `PotThreshold`: a label-free alert threshold at a chosen risk (streaming POT).

A new detector is a module here and its name in the import list below.
"""

from airis.operators.detectors.cold_start import ColdStartPrior
from airis.operators.detectors.detector_bank import DetectorBank, metrics_detector
from airis.operators.detectors.ensemble_detector import EnsembleDetector
from airis.operators.detectors.event_onset import EventOnset
from airis.operators.detectors.pot_threshold import PotThreshold

__all__ = [
    "ColdStartPrior",
    "DetectorBank",
    "EnsembleDetector",
    "EventOnset",
    "PotThreshold",
    "metrics_detector",
]
