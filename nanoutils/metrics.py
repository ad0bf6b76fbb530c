"""The test error of Table 1, defined once and used for every model.

Primary figure: the mean absolute rejection error over all test (ion × flux)
points, in percentage points (pp): ``100 · mean |R_pred − R_meas|``. Secondary:
the mean relative permeate-concentration error ``mean |c_pred − c_meas| / c_meas``
where permeate concentrations are known. Both come with a bootstrap confidence
interval over *feeds* (whole feeds are resampled, since flux points of one
feed are not independent), and broken down per ion, per feed and per study
(:func:`rejection_error_by` for any other grouping).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

REQUIRED = ("feed_id", "ion", "R_meas", "R_pred")


@dataclass(frozen=True)
class Score:
    """A test error: ``value`` with its bootstrap interval ``ci`` (same units), over ``n_points`` and ``n_feeds``;
    the same mean per ion, per feed (``feed_id``) and per study (empty without a ``study`` column)."""

    value: float
    ci: tuple[float, float]
    n_points: int
    n_feeds: int
    per_ion: pd.Series = field(repr=False)
    per_study: pd.Series = field(repr=False)
    per_feed: pd.Series = field(repr=False)

    def __str__(self) -> str:
        return (
            f"{self.value:.2f} [{self.ci[0]:.2f}, {self.ci[1]:.2f}] (n = {self.n_points} points, {self.n_feeds} feeds)"
        )


def _check(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"test-error frame lacks column(s) {missing}; it has {list(frame.columns)}")
    values = frame[list(columns[2:])]
    bad = values.isna().any(axis=1).to_numpy() | ~np.asarray(np.isfinite(values)).all(axis=1)
    if bad.any():
        row = frame.index[bad][0]
        raise ValueError(f"non-finite value in row {row}: {frame.loc[row, list(columns)].to_dict()}")
    if frame.empty:
        raise ValueError("test-error frame is empty")
    return frame


def _bootstrap(errors: pd.Series, feeds: pd.Series, n_boot: int, level: float, seed: int) -> tuple[float, float]:
    """Percentile interval of the pooled mean when whole feeds are resampled with replacement."""
    grouped = errors.groupby(feeds.to_numpy())
    sums, counts = grouped.sum().to_numpy(), grouped.count().to_numpy()
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(sums), size=(n_boot, len(sums)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _score(errors: pd.Series, frame: pd.DataFrame, n_boot: int, level: float, seed: int) -> Score:
    per_study = errors.groupby(frame["study"]).mean() if "study" in frame else pd.Series(dtype=float)
    return Score(
        value=float(errors.mean()),
        ci=_bootstrap(errors, frame["feed_id"], n_boot, level, seed),
        n_points=len(errors),
        n_feeds=frame["feed_id"].nunique(),
        per_ion=errors.groupby(frame["ion"]).mean(),
        per_study=per_study,
        per_feed=errors.groupby(frame["feed_id"]).mean(),
    )


def rejection_error(frame: pd.DataFrame, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Score:
    """Mean absolute rejection error in percentage points over all rows (ion × flux points).

    ``frame`` has one row per test point with columns ``feed_id``, ``ion``,
    ``R_meas``, ``R_pred`` (rejections as fractions) and optionally ``study``.
    """
    frame = _check(frame, REQUIRED)
    return _score(_rejection_errors(frame), frame, n_boot, level, seed)


def rejection_error_by(frame: pd.DataFrame, by: str | list[str]) -> pd.Series:
    """The mean absolute rejection error (pp) of :func:`rejection_error` per group of the column(s) ``by``
    (e.g. ``["feed_id", "ion"]``), without intervals."""
    frame = _check(frame, REQUIRED)
    return _rejection_errors(frame).groupby([frame[c] for c in ([by] if isinstance(by, str) else by)]).mean()


def _rejection_errors(frame: pd.DataFrame) -> pd.Series:
    return 100.0 * (frame["R_pred"] - frame["R_meas"]).abs()


def permeate_error(frame: pd.DataFrame, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Score:
    """Mean relative permeate-concentration error |c_pred − c_meas| / c_meas, in percent.

    Needs columns ``feed_id``, ``ion``, ``c_meas``, ``c_pred`` (mol/m³, c_meas > 0).
    """
    frame = _check(frame, ("feed_id", "ion", "c_meas", "c_pred"))
    if (frame["c_meas"] <= 0).any():
        row = frame.index[(frame["c_meas"] <= 0).to_numpy()][0]
        raise ValueError(f"c_meas must be > 0 for a relative error; row {row} has {frame.loc[row, 'c_meas']}")
    errors = 100.0 * (frame["c_pred"] - frame["c_meas"]).abs() / frame["c_meas"]
    return _score(errors, frame, n_boot, level, seed)
