"""The fit itself: dual annealing then Nelder–Mead on eq. 11, standard errors, and Table 2."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import pandas as pd
from scipy.optimize import dual_annealing, least_squares, minimize

from .. import dspmde
from ..measurements import Measurements
from ._objective import Objective
from ._space import (
    _LINEAR_SCALE,
    BOUNDS,
    ISOTHERM_START,
    LOG_SCALE,
    PAPER_TABLE2,
    PARAMETERS,
    UNITS,
    FitError,
    Model,
    Space,
    Spec,
    _family,
    membrane,
)


@dataclass(frozen=True)
class FitResult:
    """A fitted Z (and isotherm parameters, see :class:`Spec`): ``params`` (SI), standard errors ``stderr``
    (SI, from the Gauss–Newton Hessian scaled by the reduced χ²), ``covariance`` of θ (:meth:`Space.theta`:
    ln r_p, ln Δx_e, ln ε_p, X_d/100[, n | ln Γ, ln K_i][, ΔW_i]), ``chi2`` (eq. 11, plus the prior residuals
    of a fit with ΔW), ``n_points``, ``trace`` (every evaluation), ``n_unconverged`` at the optimum, ``start``,
    ``wall_s``, ``bounds`` and the ``spec``."""

    params: dict[str, float]
    stderr: dict[str, float]
    covariance: np.ndarray
    chi2: float
    n_points: int
    n_unconverged: int
    trace: pd.DataFrame
    start: dict[str, float]
    wall_s: float
    bounds: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(BOUNDS))
    spec: Spec = field(default_factory=Spec)

    @property
    def names(self) -> tuple[str, ...]:
        return self.spec.names

    @property
    def at_bounds(self) -> tuple[str, ...]:
        """Parameters that ended within 0.1 % (of the transformed range) of a bound: their standard
        errors are not meaningful and the data would pull them further out."""
        u = Space(self.bounds, self.names).to_unit_clipped(self.params)
        return tuple(n for n, v in zip(self.names, u, strict=True) if v < 1e-3 or v > 1 - 1e-3)

    @property
    def membrane(self) -> dspmde.Membrane:
        return membrane(self.params)

    @property
    def model(self) -> Model:
        """The fitted DSPM-DE with its isotherm and temperature model (use it for predictions)."""
        return self.spec.model(self.params)

    @property
    def reduced_chi2(self) -> float:
        return self.chi2 / max(self.n_points - len(self.names), 1)

    @property
    def correlation(self) -> np.ndarray:
        s = np.sqrt(np.diag(self.covariance))
        return self.covariance / np.outer(s, s)

    def table(self) -> pd.DataFrame:
        """Fitted values and standard errors in display units (nm, µm, –, mol/m³, m³/mol) beside Table 2."""
        units = {n: UNITS[_family(n)] for n in self.names}
        return pd.DataFrame(
            [
                {
                    "parameter": n,
                    "unit": unit,
                    "fitted": self.params[n] * scale,
                    "stderr": self.stderr[n] * scale,
                    "at bound": n in self.at_bounds,
                    "paper Table 2": PAPER_TABLE2.get(n, np.nan) * scale,
                }
                for n, (unit, scale) in units.items()
            ]
        ).set_index("parameter")


def uncertainty(
    objective: Objective, params: Mapping[str, float], space: Space, step: float = 1e-3, spec: Spec | None = None
) -> tuple[np.ndarray, dict[str, float]]:
    """Covariance of θ from central-difference residual Jacobians (the prior residuals of ``spec``
    included), cov = s² (JᵀJ)⁻¹ with s² = max(1, χ²/(n − p)) (inflated when the model does not fit to
    within σ), and standard errors of the physical parameters by the delta method. ``spec`` (default
    :class:`Spec`) builds the model."""
    spec = spec or Spec()

    def residuals(p: Mapping[str, float]) -> np.ndarray:
        return np.concatenate([objective.residuals(spec.model(p))[0], spec.prior_residuals(p)])

    theta = space.theta(params)
    cols = []
    for i in range(len(theta)):
        plus, minus = theta.copy(), theta.copy()
        plus[i] += step
        minus[i] -= step
        cols.append((residuals(space.params(plus)) - residuals(space.params(minus))) / (2 * step))
    jac = np.stack(cols, axis=1)
    r = residuals(params)
    s2 = max(1.0, float(r @ r) / max(objective.n_points - len(theta), 1))
    cov = s2 * np.linalg.pinv(jac.T @ jac)
    sd = np.sqrt(np.diag(cov))
    stderr = {
        n: float(params[n] * s) if LOG_SCALE[_family(n)] else float(_LINEAR_SCALE.get(n, 1.0) * s)
        for n, s in zip(space.names, sd, strict=True)
    }
    return cov, stderr


#: Local searches after the annealing (see :func:`fit`).
LOCAL_METHODS = ("nelder-mead", "least-squares", "gradient")
_JAC_STEP = 1e-3  # forward-difference step in the unit box (well above the solver's tolerance)


def _forward_jacobian(residuals, u: np.ndarray) -> np.ndarray:
    """Forward differences of ``residuals`` at ``u`` in the unit box, stepping inwards at the upper bound."""
    r0 = residuals(u)
    cols = []
    for i in range(len(u)):
        h = _JAC_STEP if u[i] + _JAC_STEP <= 1.0 else -_JAC_STEP
        v = u.copy()
        v[i] += h
        cols.append((residuals(v) - r0) / h)
    return np.stack(cols, axis=1)


def fit(
    meas: Measurements,
    *,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    start: Mapping[str, float] | None = None,
    seed: int = 0,
    anneal_maxiter: int = 40,
    nm_maxiter: int = 400,
    activity: str | None = None,
    n_cells: int = 20,
    with_uncertainty: bool = True,
    isotherm: str = "constant",
    binding_ions: tuple[str, ...] = (),
    temperature_model: str = "none",
    partition_ions: tuple[str, ...] = (),
    prior_width: float = 1.0,
    local: str = "nelder-mead",
) -> FitResult:
    """Fit Z to ``meas`` by eq. 11: dual annealing (``anneal_maxiter`` iterations of 2 evaluations per
    parameter, seeded; 0 skips it) from ``start`` (default: a random point inside the bounds drawn with
    ``seed``), then bounded Nelder–Mead (``nm_maxiter`` iterations) from the best point found.

    ``isotherm`` (``"constant"``, ``"freundlich"`` or ``"langmuir"`` with ``binding_ions``) adds the charge
    isotherm's parameters (:class:`Spec`; bounds :data:`ISOTHERM_BOUNDS`, overridable by name in ``bounds``,
    e.g. ``"K[Mg2+]"``); a ``start`` with Z only takes :data:`ISOTHERM_START` for them. ``temperature_model``
    goes to :func:`dspmde.solve` (``"stokes_einstein"`` for data away from 25 °C). ``partition_ions`` adds
    a partition energy ΔW (k_B T) per ion with the Gaussian prior N(0, ``prior_width``²) as extra residuals
    (:class:`Spec`). ``local`` is the local search after annealing: ``"nelder-mead"`` (``nm_maxiter``
    iterations), ``"least-squares"`` (trust-region reflective on the residuals with a forward-difference
    Jacobian, ``nm_maxiter`` Jacobians at most; fewer evaluations when there are many parameters) or
    ``"gradient"`` (:func:`fit_gradient`'s trust region with exact implicit-differentiation Jacobians, ``nm_maxiter``
    evaluations at most; Z only: constant charge, ideal activities, no temperature model)."""
    t0 = time.perf_counter()
    if local not in LOCAL_METHODS:
        raise FitError(f"unknown local method {local!r}; choose one of {', '.join(LOCAL_METHODS)}")
    spec = Spec(isotherm, binding_ions, temperature_model, partition_ions=partition_ions, prior_width=prior_width)
    if local == "gradient" and (
        spec.names != PARAMETERS or activity not in (None, "ideal") or temperature_model != "none"
    ):
        raise FitError(
            "local='gradient' fits Z alone with ideal activities and no temperature model; got parameters "
            f"{spec.names}, activity {activity!r}, temperature_model {temperature_model!r}"
        )
    space = Space(bounds, spec.names)
    obj = Objective(meas, activity=activity, n_cells=n_cells)
    absent = [i for i in spec.binding_ions + spec.partition_ions if i not in obj.arrays.species]
    if absent:
        raise FitError(
            f"binding or partition ion(s) {', '.join(absent)} occur in no feed of the data "
            f"(species: {', '.join(obj.arrays.species)})"
        )
    if int(anneal_maxiter) < 0 or int(nm_maxiter) < 0:
        raise FitError(f"iteration budgets must be ≥ 0, got anneal_maxiter={anneal_maxiter}, nm_maxiter={nm_maxiter}")
    dim = len(space.names)
    if start is not None:
        start = {**{n: ISOTHERM_START[_family(n)] for n in spec.names[len(PARAMETERS) :]}, **start}
    u0 = space.to_unit(start) if start is not None else np.random.default_rng(seed).uniform(0.0, 1.0, dim)

    def residuals(u: np.ndarray) -> np.ndarray:
        p = space.from_unit(u)
        return obj.traced_residuals(spec.model(p), spec.prior_residuals(p))

    def f(u: np.ndarray) -> float:
        return float(np.sum(residuals(u) ** 2))

    obj.phase = "start"
    best_u, best_f = u0, f(u0)
    if anneal_maxiter:
        obj.phase = "annealing"
        da = dual_annealing(f, [(0.0, 1.0)] * dim, maxiter=int(anneal_maxiter), rng=seed, x0=u0, no_local_search=True)
        if da.fun < best_f:
            best_u, best_f = da.x, da.fun
    if nm_maxiter and local == "gradient":
        from ._gradient import fit_gradient

        res = fit_gradient(meas, bounds=bounds, start=space.from_unit(best_u), max_nfev=int(nm_maxiter), objective=obj)
        return replace(res, start=space.from_unit(u0), wall_s=time.perf_counter() - t0)
    if nm_maxiter and local == "least-squares":
        obj.phase = "least-squares"
        ls = least_squares(
            residuals,
            best_u,
            jac=partial(_forward_jacobian, residuals),
            bounds=(0.0, 1.0),
            method="trf",
            max_nfev=int(nm_maxiter),
            x_scale=1.0,
        )
        if 2 * ls.cost <= best_f:
            best_u, best_f = ls.x, 2 * float(ls.cost)
    elif nm_maxiter:
        obj.phase = "nelder-mead"
        simplex = np.vstack(
            [best_u] + [best_u + np.where(best_u[i] < 0.5, 0.05, -0.05) * np.eye(dim)[i] for i in range(dim)]
        )
        nm = minimize(
            f,
            best_u,
            method="Nelder-Mead",
            bounds=[(0.0, 1.0)] * dim,
            options={"maxiter": int(nm_maxiter), "initial_simplex": simplex, "xatol": 1e-6, "fatol": 1e-10},
        )
        if nm.fun <= best_f:
            best_u, best_f = nm.x, nm.fun
    params = space.from_unit(best_u)
    obj.phase = "final"
    _, n_bad = obj.residuals(spec.model(params))
    if with_uncertainty:
        cov, stderr = uncertainty(obj, params, space, spec=spec)
    else:
        cov, stderr = np.full((dim, dim), np.nan), {n: float("nan") for n in space.names}
    return FitResult(
        params,
        stderr,
        cov,
        float(best_f),
        obj.n_points,
        n_bad,
        obj.trace_frame(),
        space.from_unit(u0),
        time.perf_counter() - t0,
        space.bounds,
        spec,
    )


def table2(results: Mapping[str, FitResult]) -> pd.DataFrame:
    """Table 2: the paper's values beside each fit's value ± standard error, in display units; isotherm
    parameters (:class:`Spec`) follow Z, empty for the fits without them."""
    names = list(dict.fromkeys(n for res in results.values() for n in res.names)) if results else list(PARAMETERS)
    rows = []
    for n in names:
        unit, scale = UNITS[_family(n)]
        row = {"parameter": n, "unit": unit, "paper": PAPER_TABLE2.get(n, np.nan) * scale}
        for label, res in results.items():
            if n not in res.params:
                row[label], row[f"{label} ± σ"] = np.nan, ""
                continue
            row[label] = res.params[n] * scale
            row[f"{label} ± σ"] = res.stderr[n] * scale
            if n in res.at_bounds:
                row[f"{label} ± σ"] = f"at bound ({row[f'{label} ± σ']:.3g})"
        rows.append(row)
    return pd.DataFrame(rows)
