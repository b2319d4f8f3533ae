"""Feature drift of live windows against a model's training reference (two-sample KS)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DriftReport", "KSDrift"]


@dataclass(frozen=True)
class DriftReport:
    """The result of one window's test; feature-keyed dicts follow ``feature_names`` order.

    ``p_values`` are the raw per-feature KS p-values, ``adjusted_p_values`` the same after
    Holm's correction; a feature has drifted when its adjusted p-value is at most the
    detector's ``p_threshold``. A feature without finite values on either side has p-value
    NaN and never drifts.
    """

    p_values: dict[str, float]
    statistic: dict[str, float]
    adjusted_p_values: dict[str, float]
    drifted: tuple[str, ...]
    #: The smallest raw p-value (NaN when no feature could be tested).
    min_p: float
    #: Live rows in the window.
    rows: int

    @property
    def drift(self) -> bool:
        """True when at least one feature drifted."""
        return bool(self.drifted)


class KSDrift:
    """Per-feature two-sample Kolmogorov–Smirnov test of live windows against a reference.

    Live rows (one row = one model input, columns = ``feature_names``) fill a window of
    ``window`` rows. When it is full, every feature's live values are compared with the same
    feature's values in ``reference`` (the training rows) by `scipy.stats.ks_2samp`, the
    result is returned as a `DriftReport`, and a new window starts. Non-finite values are
    left out of the test of their feature.

    **Multiple testing.** A model with 38 features tests 38 hypotheses per window: at 0.01
    each, a window without any drift would still flag a feature about 1 - 0.99**38 = 32 % of
    the time. The p-values are therefore corrected with Holm's step-down method, which keeps
    the family-wise error rate (the chance that a drift-free window flags anything) at most
    ``p_threshold`` under any dependence between the features, like Bonferroni, but rejects
    at least as much: sorted ascending, the k-th smallest p-value (k from 0) is compared with
    ``p_threshold / (m - k)`` until one fails.

    `update_batch` returns None until a window completes. `drift_detected` is True after a
    call in which a completed window drifted, and False again after the next call. If one
    call completes several windows, each is tested, the last report is returned and
    `drift_detected` is True if any of them drifted: pass batches smaller than ``window`` to
    see every report. The state (the reference and a bounded buffer) pickles.

    Parameters
    ----------
    reference
        Training feature rows, shape (n, len(feature_names)); copied.
    feature_names
        Column names, used as the keys of the reports.
    window
        Live rows per test.
    p_threshold
        Family-wise significance level of one window's test (after Holm's correction).
    min_rows
        Fewest rows `flush` tests (a shorter partial window is dropped); ``reference`` must
        have at least this many rows too.

    Examples
    --------
    >>> rng = np.random.default_rng(42)
    >>> names = [f"f{i}" for i in range(38)]
    >>> drift = KSDrift(rng.normal(size=(5000, 38)), names, window=500)
    >>> drift.update_batch(rng.normal(size=(300, 38))) is None  # window not full yet
    True
    >>> report = drift.update_batch(rng.normal(size=(200, 38)))
    >>> report.rows, report.drifted, drift.drift_detected
    (500, (), False)
    >>> shifted = rng.normal(size=(500, 38))
    >>> shifted[:, 3] += 0.5  # half a standard deviation
    >>> report = drift.update_batch(shifted)
    >>> report.drifted, drift.drift_detected
    (('f3',), True)
    >>> report.adjusted_p_values["f3"] < 0.01
    True

    References
    ----------
    [^1]: Holm, S. (1979). A simple sequentially rejective multiple test procedure.
    Scandinavian Journal of Statistics, 6(2), 65–70.
    [^2]: Rabanser, S., Günnemann, S., Lipton, Z. (2019). Failing loudly: an empirical study
    of methods for detecting dataset shift. NeurIPS (univariate KS tests with a
    correction, the strongest simple baseline there).
    """

    def __init__(
        self,
        reference: np.ndarray,
        feature_names: Sequence[str],
        *,
        window: int = 2000,
        p_threshold: float = 0.01,
        min_rows: int = 50,
    ) -> None:
        # scipy.stats costs 0.35 s to import: paid here, where a model is loaded, rather than
        # at the first test in the middle of a stream, or by every process that imports us.
        import scipy.stats  # noqa: F401

        self.reference = np.array(reference, dtype=np.float64, order="C")
        # ks_2samp omits NaN but would rank ±inf as values: make every non-finite value NaN.
        self.reference[~np.isfinite(self.reference)] = np.nan
        self.feature_names = tuple(feature_names)
        self.window = window
        self.p_threshold = p_threshold
        self.min_rows = min_rows
        width = len(self.feature_names)
        if self.reference.ndim != 2 or self.reference.shape[1] != width:
            raise ValueError(
                f"KSDrift: reference must have shape (n, {width}) for {width} feature names, "
                f"got {self.reference.shape}"
            )
        if len(set(self.feature_names)) != width or width == 0:
            raise ValueError("KSDrift: feature_names must be unique and not empty")
        if not 2 <= min_rows <= window:
            raise ValueError(f"KSDrift: need 2 <= min_rows <= window, got {min_rows}, {window}")
        if self.reference.shape[0] < min_rows:
            raise ValueError(
                f"KSDrift: reference has {self.reference.shape[0]} rows, fewer than "
                f"min_rows={min_rows}"
            )
        if not 0 < p_threshold < 1:
            raise ValueError(f"KSDrift: p_threshold must be in (0, 1), got {p_threshold}")
        self._buffer = np.empty((window, width), dtype=np.float64)
        self._filled = 0
        self._drift_detected = False

    def __repr__(self) -> str:
        return (
            f"KSDrift(reference={self.reference.shape}, features={len(self.feature_names)}, "
            f"window={self.window}, p_threshold={self.p_threshold}, min_rows={self.min_rows})"
        )

    @property
    def drift_detected(self) -> bool:
        """True when a window completed by the last `update_batch` drifted."""
        return self._drift_detected

    @property
    def pending_rows(self) -> int:
        """Live rows waiting in the current, incomplete window."""
        return self._filled

    def update_batch(self, x: np.ndarray) -> DriftReport | None:
        """Add live rows (shape (n, features), or one row); test each window they complete."""
        rows = np.asarray(x, dtype=np.float64)
        if rows.ndim == 1:
            rows = rows[np.newaxis, :]
        if rows.ndim != 2 or rows.shape[1] != len(self.feature_names):
            raise ValueError(
                f"KSDrift: rows must have {len(self.feature_names)} columns, got {rows.shape}"
            )
        self._drift_detected = False
        report = None
        start = 0
        while start < len(rows):
            take = min(self.window - self._filled, len(rows) - start)
            segment = self._buffer[self._filled : self._filled + take]
            segment[...] = rows[start : start + take]
            segment[~np.isfinite(segment)] = np.nan
            self._filled += take
            start += take
            if self._filled == self.window:
                report = self._test()
        return report

    def flush(self) -> DriftReport | None:
        """Test the partial window now if it has at least ``min_rows`` rows; start a new one."""
        report = self._test() if self._filled >= self.min_rows else None
        self._filled = 0
        return report

    def _test(self) -> DriftReport:
        live = self._buffer[: self._filled]
        statistic = np.full(len(self.feature_names), np.nan)
        p_values = np.full(len(self.feature_names), np.nan)
        testable = np.isfinite(live).any(axis=0) & np.isfinite(self.reference).any(axis=0)
        if testable.any():
            from scipy.stats import ks_2samp  # imported by __init__ already: a lookup

            result = ks_2samp(
                self.reference[:, testable], live[:, testable], axis=0, nan_policy="omit"
            )
            statistic[testable] = result.statistic
            p_values[testable] = result.pvalue
        adjusted = _holm(p_values)
        drifted = adjusted <= self.p_threshold  # NaN compares False: never drifts
        report = DriftReport(
            p_values=dict(zip(self.feature_names, p_values.tolist(), strict=True)),
            statistic=dict(zip(self.feature_names, statistic.tolist(), strict=True)),
            adjusted_p_values=dict(zip(self.feature_names, adjusted.tolist(), strict=True)),
            drifted=tuple(n for n, d in zip(self.feature_names, drifted, strict=True) if d),
            min_p=float(np.nanmin(p_values)) if testable.any() else float("nan"),
            rows=self._filled,
        )
        self._drift_detected = self._drift_detected or report.drift
        self._filled = 0
        return report


def _holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (NaN stays NaN and does not count as a test)."""
    adjusted = np.full_like(p_values, np.nan)
    tested = np.flatnonzero(np.isfinite(p_values))
    if tested.size == 0:
        return adjusted
    order = tested[np.argsort(p_values[tested], kind="stable")]
    factors = np.arange(tested.size, 0, -1)  # m, m-1, ..., 1
    stepped = np.maximum.accumulate(np.minimum(1.0, factors * p_values[order]))
    adjusted[order] = stepped
    return adjusted
