"""Transport model of the virtual NF270 laboratory — richer than the 4-parameter DSPM-DE.

Used only to *generate* VIRTUAL data (:mod:`nanoutils.virtual_lab`). Built on the DSPM-DE solver
(one pore class = one DSPM-DE membrane), with four departures from it:

1. **Charge isotherm** (evaluated on the bulk feed, constant over a flux series):
   X_d = −K_F (c_eq / 1 mol m⁻³)^n + X_M c_div / (K_M + c_div), with c_eq = ½ Σ|z_i| c_i the
   equivalent concentration (Freundlich; Bowen & Mukhtar 1996 report X_d ∝ c^0.4–0.7 for NF) and
   c_div = c(Mg²⁺) + c(Ca²⁺) (Langmuir binding of divalent cations, which makes NF270 less negative).
2. **Log-normal pore radii**: ln r ~ N(ln r_median, σ²) as a *number* distribution, discretised by
   ``n_classes`` Gauss–Hermite nodes r_k with weights p_k. Every class feels the same pressure, so
   (Hagen–Poiseuille) its pore velocity scales as r_k²: on its own open area a_k ∝ p_k r_k² it carries
   J_k = J_v r_k² Σa / Σ(a r²) (so the area-average is J_v), and the permeate is the flow-weighted mix
   c_p = Σ q_k c_p,k with q_k = p_k r_k⁴ / Σ p r⁴. Each class is solved by DSPM-DE with its own r_k.
3. **Pore dielectric constant from an oriented water layer** (Bowen & Welfoot 2002):
   ε_p(r) = ε_b − 2(ε_b − ε*)(d/r) + (ε_b − ε*)(d/r)², unless a fixed ``eps_p`` is given.
4. **Pitzer activity** at both pore interfaces (the solver's activity hook; Pitzer–Kim as the paper).

Concentration polarisation (observed rejection): one mass-transfer coefficient k for all ions
(the lab characterised its cell with NaCl), film equation c_m − c_p = (c_b − c_p) e^{J_v/k} per ion,
with c_p the *mixed* permeate, solved for the membrane-surface concentration c_m by the fixed point
c_m = c_b e^{Pe} / (R + (1 − R) e^{Pe}), R = 1 − c_p/c_m. With one k for all ions this is exactly
DSPM-DE's film (equal diffusivities give no diffusion potential), so the film is not a mis-specification.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import activity, dspmde, ions
from ..constants import EPS_WATER_25C as EPS_WATER

FILM_TOL = 1e-10  # max relative change of c_m between film iterations
FILM_MAXITER = 60


class VirtualLabError(RuntimeError):
    """The virtual laboratory's model failed (a solve did not converge); nothing is written."""


