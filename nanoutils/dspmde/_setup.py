"""Validated inputs → the discretised chain and its equilibrium starting point."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from .. import ions
from ._discrete import CELL, PART_IN, PART_OUT, Chain, State
from ._film import Film
from ._membrane import Membrane, MembraneError
from ._partition import PoreIons, donnan_potential

#: Pore transport models by name: the extended Nernst–Planck equation integrated across the pore
#: on ``n_cells`` exponentially fitted (Scharfetter–Gummel) cells, or one finite-difference element
#: with arithmetic-mean concentrations as in WaterTAP's NanofiltrationDSPMDE0D.
PORE_MODELS: dict[str, str] = {
    "nernst_planck": "extended Nernst–Planck integrated on n_cells Scharfetter–Gummel cells",
    "single_element": "one finite-difference element with mean concentrations (WaterTAP DSPMDE0D)",
}


class FluxError(ValueError):
    """A permeate flux that is negative, NaN or infinite; the message names it."""


def as_concentrations(feeds, species: Sequence[str] | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Feeds as a dense (N, d) array in mol/m³ and the d canonical species names.

    ``feeds``: one :class:`~nanoutils.ions.Feed` (or mapping), a list of them, or a dense
    (N, d) / (d,) array of concentrations with ``species`` naming its columns (0 = absent).
    Dense rows are checked like a Feed: finite, ≥ 0, not empty, electroneutral.
    """
    if isinstance(feeds, Mapping):
        feeds = [feeds]
    if isinstance(feeds, np.ndarray) or (isinstance(feeds, Sequence) and feeds and not isinstance(feeds[0], Mapping)):
        if species is None:
            raise ions.CompositionError("a dense concentration array needs species=[ion names of its columns]")
        names = tuple(ions.canonical(s) for s in species)
        c = np.atleast_2d(np.asarray(feeds, dtype=float))
        if c.ndim != 2 or c.shape[1] != len(names):
            raise ions.CompositionError(f"concentration array of shape {c.shape} does not match {len(names)} species")
        _check_dense(c, names)
        return c, names
    return ions.stack(feeds, species)


def _check_dense(c: np.ndarray, names: tuple[str, ...]) -> None:
    bad = ~np.isfinite(c) | (c < 0)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ions.ConcentrationValueError(
            f"feed {row}: concentration of {names[col]} must be finite and ≥ 0, got {c[row, col]}"
        )
    empty = np.flatnonzero(c.sum(axis=1) == 0)
    if empty.size:
        raise ions.CompositionError(f"feed {empty[0]} has no ions (all concentrations are 0)")
    z = ions.charges(names)
    net, scale = c @ z, c @ np.abs(z)
    off = np.flatnonzero(np.abs(net) > ions.NEUTRALITY_RTOL * scale)
    if off.size:
        i = off[0]
        raise ions.ElectroneutralityError(
            f"feed {i} is not electroneutral: Σ z c = {net[i]:+.6g} mol/m³ "
            f"(relative {abs(net[i]) / scale[i]:.3g} > {ions.NEUTRALITY_RTOL:g})"
        )


def as_fluxes(fluxes) -> np.ndarray:
    """Permeate fluxes (M,) in m/s, each finite and ≥ 0."""
    jv = np.atleast_1d(np.asarray(fluxes, dtype=float))
    if jv.ndim != 1:
        raise FluxError(f"fluxes must be a scalar or a 1-D array, got shape {jv.shape}")
    bad = ~np.isfinite(jv) | (jv < 0)
    if bad.any():
        raise FluxError(f"permeate flux must be finite and ≥ 0 m/s, got {jv[bad][0]!r}")
    return jv


def check_temperature(temperature: float) -> float:
    """Absolute temperature (K), finite and > 0."""
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0 K, got {temperature!r}")
    return float(temperature)


def pore_mesh(dx_e: float, n_cells: int) -> np.ndarray:
    """Node positions (n_cells + 1,) in m across the pore (uniform; grading towards the exit
    was tried and did not reduce the error, which is O(h²) throughout the pore)."""
    return np.linspace(0.0, dx_e, n_cells + 1)


