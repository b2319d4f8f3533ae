"""Constants of the Gaussian that robust scale estimates are converted with.

A robust spread (the mean or the median absolute deviation) times its constant here is the
standard deviation it corresponds to when the data are Gaussian.

>>> round(MEDIAN_AD_TO_SIGMA * 0.6745, 3), round(MEAN_AD_TO_SIGMA * 0.7979, 3)
(1.0, 1.0)
"""

from __future__ import annotations

import math

__all__ = ["MEAN_AD_TO_SIGMA", "MEDIAN_AD_TO_SIGMA"]

#: A Gaussian's standard deviation per mean absolute deviation: sqrt(pi / 2).
MEAN_AD_TO_SIGMA = math.sqrt(math.pi / 2)
#: A Gaussian's standard deviation per median absolute deviation: 1 / Phi^-1(3/4).
MEDIAN_AD_TO_SIGMA = 1.4826
