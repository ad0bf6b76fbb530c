"""Batched DSPM-DE solver: N feeds × M fluxes in one call, no Python loop over cases."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from ..constants import thermal_voltage
from ._activity import ActivityModel, activity_model
from ._discrete import Chain, State
from ._film import Film
from ._isotherm import ChargeIsotherm, IsothermError
from ._membrane import Membrane
from ._newton import continuation
from ._partition import PoreIons, pore_ions
from ._result import Profiles, Result
from ._setup import (
    Slab,
    as_concentrations,
    as_fluxes,
    build_chain,
    check_pore_model,
    check_temperature,
    equilibrium_state,
)

DEFAULT_CELLS = 20
CHUNK = 1024  # cases per Newton batch (bounds memory; O(CHUNK · n_cells · d²) floats)
WORKERS = min(4, os.cpu_count() or 1)  # threads over chunks


class ConvergenceWarning(RuntimeWarning):
    """Some cases did not converge (their outputs are NaN and ``converged`` is False)."""


def _solve_chain(chain: Chain, model: ActivityModel | None, tol: float):
    """Solve the cases of one chain: (state, converged, iterations, residual) per case.

    Cases with J_v = 0 or without both cation and anion able to enter are not iterated
    (their permeate is set by the caller); cases without a Donnan root fail.
    """
    st = equilibrium_state(chain)
    ok = np.isfinite(st.Psi).all(axis=1)
    both = (chain.mask & (chain.z > 0)).any(1) & (chain.mask & (chain.z < 0)).any(1)
    run = np.flatnonzero(ok & both & (chain.Jv > 0))
    converged = ~both | (ok & (chain.Jv == 0))
    iterations, residual = np.zeros(len(ok), int), np.full(len(ok), np.nan)
    if run.size:
        sub, eq = chain.take(run), st.take(run)
        if model is not None:  # first guess of ln φ_eff: γ at the equilibrium (J_v → 0) state
            sub = replace(sub, activity=model, ln_phi0=sub.ln_phi)
            sub = replace(sub, ln_phi=sub.activity_logs(eq))
        start = sub.frozen_potential(eq)
        bad = ~(np.isfinite(start.U).all(axis=(1, 2)) & np.isfinite(start.v).all(axis=1))
        if bad.any():  # single-element cells can lack a positive frozen solution: start from equilibrium
            start.put(np.flatnonzero(bad), eq.take(np.flatnonzero(bad)))
        s, conv, its = continuation(sub, start, tol=tol)
        if model is not None:
            sub = replace(sub, ln_phi=sub.activity_logs(s))
        st.put(run, s)
        converged[run], iterations[run], residual[run] = conv, its, sub.residual_norm(s)
    return st, converged, iterations, residual


def case_permeate(chain: Chain, st: State, c_feed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Permeate (B, d) mol/m³ of the solved cases of ``chain`` with feeds ``c_feed`` (B, d), and which
    cases take it from the state ``st`` (B,): c_p = e^v for active ions, 0 where no cation–anion pair can
    enter (no ion crosses without a partner of opposite charge), the feed at J_v = 0 (the J_v → 0 limit)."""
    c_p = np.where(chain.mask, np.exp(st.v), 0.0)
    both = (chain.mask & (chain.z > 0)).any(1) & (chain.mask & (chain.z < 0)).any(1)
    c_p[~both] = 0.0
    c_p[chain.Jv == 0] = c_feed[chain.Jv == 0]
    return c_p, both & (chain.Jv > 0)


