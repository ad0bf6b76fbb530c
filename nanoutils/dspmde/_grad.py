"""Sensitivities of the converged DSPM-DE permeate to the membrane, by implicit differentiation.

At a converged state x of the discrete equations R(x, p) = 0 (:mod:`._discrete`) the permeate moves
with a membrane quantity p as dx/dp = −(∂R/∂x)⁻¹ ∂R/∂p — one linear solve per case with one
right-hand side per quantity, no differentiation through the Newton iterations. ∂R/∂x is the
exact Jacobian of the Newton step, and each solve reuses its structured elimination
(:func:`._newton.direction`, O(K d²) per case, all cases at once). The quantities, per case
(:data:`QUANTITIES`):

- ``r_p``, ``dx_e``, ``eps_p``: ∂R/∂p by central differences of the residuals at the fixed state
  (relative step :data:`FD_STEP`; they enter through λ, the hindrance factors, the cell
  resistances and the Born term);
- ``X``: the pore charge (mol/m³), analytic (the neutrality residual of every pore node; the
  charge also enters that residual's scale, a term that vanishes with the residual at convergence);
- ``dW[i]``: a per-ion partition energy ΔW_i/(k_B T) added at both pore ends, ln φ_i → ln φ_i − ΔW_i/(k_B T),
  analytic (the two partition links of ion i).

With a film the film cells are part of the system (the film has no membrane quantity). Activity
models are not supported: the Newton solver lags their coefficients, so its Jacobian is not the
exact ∂R/∂x.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np

from ._discrete import Chain, State
from ._film import Film
from ._membrane import Membrane
from ._newton import direction
from ._partition import pore_ions
from ._setup import build_chain
from ._solver import _solve_chain, case_permeate

#: Membrane quantities with a sensitivity, in column order; then one ``dW`` column per ion.
QUANTITIES = ("r_p", "dx_e", "eps_p", "X")
FD_STEP = 1e-6  # relative step of the central differences of the residuals


class Sensitivity(NamedTuple):
    """Permeate (B, d) mol/m³, its derivatives ``d_permeate`` (B, d, 4 + d) with respect to
    r_p (m), Δx_e (m), ε_p, X (mol/m³) and ΔW_i/(k_B T) for each ion (NaN for unconverged cases),
    and ``converged`` (B,)."""

    permeate: np.ndarray
    d_permeate: np.ndarray
    converged: np.ndarray


def residual(chain: Chain, st: State) -> np.ndarray:
    """All residuals per case (B, (K+2)(d+1)): links (row-major), node neutrality, zero current."""
    f = chain.links(st, derivatives=False)
    return np.concatenate([f.reshape(len(f), -1), chain.neutrality(st)[0], chain.current(st)[0][:, None]], axis=1)


class _System:
    """The Newton system of a chain linearised at a state, with its residuals replaced by a right-hand side:
    it answers the three calls :func:`._newton.direction` makes, which then returns −J⁻¹ rhs by the
    structured (block-bidiagonal with a border) elimination of the Newton step."""

    def __init__(self, chain: Chain, st: State):
        self.derivatives = chain.links(st)[1:]
        self.dn, self.di = chain.neutrality(st)[1], chain.current(st)[1]
        self.shape = chain.mask.shape[0], chain.n_nodes + 1, chain.mask.shape[1]
        self.rhs = np.zeros((self.shape[0], self.shape[1] * (self.shape[2] + 1)))

    def links(self, st: State):
        return (self.rhs[:, : self.shape[1] * self.shape[2]].reshape(self.shape), *self.derivatives)

    def neutrality(self, st: State):
        return self.rhs[:, self.shape[1] * self.shape[2] : -1], self.dn

    def current(self, st: State):
        return self.rhs[:, -1], self.di


def parameter_partials(chain: Chain, st: State, rebuild, membrane: Membrane) -> np.ndarray:
    """∂R/∂p (B, n, 4 + d) at the fixed state ``st`` for :data:`QUANTITIES` and ΔW_i/(k_B T).

    ``rebuild(membrane)`` returns the chain of the same cases for another membrane (r_p, Δx_e, ε_p
    are differenced through it, relative step :data:`FD_STEP`)."""
    b, d = chain.mask.shape
    out = np.zeros((b, (chain.n_nodes + 1) * (d + 1), len(QUANTITIES) + d))
    for j, name in enumerate(QUANTITIES[:3]):
        value = getattr(membrane, name)
        plus, minus = (rebuild(membrane.with_(**{name: value * (1 + s * FD_STEP)})) for s in (1, -1))
        out[:, :, j] = (residual(plus, st) - residual(minus, st)) / (2 * FD_STEP * value)
    links = chain.n_nodes + 1
    pore = np.arange(chain.n_film, chain.n_nodes)
    out[:, links * d + pore, 3] = 1.0 / chain.scale()[:, None]
    ions = np.arange(d)
    for link in (chain.part_in, chain.part_out):
        out[:, link * d + ions, 4 + ions] = chain.mask
    return out


def sensitivities(
    c_feed: np.ndarray,
    jv: np.ndarray,
    membrane: Membrane,
    species: tuple[str, ...],
    *,
    X: np.ndarray,
    dW: np.ndarray | None = None,
    film: Film | None = None,
    n_cells: int = 20,
    temperature: float = 298.15,
    temperature_model: str = "none",
    pore_model: str = "nernst_planck",
    tol: float = 1e-8,
) -> Sensitivity:
    """Solve B cases (feeds ``c_feed`` (B, d) mol/m³ of validated ``species``, fluxes ``jv`` (B,) m/s, pore
    charge ``X`` (B,) mol/m³, partition energies ``dW`` (B, d) in k_B T, default 0) of one ``membrane``
    (its X_d unused) and return the permeate with its derivatives (:class:`Sensitivity`)."""
    b, d = c_feed.shape
    dW = np.zeros((b, d)) if dW is None else np.broadcast_to(np.asarray(dW, dtype=float), (b, d))

    def rebuild(mem: Membrane) -> Chain:
        props = pore_ions(species, mem, temperature, temperature_model=temperature_model)
        chain = build_chain(c_feed, jv, props, mem, film, n_cells, X=X, pore_model=pore_model)
        return replace(chain, ln_phi=chain.ln_phi - (chain.mask * dW)[:, None])

    chain = rebuild(membrane)
    st, converged, _, _ = _solve_chain(chain, None, tol)
    c_p, iterated = case_permeate(chain, st, c_feed)
    converged &= np.isfinite(c_p).all(axis=1)
    d_perm = np.zeros((b, d, len(QUANTITIES) + d))
    d_perm[~converged] = np.nan
    run = np.flatnonzero(converged & iterated)
    if run.size:
        sub, cur = chain.take(run), st.take(run)
        partials = parameter_partials(sub, cur, lambda mem: rebuild(mem).take(run), membrane)
        system = _System(sub, cur)
        for j in range(partials.shape[2]):
            system.rhs = partials[:, :, j]
            d_perm[run, :, j] = np.where(sub.mask, c_p[run] * direction(system, cur).v, 0.0)  # type: ignore[arg-type]  # _System has the Chain methods direction calls
    permeate = np.where(converged[:, None], c_p, np.nan)
    return Sensitivity(permeate, d_perm, converged)
