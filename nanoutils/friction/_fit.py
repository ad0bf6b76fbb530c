"""Regression of the SF parameters on measured rejections (paper eq. 11, training split only).

    arg min_θ  Σ_i Σ_j [R_mod_ij(θ) − R_exp_ij]² / σ_ij²                                   (eq. 11)

Identifiability. With ideal solutions the rejections depend on the d + 4 parameters only through d + 2
combinations: P_i = Φ K_f,i, Y = X/Φ and ℓ = L/ε_w. (ε_w: v_w = J_v/ε_w and ε_w D_i,m enter as
J_v c_p = K_f c J_v − ε_w D_m(…), so only L/ε_w appears. Φ: scaling Φ → αΦ, X → αX, 1 + r_i → α(1 + r_i)
multiplies every pore concentration by α and K_f, D_m by 1/α, leaving the Donnan potential and every
flux unchanged.) So θ = (ln P_1 … ln P_d, ln ℓ, Y/(100 mol m⁻³)) is fitted, and the reported
:class:`SFModel` takes ε_w and Φ at fixed values (``water_fraction``, ``partition``): r_i = Φ/P_i − 1,
X = Φ Y, L = ε_w ℓ; the bound P_i ≤ Φ keeps r_i ≥ 0.

Optimiser: scipy's bounded trust-region-reflective least squares (``least_squares``, method "trf",
forward-difference Jacobian) on the normalised residuals of :meth:`MeasuredArrays.normalized_residuals`,
from a fixed start plus ``n_starts − 1`` seeded random starts in the bounds, ``max_nfev`` residual
evaluations each (Jacobian evaluations, d + 2 residual calls each, come on top; the trace counts all).
The residual machinery (feed grouping, film layer for observed feeds, penalty for unconverged cases)
is :class:`nanoutils.fitting.Objective`'s, with the DSPM-DE solve replaced by :meth:`SFModel.solve`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from ..fitting import FitError, Objective
from ..measurements import Measurements
from ._model import SFModel

#: Bounds of the fitted combinations (SI): P = Φ K_f (upper bound: Φ, i.e. r ≥ 0), ℓ = L/ε_w (m),
#: Y = X/Φ (mol/m³).
BOUNDS: dict[str, tuple[float, float]] = {"P": (1e-5, 1.0), "ell": (1e-8, 1e-3), "Y": (-2000.0, 2000.0)}
#: The fixed start: P = 0.5 for every ion, ℓ = 10 µm, Y = −50 mol/m³.
START: dict[str, float] = {"P": 0.5, "ell": 1e-5, "Y": -50.0}
WATER_FRACTION = 0.3  # ε_w held fixed in the reported model (only L/ε_w is identifiable)
PARTITION = 1.0  # Φ held fixed in the reported model (only Φ K_f,i and X/Φ are identifiable)


class Space:
    """θ = (ln P_i, ln ℓ, Y/100) ↔ :class:`SFModel` for the ions ``species``, ε_w and Φ fixed; bounds ``lo``, ``hi``."""

    def __init__(
        self,
        species: tuple[str, ...],
        water_fraction: float = WATER_FRACTION,
        partition: float = PARTITION,
        born_eps_p: float | None = None,
    ):
        self.species, self.water_fraction, self.partition = species, water_fraction, partition
        self.born_eps_p = born_eps_p
        d = len(species)
        self.lo = np.array([np.log(BOUNDS["P"][0])] * d + [np.log(BOUNDS["ell"][0]), BOUNDS["Y"][0] / 100.0])
        self.hi = np.array(
            [np.log(min(BOUNDS["P"][1], partition))] * d + [np.log(BOUNDS["ell"][1]), BOUNDS["Y"][1] / 100.0]
        )
        if not np.all(self.lo < self.hi):
            raise FitError(f"partition {partition!r} must exceed the lower bound {BOUNDS['P'][0]} of Φ K_f")

    def model(self, theta: np.ndarray) -> SFModel:
        d, phi = len(self.species), self.partition
        ratios = {s: max(phi / float(np.exp(t)) - 1.0, 0.0) for s, t in zip(self.species, theta[:d], strict=True)}
        return SFModel(
            ratios,
            X=float(100.0 * theta[d + 1] * phi),
            water_fraction=self.water_fraction,
            thickness=float(self.water_fraction * np.exp(theta[d])),
            partition=phi,
            born_eps_p=self.born_eps_p,
        )

    def theta(self, model: SFModel) -> np.ndarray:
        p = [model.partition / (1.0 + model.friction_ratio[s]) for s in self.species]
        return np.array([*np.log(p), np.log(model.thickness / model.water_fraction), model.X / model.partition / 100.0])

    def random(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.lo, self.hi)


@dataclass(frozen=True)
class SFFit:
    """A fitted :class:`SFModel` (``model``), ``chi2`` (eq. 11), ``n_points``, ``stderr_theta`` (standard errors
    of θ = (ln P_i, ln ℓ, Y/100) from the Gauss–Newton Hessian scaled by max(1, reduced χ²)), ``n_unconverged``
    measurements at the optimum, ``starts`` (χ² reached from each start), ``n_evaluations`` of the residuals,
    ``trace``, ``wall_s``, the ``covariance`` of θ (whose diagonal gives ``stderr_theta``) and the θ
    ``space`` (:class:`Space`: θ ↔ model)."""

    model: SFModel
    chi2: float
    n_points: int
    stderr_theta: np.ndarray
    n_unconverged: int
    starts: list[float]
    n_evaluations: int
    trace: pd.DataFrame
    wall_s: float
    covariance: np.ndarray
    space: Space

    @property
    def n_params(self) -> int:
        """The model's parameter count d + 4 (of which the d + 2 identifiable combinations are fitted)."""
        return self.model.n_params

    @property
    def n_fitted(self) -> int:
        """Number of fitted (identifiable) combinations, d + 2."""
        return len(self.stderr_theta)

    def table(self) -> pd.DataFrame:
        """The fitted combinations Φ K_f,i, L/ε_w, X/Φ with standard errors (delta method), then the
        d + 4 model parameters under the fixed ε_w and Φ; display units (µm, mol/m³)."""
        m, d, se = self.model, len(self.model.species), self.stderr_theta
        p = {s: m.partition / (1.0 + r) for s, r in m.friction_ratio.items()}
        ell = 1e6 * m.thickness / m.water_fraction
        rows = [(f"Φ·K_f[{s}]", "–", v, v * se[i]) for i, (s, v) in enumerate(p.items())]
        rows += [("L/ε_w", "µm", ell, ell * se[d]), ("X/Φ", "mol/m³", m.X / m.partition, 100.0 * se[d + 1])]
        rows += [(f"r[{s}] = f_im/f_iw", "–", r, np.nan) for s, r in m.friction_ratio.items()]
        rows += [
            ("X", "mol/m³", m.X, np.nan),
            ("ε_w (fixed)", "–", m.water_fraction, np.nan),
            ("L", "µm", 1e6 * m.thickness, np.nan),
            ("Φ (fixed)", "–", m.partition, np.nan),
        ]
        return pd.DataFrame(rows, columns=["parameter", "unit", "fitted", "stderr"]).set_index("parameter")