def solve(
    feeds,
    fluxes,
    *,
    membrane: Membrane | None = None,
    film: Film | None = None,
    temperature: float = 298.15,
    species: Sequence[str] | None = None,
    n_cells: int = DEFAULT_CELLS,
    activity: str | ActivityModel | None = None,
    profiles: bool = False,
    tol: float = 1e-8,
    isotherm: ChargeIsotherm | None = None,
    image_forces: bool = False,
    temperature_model: str = "none",
    pore: str = "nernst_planck",
    partition_energy: Mapping[str, float] | None = None,
) -> Result:
    """Permeate concentrations of every feed at every flux (flux-specified DSPM-DE).

    ``feeds``: a :class:`~nanoutils.ions.Feed`, a list of feeds, or a dense (N, d) array in
    mol/m³ with ``species`` naming its columns (0 = ion absent from that feed).
    ``fluxes``: permeate flux J_v in m/s, scalar or (M,). ``membrane``: default
    :meth:`Membrane.nf270`. ``film``: :class:`Film` or ``None`` (membrane surface sees the feed).
    ``temperature`` in K; ``n_cells`` finite volumes across the pore; ``profiles=True`` keeps pore
    profiles; ``tol``: Newton step tolerance on ln c and Fψ/RT (the error left after the last,
    quadratically convergent step is of order tol²; ``info["residual"]`` reports the discrete residual).

    Options (each default is the original model):

    - ``activity``: ``None``/``"ideal"``, ``"davies"``, ``"pitzer"`` (Pitzer–Kim, :mod:`nanoutils.activity`)
      or a callable (c mol/m³, z) → ln γ. Eq. 8 takes γ on both sides; inside the pore γ is
      evaluated with the same model at the pore-side concentrations (see ``_activity`` for why).
    - ``isotherm``: :class:`ChargeIsotherm` giving X_d per feed from its composition (``None``:
      constant ``membrane.X_d``); the charge used is returned in ``info["X_d"]`` (N,), mol/m³.
    - ``image_forces``: add the cylindrical-pore image-force exclusion with ``membrane.eps_m``
      (Yaroshchuk 2000, unscreened) to the Born term.
    - ``partition_energy``: ion → ΔW_i (k_B T), an ion-specific partition energy added to the Born
      term (ln φ_i −= ΔW_i; ions not named get 0, the original model).
    - ``temperature_model``: ``"none"`` or ``"stokes_einstein"`` (D ∝ T/η(T), ε_b(T); 5–50 °C only).
    - ``pore``: ``"nernst_planck"`` (``n_cells`` exponentially fitted cells) or ``"single_element"``
      (one finite-difference element with mean concentrations, as WaterTAP's DSPMDE0D; ``n_cells``
      is then ignored). Where the single element has no positive solution the case is reported
      as not converged.

    Cases that do not converge have ``converged`` False and NaN outputs, and a
    :class:`ConvergenceWarning` reports their count.
    """
    membrane = Membrane.nf270() if membrane is None else membrane
    c_feed, names = as_concentrations(feeds, species)
    jv = as_fluxes(fluxes)
    temperature = check_temperature(temperature)
    n_cells = check_pore_model(pore, n_cells)
    model = activity_model(activity, names, temperature)
    pore_props = pore_ions(
        names,
        membrane,
        temperature,
        image_forces=image_forces,
        temperature_model=temperature_model,
        partition_energy=partition_energy,
    )
    isotherm = ChargeIsotherm() if isotherm is None else isotherm
    if not isinstance(isotherm, ChargeIsotherm):
        raise IsothermError(f"isotherm must be a dspmde.ChargeIsotherm or None, got {isotherm!r}")
    x_feed = isotherm.charge(membrane.X_d, c_feed, names)
    options = {
        "activity": activity if isinstance(activity, str) or activity is None else "callable",
        "isotherm": isotherm.kind,
        "image_forces": bool(image_forces),
        "temperature_model": temperature_model,
        "pore": pore,
        "partition_energy": {k: float(v) for k, v in (partition_energy or {}).items()},
    }
    return solve_cases(
        c_feed,
        jv,
        pore_props,
        membrane.dx_e,
        x_feed,
        film=film,
        n_cells=n_cells,
        model=model,
        tol=tol,
        pore_model=pore,
        profiles=profiles,
        temperature=temperature,
        info={"hindrance": membrane.hindrance, "X_d": x_feed, "options": options},
        label="DSPM-DE",
    )


def solve_transport(
    feeds,
    fluxes,
    pore: Callable[[tuple[str, ...], float, np.ndarray], PoreIons],
    thickness: float,
    charge: float,
    *,
    film: Film | None = None,
    temperature: float = 298.15,
    species: Sequence[str] | None = None,
    n_cells: int = DEFAULT_CELLS,
    activity: str | ActivityModel | None = None,
    profiles: bool = False,
    tol: float = 1e-8,
    info: dict | None = None,
    label: str = "model",
) -> Result:
    """The extended Nernst–Planck chain of :func:`solve` for a model that supplies its own per-ion pore
    coefficients: the hook for other models of the same form (the solution-friction model of
    :mod:`nanoutils.friction`).

    ``pore(species, temperature, present)`` returns the :class:`PoreIons` (K_c, K_d·D in m²/s, ln φ) of the
    canonical ``species`` at ``temperature`` (K); ``present`` (d,) bool marks the ions some feed contains.
    ``thickness``: pore length (m); ``charge``: X in mol/m³ (signed) for every feed. ``feeds``, ``fluxes``,
    ``film``, ``temperature``, ``species``, ``n_cells``, ``activity``, ``profiles`` and ``tol`` as :func:`solve`;
    ``info`` entries are added to the result's (with ``X_d``); ``label`` names the model in warnings.
    """
    c_feed, names = as_concentrations(feeds, species)
    jv = as_fluxes(fluxes)
    temperature = check_temperature(temperature)
    n_cells = check_pore_model("nernst_planck", n_cells)
    pore_props = pore(names, temperature, np.asarray((c_feed > 0).any(axis=0)))
    x_feed = np.full(len(c_feed), float(charge))
    return solve_cases(
        c_feed,
        jv,
        pore_props,
        thickness,
        x_feed,
        film=film,
        n_cells=n_cells,
        model=activity_model(activity, names, temperature),
        tol=tol,
        pore_model="nernst_planck",
        profiles=profiles,
        temperature=temperature,
        info={**(info or {}), "X_d": x_feed},
        label=label,
    )


