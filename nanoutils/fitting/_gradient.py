"""Eq. 11 by a gradient method: trust-region Gauss–Newton (``scipy.optimize.least_squares``, "trf") on
the normalised residuals, with their exact Jacobian from the implicit-differentiation sensitivities of
the DSPM-DE (:func:`nanoutils.dspmde.sensitivities`), in the transformed coordinates θ of :class:`Space`."""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
from scipy.optimize import least_squares

from .. import dspmde
from ..measurements import Measurements
from ._fit import FitResult
from ._objective import Objective
from ._space import _LINEAR_SCALE, LOG_SCALE, PARAMETERS, PENALTY_R, FitError, Space, Spec, membrane


def residual_jacobian(obj: Objective, params: Mapping[str, float], space: Space) -> tuple[np.ndarray, np.ndarray, int]:
    """Normalised residuals r (n,) of eq. 11 for Z = ``params`` (as :meth:`Objective.residuals`), their
    Jacobian ∂r/∂θ (n, 4) in the coordinates of ``space`` and the number of measurements whose case did
    not converge (their residual is the constant penalty, their Jacobian row 0)."""
    a, mem = obj.arrays, membrane(params)
    d, q = len(a.species), len(PARAMETERS)
    c_perm, d_perm = np.full(a.Jv.shape + (d,), np.nan), np.full(a.Jv.shape + (d, q), np.nan)
    for idx, union, where, T, k in obj.groups:
        m = len(union)
        res = dspmde.sensitivities(
            np.repeat(a.c_feed[idx], m, axis=0),
            np.tile(union, len(idx)),
            mem,
            a.species,
            X=np.full(len(idx) * m, mem.X_d),
            film=None if k is None else dspmde.Film(k=k),
            n_cells=obj.n_cells,
            temperature=T,
        )
        rows = np.arange(len(idx))[:, None]
        c_perm[idx] = res.permeate.reshape(len(idx), m, d)[rows, where]
        d_perm[idx] = res.d_permeate[..., :q].reshape(len(idx), m, d, q)[rows, where]
    r = a.normalized_residuals(a.model_rejection(c_perm))
    # the rejection is affine in the permeate: its derivative along dc is model_rejection(dc) − 1
    d_rej = np.stack([a.model_rejection(d_perm[..., j]) - 1.0 for j in range(q)], axis=-1)
    jac = (d_rej / a.sigma_R[..., None])[a.mask]
    bad = ~np.isfinite(r) | ~np.isfinite(jac).all(axis=1)
    r[bad] = PENALTY_R / a.sigma_R[a.mask][bad]
    jac[bad] = 0.0
    dp_dtheta = np.array([params[n] if LOG_SCALE[n] else _LINEAR_SCALE.get(n, 1.0) for n in space.names])
    return r, jac * dp_dtheta, int(bad.sum())


def fit_gradient(
    meas: Measurements,
    *,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    start: Mapping[str, float] | None = None,
    seed: int = 0,
    n_starts: int = 1,
    n_cells: int = 20,
    max_nfev: int = 100,
    objective: Objective | None = None,
) -> FitResult:
    """Fit Z = {r_p, Δx_e, ε_p, X_d} (constant charge, ideal activities) to ``meas`` by eq. 11 with a
    trust-region Gauss–Newton method and exact residual Jacobians, from ``start`` (default: the random
    point in the bounds that :func:`fit` draws with the same ``seed``), at most ``max_nfev`` evaluations
    (one DSPM-DE solve plus one linear solve per case each). The method is local and eq. 11 can have
    several minima: ``n_starts`` > 1 adds random starts (drawn with ``seed``) and keeps the best.
    Standard errors as :func:`uncertainty`: cov = s² (JᵀJ)⁻¹ in θ with s² = max(1, χ²/(n − p)), from the
    Jacobian at the optimum. ``objective``: an :class:`Objective` of ``meas`` to evaluate with, whose trace then
    continues (:func:`fit`'s annealing stage passes its own); default a new one with ``n_cells``."""
    t0 = time.perf_counter()
    if int(n_starts) < 1:
        raise FitError(f"n_starts must be ≥ 1, got {n_starts!r}")
    space = Space(bounds, PARAMETERS)
    obj = Objective(meas, n_cells=n_cells) if objective is None else objective
    rng = np.random.default_rng(seed)
    starts = rng.uniform(0.0, 1.0, (int(n_starts), len(PARAMETERS)))  # the first is fit's random start
    if start is not None:
        starts[0] = space.to_unit(start)
    last: dict[bytes, tuple[np.ndarray, np.ndarray, int]] = {}

    def evaluate(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        key = np.asarray(theta, dtype=float).tobytes()
        if key not in last:
            last.clear()
            last[key] = out = residual_jacobian(obj, space.params(theta), space)
            obj.trace.append((obj.phase, float(out[0] @ out[0]), out[2]))
        return last[key]

    obj.phase = "gauss-newton"
    lo, hi = space.lo, space.lo + space.span
    sol = min(
        (
            least_squares(
                lambda t: evaluate(t)[0],
                lo + u * space.span,
                jac=lambda t: evaluate(t)[1],
                bounds=(lo, hi),
                method="trf",
                max_nfev=int(max_nfev),
            )
            for u in starts
        ),
        key=lambda res: res.cost,
    )
    params = space.params(sol.x)
    r, jac, n_bad = evaluate(sol.x)
    chi2 = float(r @ r)
    cov = max(1.0, chi2 / max(len(r) - len(PARAMETERS), 1)) * np.linalg.pinv(jac.T @ jac)
    sd = np.sqrt(np.diag(cov))
    stderr = {
        n: float(params[n] * s) if LOG_SCALE[n] else float(_LINEAR_SCALE.get(n, 1.0) * s)
        for n, s in zip(space.names, sd, strict=True)
    }
    return FitResult(
        params,
        stderr,
        cov,
        chi2,
        obj.n_points,
        n_bad,
        obj.trace_frame(),
        space.from_unit(starts[0]),
        time.perf_counter() - t0,
        space.bounds,
        Spec(),
    )