@dataclass(frozen=True)
class LabMembrane:
    """The virtual NF270: pore radii (m, log-normal: ``r_median``, ``sigma_ln_r``, ``n_classes``),
    thickness ``dx_e`` (m), dielectric constant ``eps_p`` (fixed) or from the water layer
    (``eps_star``, ``water_layer`` in m), charge isotherm (``K_F`` mol/m³, ``n_F``, ``X_M`` mol/m³,
    ``K_M`` mol/m³), and the interface ``activity`` model (``"pitzer"``, ``"davies"`` or ``"ideal"``)."""

    r_median: float = 0.48e-9
    sigma_ln_r: float = 0.15
    n_classes: int = 5
    dx_e: float = 1.5e-6
    eps_p: float | None = None
    eps_star: float = 31.0
    water_layer: float = 0.28e-9
    K_F: float = 9.0
    n_F: float = 0.45
    X_M: float = 60.0
    K_M: float = 20.0
    activity: str = "pitzer"

    def charge(self, c_feed: np.ndarray, names: Sequence[str]) -> float:
        """Membrane charge X_d (mol/m³) for a bulk feed ``c_feed`` (d,) mol/m³ of ions ``names``."""
        c = np.asarray(c_feed, float)
        c_eq = 0.5 * float(np.abs(ions.charges(names)) @ c)
        c_div = float(sum(ci for n, ci in zip(names, c, strict=True) if n in ("Mg2+", "Ca2+")))
        return -self.K_F * c_eq**self.n_F + self.X_M * c_div / (self.K_M + c_div)

    def pore_classes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Class radii r_k (m), dielectric constants ε_p,k and permeate shares q_k (sum 1)."""
        if self.n_classes == 1 or self.sigma_ln_r == 0:
            x, p = np.zeros(1), np.ones(1)
        else:
            x, w = np.polynomial.hermite_e.hermegauss(self.n_classes)
            p = w / w.sum()
        r = self.r_median * np.exp(self.sigma_ln_r * x)
        if self.eps_p is not None:
            eps = np.full(len(r), float(self.eps_p))
        else:
            t = self.water_layer / r
            eps = EPS_WATER - 2 * (EPS_WATER - self.eps_star) * t + (EPS_WATER - self.eps_star) * t**2
        q = p * r**4
        return r, eps, q / q.sum()

    def flux_scale(self) -> np.ndarray:
        """J_k / J_v per class (Hagen–Poiseuille at equal pressure, area-average 1)."""
        r, _, q = self.pore_classes()
        area = q / r**2  # ∝ p r², the open area of each class
        return r**2 * area.sum() / (area * r**2).sum()


def _activity_hook(model: str, names: Sequence[str], temperature: float):
    if model == "ideal":
        return None
    names = tuple(names)

    def ln_gamma(c: np.ndarray, z: np.ndarray) -> np.ndarray:
        return activity.ln_coefficients(
            activity.molar_to_molal(np.maximum(c, 0.0), temperature), names, model, temperature
        )

    return ln_gamma


def _solve_classes(
    c_m: np.ndarray, names: Sequence[str], jv: np.ndarray, lab: LabMembrane, X_d: float, temperature: float
) -> np.ndarray:
    """Mixed permeate (M, d) of all pore classes for membrane-surface concentrations ``c_m`` (M, d)."""
    radii, eps_p, share = lab.pore_classes()
    scale = lab.flux_scale()
    hook = _activity_hook(lab.activity, names, temperature)
    same = bool(np.all(c_m == c_m[:1]))
    mixed = np.zeros_like(c_m)
    for r, eps, q, s in zip(radii, eps_p, share, scale, strict=True):
        membrane = dspmde.Membrane(r_p=float(r), dx_e=lab.dx_e, eps_p=float(eps), X_d=X_d)
        feeds = c_m[:1] if same else c_m
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dspmde.ConvergenceWarning)
            res = dspmde.solve(feeds, jv * s, species=names, membrane=membrane, temperature=temperature, activity=hook)
        ok = res.converged[0] if same else np.diagonal(res.converged)
        if not ok.all():
            raise VirtualLabError(
                f"DSPM-DE did not converge for pore class r = {r * 1e9:.3f} nm, X_d = {X_d:.2f} "
                f"mol/m³, feed {dict(zip(names, c_m[0], strict=True))} at J_v = {jv[~ok] * 1e6} µm/s"
            )
        c_p = res.permeate[0] if same else res.permeate[np.arange(len(jv)), np.arange(len(jv))]
        mixed += q * c_p
    return mixed


def _neutral(c: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Scale the anions of each row so that Σ z c = 0 exactly (a vanishing correction at the fixed point)."""
    pos, neg = (c * np.maximum(z, 0)).sum(-1, keepdims=True), (c * np.maximum(-z, 0)).sum(-1, keepdims=True)
    return np.where(z < 0, c * pos / neg, c)


def observed_permeate(
    c_bulk: np.ndarray,
    names: Sequence[str],
    jv: np.ndarray,
    lab: LabMembrane,
    *,
    film_k: float | None,
    temperature: float,
) -> tuple[np.ndarray, float]:
    """Noise-free permeate concentrations (M, d) mol/m³ of a bulk feed ``c_bulk`` (d,) at fluxes
    ``jv`` (M,) m/s, and the feed's X_d (mol/m³). ``film_k`` (m/s): film mass-transfer coefficient,
    ``None`` for no film (the feed is the membrane-surface concentration)."""
    c_bulk = np.asarray(c_bulk, float)
    X_d = lab.charge(c_bulk, names)
    c_m = np.tile(c_bulk, (len(jv), 1))
    if film_k is None:
        return _solve_classes(c_m, names, jv, lab, X_d, temperature), X_d
    z = ions.charges(names)
    growth = np.exp(jv / film_k)[:, None]
    for _ in range(FILM_MAXITER):
        c_p = _solve_classes(c_m, names, jv, lab, X_d, temperature)
        R = 1.0 - c_p / c_m
        new = _neutral(c_bulk * growth / (R + (1.0 - R) * growth), z)
        change = float(np.abs(new / c_m - 1.0).max())
        c_m = new
        if change < FILM_TOL:
            return _solve_classes(c_m, names, jv, lab, X_d, temperature), X_d
    raise VirtualLabError(f"film fixed point did not converge in {FILM_MAXITER} iterations (last change {change:.2e})")