def solve_cases(
    c_feed: np.ndarray,
    jv: np.ndarray,
    pore_props: PoreIons,
    dx_e: float,
    x_feed: np.ndarray,
    *,
    film: Film | None,
    n_cells: int,
    model: ActivityModel | None,
    tol: float,
    pore_model: str,
    profiles: bool,
    temperature: float,
    info: dict,
    label: str,
) -> Result:
    """Solve N validated feeds ``c_feed`` (N, d) mol/m³ × M fluxes ``jv`` (M,) m/s for given per-ion pore
    coefficients ``pore_props`` (K_c, K_d·D, ln φ of :class:`PoreIons`), pore length ``dx_e`` (m) and
    charge ``x_feed`` (N,) mol/m³ per feed — the part of :func:`solve` shared with other models of the
    same extended Nernst–Planck form (:func:`solve_transport`).
    ``info`` entries are added to the result's; ``label`` names the model in warnings."""
    n, m, d = len(c_feed), len(jv), len(pore_props.species)
    names = pore_props.species
    cases_c, cases_j, cases_x = np.repeat(c_feed, m, axis=0), np.tile(jv, n), np.repeat(x_feed, m)
    b = n * m
    slab = Slab(dx_e)
    n_nodes = (film.n_cells if film is not None else 0) + n_cells + 1
    permeate, surface = np.full((b, d), np.nan), np.full((b, d), np.nan)
    converged, iterations, residual = np.zeros(b, bool), np.zeros(b, int), np.full(b, np.nan)
    pore_c, pore_psi, perm_psi = (
        np.full((b, n_cells + 1, d), np.nan),
        np.full((b, n_cells + 1), np.nan),
        np.full(b, np.nan),
    )

    def run_chunk(idx: np.ndarray) -> None:
        chain = build_chain(
            cases_c[idx], cases_j[idx], pore_props, slab, film, n_cells, X=cases_x[idx], pore_model=pore_model
        )
        st, conv, its, res = _solve_chain(chain, model, tol)
        c_p = case_permeate(chain, st, cases_c[idx])[0]
        conv &= np.isfinite(c_p).all(axis=1)
        keep = idx[conv]
        permeate[keep] = c_p[conv]
        surface[keep] = (
            np.where(chain.mask, np.exp(st.U[:, chain.n_film - 1]), 0.0)[conv] if film is not None else cases_c[keep]
        )
        pore_c[keep] = np.where(chain.mask[:, None], np.exp(st.U[:, chain.pore]), 0.0)[conv]
        pore_psi[keep], perm_psi[keep] = st.Psi[conv, chain.pore], st.psi_p[conv]
        converged[idx], iterations[idx], residual[idx] = conv, its, res

    chunks = np.array_split(np.arange(b), max(1, -(-b // CHUNK)))
    if len(chunks) == 1:
        run_chunk(chunks[0])
    else:
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(chunks))) as pool:
            list(pool.map(run_chunk, chunks))  # numpy releases the GIL inside its loops
    n_failed = int((~converged).sum())
    if n_failed:
        warnings.warn(
            f"{label}: {n_failed} of {b} cases did not converge (NaN outputs, converged=False)",
            ConvergenceWarning,
            stacklevel=3,
        )
    volts = thermal_voltage(temperature)
    prof = (
        Profiles(
            np.linspace(0.0, dx_e, n_cells + 1),
            pore_c.reshape(n, m, n_cells + 1, d),
            volts * pore_psi.reshape(n, m, -1),
            volts * perm_psi.reshape(n, m),
        )
        if profiles
        else None
    )
    info = {
        "iterations": iterations.reshape(n, m),
        "residual": residual.reshape(n, m),
        "n_failed": n_failed,
        "n_cells": n_cells,
        "n_nodes": n_nodes,
        **info,
    }
    return Result(
        names, c_feed, jv, permeate.reshape(n, m, d), surface.reshape(n, m, d), converged.reshape(n, m), info, prof
    )