def fit(
    meas: Measurements,
    *,
    n_starts: int = 3,
    max_nfev: int = 60,
    seed: int = 0,
    water_fraction: float = WATER_FRACTION,
    partition: float = PARTITION,
    born_eps_p: float | None = None,
    start: SFModel | None = None,
    activity: str | None = None,
    n_cells: int = 20,
) -> SFFit:
    """Fit an :class:`SFModel` to ``meas`` (a training split) by eq. 11 (module docstring for the identifiable
    combinations, the method and the budget). ``water_fraction`` and ``partition`` fix ε_w and Φ of the
    reported model; ``start`` replaces the fixed start (its ε_w, Φ and Born setting are then used);
    ``born_eps_p`` switches the Born term on at a fixed pore dielectric constant (not fitted)."""
    t0 = time.perf_counter()
    if not isinstance(n_starts, int) or n_starts < 1:
        raise FitError(f"n_starts must be an integer ≥ 1, got {n_starts!r}")
    if not isinstance(max_nfev, int) or max_nfev < 1:
        raise FitError(f"max_nfev must be an integer ≥ 1, got {max_nfev!r}")
    obj = Objective(meas, activity=activity, n_cells=n_cells)
    if start is not None:
        water_fraction, partition, born_eps_p = start.water_fraction, start.partition, start.born_eps_p
    space = Space(obj.arrays.species, water_fraction, partition, born_eps_p)
    d = len(space.species)
    theta0 = (
        space.theta(start)
        if start is not None
        else np.array([np.log(min(START["P"], partition))] * d + [np.log(START["ell"]), START["Y"] / 100.0])
    )
    if np.any(theta0 < space.lo) or np.any(theta0 > space.hi):
        raise FitError(f"start {start!r} lies outside the bounds {BOUNDS}")
    rng = np.random.default_rng(seed)
    starts = [theta0] + [space.random(rng) for _ in range(n_starts - 1)]

    def residuals(theta: np.ndarray) -> np.ndarray:
        r, n_bad = obj.residuals(space.model(theta))
        obj.trace.append((obj.phase, float(r @ r), n_bad))
        return r

    sols = []
    for i, th in enumerate(starts):
        obj.phase = f"start {i}"
        sols.append(
            least_squares(
                residuals, th, bounds=(space.lo, space.hi), method="trf", x_scale=1.0, diff_step=1e-4, max_nfev=max_nfev
            )
        )
    results = [2.0 * float(sol.cost) for sol in sols]
    best = min(sols, key=lambda sol: sol.cost)  # the first of equal ones
    model = space.model(best.x)
    obj.phase = "final"
    r, n_bad = obj.residuals(model)
    chi2 = float(r @ r)
    s2 = max(1.0, chi2 / max(len(r) - len(best.x), 1))
    cov = s2 * np.linalg.pinv(best.jac.T @ best.jac)
    return SFFit(
        model,
        chi2,
        obj.n_points,
        np.sqrt(np.abs(np.diag(cov))),
        n_bad,
        results,
        len(obj.trace),
        obj.trace_frame(),
        time.perf_counter() - t0,
        cov,
        space,
    )
