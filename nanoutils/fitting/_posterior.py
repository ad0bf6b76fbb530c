"""What a fit does not pin down: Laplace posterior-predictive ensembles and multi-start optima.

With few feeds, fits of nearly equal quality can sit at very different parameters and predict a new
feed very differently. Two ways to carry that into a prediction, both as a list of member models
(each with ``solve``) whose spread is the prediction's uncertainty:

- :func:`laplace_ensemble`: draws θ ~ N(θ̂, Σ) in the fit's transformed coordinates θ
  (:meth:`Space.theta`; Σ the Gauss–Newton covariance of :func:`uncertainty`, prior residuals
  included), clipped to the bounds;
- :func:`multistart`: the optima of fits from several starts whose objective lies within Δχ² of
  the best, Δχ² = s² χ²₀.₉₅(p) by default (p parameters, s² = max(1, χ²_best/(n − p)) the same
  inflation as Σ).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import chi2 as chi2_dist

from ..measurements import Measurements
from ._fit import FitResult
from ._space import FitError, Model, Space


def laplace_draws(
    theta: np.ndarray,
    cov: np.ndarray,
    to_model: Callable[[np.ndarray], Any],
    seed: int,
    lo: np.ndarray,
    hi: np.ndarray,
    fixed: Sequence[int] = (),
    n: int = 16,
) -> list:
    """``n`` models ``to_model(θ_k)`` with θ_k ~ N(θ, cov), seeded, clipped to the box [lo, hi] the fit searched
    (a poorly identified parameter spans its bounds instead of leaving them); coordinates ``fixed`` stay at θ.
    A covariance that is not positive semi-definite (numerical noise of the Gauss–Newton inverse) has its
    negative eigenvalues set to 0. Works for any fit with a parameter vector (DSPM-DE, SF, SDEM)."""
    cov = np.nan_to_num(np.asarray(cov, float))
    keep = np.setdiff1d(np.arange(len(theta)), np.asarray(fixed, int))
    sub = 0.5 * (cov[np.ix_(keep, keep)] + cov[np.ix_(keep, keep)].T)
    w, v = np.linalg.eigh(sub)
    z = np.random.default_rng(seed).standard_normal((n, len(keep)))
    draws = np.tile(np.asarray(theta, float), (n, 1))
    draws[:, keep] += (z * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    return [to_model(t) for t in np.clip(draws, lo, hi)]


def laplace_ensemble(result: FitResult, n_draws: int = 16, *, seed: int = 0) -> list[Model]:
    """``n_draws`` models with parameters drawn from the Laplace approximation N(θ̂, Σ) of ``result``
    (needs its covariance: ``fit(with_uncertainty=True)``), clipped to the fit's bounds."""
    if n_draws < 2:
        raise FitError(f"an ensemble needs n_draws ≥ 2, got {n_draws!r}")
    if not np.isfinite(result.covariance).all():
        raise FitError("the fit has no covariance (fit with with_uncertainty=True)")
    return fit_draws(result, n_draws, seed)


def fit_draws(result: FitResult, n: int, seed: int, *, hold_at_bounds: bool = False) -> list[Model]:
    """:func:`laplace_draws` of a DSPM-DE fit in its θ coordinates, clipped to its bounds, without
    :func:`laplace_ensemble`'s checks; ``hold_at_bounds`` keeps the parameters that ended at a bound there."""
    space = Space(result.bounds, result.names)
    fixed = [result.names.index(name) for name in result.at_bounds] if hold_at_bounds else ()
    return laplace_draws(
        space.theta(result.params),
        result.covariance,
        lambda t: result.spec.model(space.params(t)),
        seed,
        space.lo,
        space.lo + space.span,
        fixed,
        n=n,
    )


def delta_chi2(result: FitResult, level: float = 0.95) -> float:
    """Default Δχ² of :func:`multistart` for ``result``: s² χ²_level(p)."""
    p = len(result.names)
    s2 = max(1.0, result.chi2 / max(result.n_points - p, 1))
    return float(s2 * chi2_dist.ppf(level, p))


def multistart(
    meas: Measurements,
    fit_one: Callable[[Measurements, int], FitResult],
    seeds: Sequence[int],
    *,
    delta: float | None = None,
) -> list[FitResult]:
    """Fits ``fit_one(meas, seed)`` for every seed; those within ``delta`` (default :func:`delta_chi2` of
    the best) of the lowest objective, best first. Their ``.model`` s form an ensemble."""
    results = sorted((fit_one(meas, int(s)) for s in seeds), key=lambda r: r.chi2)
    if not results:
        raise FitError("multistart needs at least one seed")
    cut = results[0].chi2 + (delta_chi2(results[0]) if delta is None else float(delta))
    return [r for r in results if r.chi2 <= cut]
