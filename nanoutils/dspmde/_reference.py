"""The paper's under-relaxed fixed-point scheme (Appendix A.2, eqs. 9–10), one case at a time.

It solves the same discrete equations as :func:`solve` (see ``_discrete``) by Picard
iteration, after Geraldes & Brites Alves (2008):

1. with the potentials frozen, every ion's link equations are linear and solved exactly
   (:meth:`Chain.frozen_potential`), giving C⁽ⁿ⁾ at all nodes and in the permeate;
2. eq. 10 relaxes the concentrations, C⁽ⁿ⁺¹⁾ = C⁽ⁿ⁻¹⁾[1 + η_C min(1, |C⁽ⁿ⁻¹⁾/ΔC|) ΔC/C⁽ⁿ⁻¹⁾],
   which keeps them positive;
3. each node's potential moves towards electroneutrality of the relaxed concentrations by a
   Boltzmann (Newton) correction δψ = (Σ z c + X)/Σ z² c (permeate: X = 0), and eq. 9 relaxes
   it, ψ⁽ⁿ⁺¹⁾ = ψ⁽ⁿ⁻¹⁾ + η_ψ(ψ⁽ⁿ⁾ − ψ⁽ⁿ⁻¹⁾).

At a fixed point δψ = 0 (neutrality everywhere) and C = C⁽ⁿ⁾ (all link equations hold).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ._discrete import Chain, State
from ._film import Film
from ._membrane import Membrane
from ._partition import pore_ions
from ._result import Result
from ._setup import as_concentrations, as_fluxes, build_chain, check_temperature, equilibrium_state
from ._solver import DEFAULT_CELLS

ETA_PSI, ETA_C = 0.10, 0.175


def _relax_concentration(c_old: np.ndarray, c_new: np.ndarray, eta: float) -> np.ndarray:
    """Eq. 10: a step of η_C towards c_new, never more than η_C·c_old in size."""
    delta = c_new - c_old
    with np.errstate(divide="ignore", invalid="ignore"):
        limit = np.where(delta != 0, np.minimum(1.0, np.abs(c_old / delta)), 1.0)
    return c_old + eta * limit * delta


def fixed_point(
    chain: Chain, *, eta_psi: float = ETA_PSI, eta_c: float = ETA_C, tol: float = 1e-13, maxiter: int = 200_000
) -> tuple[State, bool, int]:
    """Iterate eqs. 9–10 on a single-case chain from the J_v → 0 equilibrium start."""
    st = equilibrium_state(chain)
    zm = chain.z * chain.mask[0]
    x = np.append(chain.X[0], 0.0)
    c = np.exp(np.append(st.U[0], st.v, axis=0)) * chain.mask[0]
    psi = np.append(st.Psi[0], st.psi_p)
    for it in range(1, maxiter + 1):
        frozen = chain.frozen_potential(st)
        target = np.exp(np.append(frozen.U[0], frozen.v, axis=0)) * chain.mask[0]
        c = _relax_concentration(c, target, eta_c)
        shift = (c @ zm + x) / (c @ zm**2)
        psi = psi + eta_psi * shift
        st = State(frozen.U, psi[None, :-1], frozen.v, psi[-1:])
        with np.errstate(divide="ignore", invalid="ignore"):
            change = np.nanmax(np.abs(np.log(target / c)), initial=0.0)
        if max(change, np.abs(shift).max()) < tol:
            return chain.frozen_potential(st), True, it
    return chain.frozen_potential(st), False, maxiter


def solve_reference(
    feed: Mapping[str, float] | np.ndarray,
    flux: float,
    *,
    membrane: Membrane | None = None,
    film: Film | None = None,
    temperature: float = 298.15,
    species: Sequence[str] | None = None,
    n_cells: int = DEFAULT_CELLS,
    eta_psi: float = ETA_PSI,
    eta_c: float = ETA_C,
    tol: float = 1e-13,
    maxiter: int = 200_000,
) -> Result:
    """One feed at one flux J_v (m/s) by the paper's under-relaxed scheme (η_ψ = 0.10,
    η_C = 0.175 by default); returns a (1, 1) :class:`Result` comparable with :func:`solve`.
    Slow by design: it is the yardstick for the batched solver, not a production path."""
    membrane = Membrane.nf270() if membrane is None else membrane
    c_feed, names = as_concentrations(feed, species)
    jv = as_fluxes(flux)
    if c_feed.shape[0] != 1 or jv.size != 1:
        raise ValueError(f"solve_reference takes one feed and one flux, got {c_feed.shape[0]} feeds × {jv.size} fluxes")
    if jv[0] == 0:
        raise ValueError("solve_reference needs a flux > 0 m/s (at J_v = 0 the permeate equals the feed)")
    pore = pore_ions(names, membrane, check_temperature(temperature))
    chain = build_chain(c_feed, jv, pore, membrane, film, n_cells)
    st, ok, iterations = fixed_point(chain, eta_psi=eta_psi, eta_c=eta_c, tol=tol, maxiter=maxiter)
    both = (chain.mask & (chain.z > 0)).any() and (chain.mask & (chain.z < 0)).any()
    c_p = np.where(chain.mask, np.exp(st.v), 0.0) if both else np.zeros_like(c_feed)
    surface = np.where(chain.mask, np.exp(st.U[:, chain.n_film - 1]), 0.0) if film is not None else c_feed
    nan = np.full_like(c_feed, np.nan)
    info = {
        "iterations": np.array([[iterations]]),
        "residual": chain.residual_norm(st)[None],
        "n_failed": int(not ok),
        "n_cells": n_cells,
        "eta_psi": eta_psi,
        "eta_c": eta_c,
    }
    return Result(names, c_feed, jv, (c_p if ok else nan)[None], (surface if ok else nan)[None], np.array([[ok]]), info)