def check_pore_model(pore_model: str, n_cells: int) -> int:
    """The number of pore cells for ``pore_model`` (a key of :data:`PORE_MODELS`): ``n_cells`` or 1."""
    if pore_model not in PORE_MODELS:
        raise ValueError(f"unknown pore model {pore_model!r}; choose one of {', '.join(PORE_MODELS)}")
    if not isinstance(n_cells, int) or n_cells < 1:
        raise ValueError(f"n_cells must be an integer ≥ 1, got {n_cells!r}")
    return 1 if pore_model == "single_element" else n_cells


class Slab(NamedTuple):
    """What a chain needs of a membrane besides the per-ion :class:`PoreIons`: the pore length
    ``dx_e`` (m) and the default charge ``X_d`` (mol/m³); used by models other than DSPM-DE."""

    dx_e: float
    X_d: float = 0.0


def build_chain(
    c_feed: np.ndarray,
    jv: np.ndarray,
    pore: PoreIons,
    membrane: Membrane | Slab,
    film: Film | None,
    n_cells: int,
    *,
    X: np.ndarray | None = None,
    pore_model: str = "nernst_planck",
) -> Chain:
    """The discretised film (if any) and pore for B = len(jv) cases with feeds ``c_feed`` (B, d);
    ``X`` (B,) membrane charge per case in mol/m³ (default ``membrane.X_d`` for all)."""
    if not isinstance(membrane, (Membrane, Slab)):
        raise MembraneError(f"membrane must be a dspmde.Membrane, got {membrane!r}")
    n_cells = check_pore_model(pore_model, n_cells)
    d = len(pore.species)
    enters = pore.enters
    h = np.diff(pore_mesh(membrane.dx_e, n_cells))[:, None]
    s_pore = np.where(enters, h / np.where(enters, pore.K_d * pore.D, 1.0), 0.0)
    n_film = film.n_cells if film is not None else 0
    s_film = 1.0 / (film.coefficients(pore.species) * n_film) if film is not None else np.zeros(d)
    kind = np.array([CELL] * n_film + [PART_IN] + [CELL] * n_cells + [PART_OUT])
    s = np.concatenate([np.tile(s_film, (n_film, 1)), np.zeros((1, d)), s_pore, np.zeros((1, d))])
    k_c = np.concatenate([np.ones((n_film, d)), np.zeros((1, d)), np.tile(pore.K_c, (n_cells, 1)), np.zeros((1, d))])
    mask = (c_feed > 0) & enters
    ln_cb = np.log(np.where(mask, c_feed, 1.0))
    ln_phi = np.repeat(np.where(mask, np.where(enters, pore.ln_phi, 0.0), 0.0)[:, None], 2, axis=1)
    b = len(c_feed)
    x_case = np.full(b, float(membrane.X_d)) if X is None else np.broadcast_to(np.asarray(X, dtype=float), (b,))
    x = np.concatenate([np.zeros((b, n_film)), np.repeat(x_case[:, None], n_cells + 1, axis=1)], axis=1)
    central = (kind == CELL) & (np.arange(kind.size) > n_film) & (pore_model == "single_element")
    return Chain(
        kind=kind,
        s=s,
        K_c=k_c,
        ln_phi=ln_phi,
        X=x,
        mask=mask,
        ln_cb=ln_cb,
        Jv=np.asarray(jv, dtype=float),
        z=pore.z,
        n_film=n_film,
        central=central,
    )


def equilibrium_state(chain: Chain) -> State:
    """The J_v → 0 solution: permeate = feed, pore at Donnan equilibrium with the feed.

    Cases without a Donnan root (no counter-ion can enter) get NaN potentials.
    """
    b, d = chain.mask.shape
    ln_in = np.where(chain.mask, chain.ln_phi[:, 0], -np.inf)
    psi_d = donnan_potential(np.where(chain.mask, np.exp(chain.ln_cb), 0.0), chain.z, ln_in, chain.X[:, -1])
    pore = np.where(chain.mask, chain.ln_cb + chain.ln_phi[:, 0] - chain.z * psi_d[:, None], 0.0)
    U = np.concatenate(
        [
            np.repeat(chain.ln_cb[:, None], chain.n_film, axis=1),
            np.repeat(pore[:, None], chain.n_nodes - chain.n_film, axis=1),
        ],
        axis=1,
    )
    Psi = np.concatenate(
        [np.zeros((b, chain.n_film)), np.repeat(psi_d[:, None], chain.n_nodes - chain.n_film, axis=1)], axis=1
    )
    return State(U, Psi, chain.ln_cb.copy(), np.zeros(b))
