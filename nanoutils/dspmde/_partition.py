"""Interface partitioning: steric, dielectric (Born and, optionally, image forces) and Donnan.

At each pore end (eq. 8 of the paper, ideal solutions by default; see ``_activity``)
    γ_pore c_pore = γ_out c_out · φ_S · φ_D · exp(−z Δψ_D),
with φ_S = (1 − λ)², φ_D = exp(−(ΔW_B + ΔW_im) / k_B T) (ΔW_im = 0 unless image forces are
switched on, see ``_image``), an optional ion-specific partition energy ΔW_i added to them
(``partition_energy``, in k_B T; 0 by default) and the Donnan potential Δψ_D (dimensionless, F ψ / RT) fixed by
electroneutrality in the pore, Σ z c_pore + X_d = 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .. import ions
from ..constants import BOLTZMANN, ELEMENTARY_CHARGE, VACUUM_PERMITTIVITY
from ._hindrance import hindrance, steric_partition
from ._image import image_log_partition
from ._membrane import Membrane
from ._temperature import scaling


def born_log_partition(z: np.ndarray, radius: np.ndarray, eps_p: float, eps_b: float, temperature: float) -> np.ndarray:
    """ln φ_B = −ΔW_B/(k_B T), ΔW_B = z² e² / (8π ε₀ r_B) · (1/ε_p − 1/ε_b) (Born solvation energy).

    The Born radius r_B is taken equal to the Stokes radius (m), as in WaterTAP's DSPM-DE
    and Bowen & Welfoot 2002; ε_p < ε_b excludes ions, more so for high charge and small size.
    """
    dw = z**2 * ELEMENTARY_CHARGE**2 / (8 * np.pi * VACUUM_PERMITTIVITY * radius) * (1 / eps_p - 1 / eps_b)
    return -dw / (BOLTZMANN * temperature)


@dataclass(frozen=True)
class PoreIons:
    """Per-ion pore properties for ``species`` (arrays of length d, SI): charge ``z``, bulk
    diffusivity ``D`` (m²/s), ``lam`` = r_s/r_p, hindrance ``K_c``, ``K_d``, and
    ``ln_phi`` = ln(φ_S φ_B) (−inf where λ ≥ 1: fully excluded ions)."""

    species: tuple[str, ...]
    z: np.ndarray
    D: np.ndarray
    lam: np.ndarray
    K_c: np.ndarray
    K_d: np.ndarray
    ln_phi: np.ndarray

    @property
    def enters(self) -> np.ndarray:
        """True for ions that can enter the pore (λ < 1)."""
        return np.isfinite(self.ln_phi)


class PartitionEnergyError(ValueError):
    """An invalid ion-specific partition energy; the message names the ion and the value."""


def partition_energies(species: Sequence[str], partition_energy: Mapping[str, float] | None) -> np.ndarray:
    """ΔW_i / k_B T (d,) for ``species`` from a mapping ion → ΔW (k_B T; ions not named get 0). Positive
    ΔW excludes the ion from the pore, negative ΔW draws it in."""
    given = {}
    for ion, value in (partition_energy or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise PartitionEnergyError(f"partition energy of {ion} must be a finite number (k_B T), got {value!r}")
        given[ions.canonical(ion)] = float(value)
    return np.array([given.get(ions.canonical(s), 0.0) for s in species])


def pore_ions(
    species: Sequence[str],
    membrane: Membrane,
    temperature: float,
    *,
    image_forces: bool = False,
    temperature_model: str = "none",
    partition_energy: Mapping[str, float] | None = None,
) -> PoreIons:
    """Steric/dielectric partitioning and hindrance factors of ``species`` in ``membrane`` at ``temperature`` (K).

    ``image_forces``: add the cylindrical-pore image-force energy with ``membrane.eps_m`` to the
    Born term. ``temperature_model`` (a key of ``TEMPERATURE_MODELS``) scales the 25 °C diffusivities
    and ε_b to ``temperature``. ``partition_energy``: ion → ΔW_i (k_B T) added to the Born energy,
    ln φ_i −= ΔW_i (:func:`partition_energies`).
    """
    d_ratio, eps_ratio = scaling(temperature_model, temperature)
    table = [ions.get(s) for s in species]
    z = np.array([i.z for i in table], dtype=float)
    r_s = np.array([i.stokes_radius for i in table])
    lam = r_s / membrane.r_p
    k_c, k_d = hindrance(lam, membrane.hindrance)
    eps_b = membrane.eps_b * eps_ratio
    with np.errstate(divide="ignore"):
        ln_phi = np.log(steric_partition(lam)) + born_log_partition(z, r_s, membrane.eps_p, eps_b, temperature)
    if image_forces:
        ln_phi = ln_phi + image_log_partition(z, membrane.r_p, membrane.eps_p, membrane.eps_m, temperature)
    if partition_energy:
        ln_phi = ln_phi - partition_energies(species, partition_energy)
    diff = np.array([i.diffusivity for i in table]) * d_ratio
    return PoreIons(tuple(i.name for i in table), z, diff, lam, k_c, k_d, ln_phi)


def donnan_potential(
    c_out: np.ndarray,
    z: np.ndarray,
    ln_phi: np.ndarray,
    X_d: float | np.ndarray,
    *,
    tol: float = 1e-13,
    maxiter: int = 200,
) -> np.ndarray:
    """Dimensionless Donnan potential Δψ_D (…,) with Σ z c_out φ e^{−z Δψ_D} + X_d = 0.

    ``c_out`` (…, d) in mol/m³; ``ln_phi`` (d,) or (…, d), −inf for excluded ions. Solved by
    safeguarded Newton on a bracket (Σ z c(ψ) is strictly decreasing in ψ). Returns NaN where
    no root exists (no counter-ion can enter to balance X_d).
    """
    c_out = np.asarray(c_out, dtype=float)
    ln_a = np.where(c_out > 0, np.log(np.where(c_out > 0, c_out, 1.0)), -np.inf) + ln_phi
    X = np.broadcast_to(np.asarray(X_d, dtype=float), c_out.shape[:-1])
    lo = np.full(X.shape, -50.0)
    hi = np.full(X.shape, 50.0)
    psi = np.zeros(X.shape)
    for _ in range(maxiter):
        expo = np.clip(ln_a - z * psi[..., None], -700, 700)
        c = np.exp(expo)
        f = c @ z + X
        df = -(c @ z**2)
        lo = np.where(f > 0, psi, lo)
        hi = np.where(f < 0, psi, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = psi - f / df
        bad = ~np.isfinite(step) | (step <= lo) | (step >= hi)
        new = np.where(bad, 0.5 * (lo + hi), step)
        if np.all(np.abs(new - psi) < tol):
            psi = new
            break
        psi = new
    expo = np.clip(ln_a - z * psi[..., None], -700, 700)
    f = np.exp(expo) @ z + X
    scale = np.exp(expo) @ np.abs(z) + np.abs(X)
    return np.where(np.abs(f) <= 1e-9 * np.maximum(scale, 1e-300), psi, np.nan)


MECHANISMS = ("steric", "dielectric", "image", "Donnan")


def partition_terms(
    c_feed: np.ndarray,
    species: Sequence[str],
    membrane: Membrane,
    temperature: float = 298.15,
    *,
    image_forces: bool = False,
) -> dict[str, np.ndarray]:
    """Each exclusion mechanism's share of the feed-side partition coefficient, as ln k (d,) per mechanism.

    ln(c_pore/c_feed) = ln φ_S (steric) + ln φ_B (dielectric, Born) + ln φ_im (image forces; 0 unless
    ``image_forces``) − z Δψ_D (Donnan, with X_d = ``membrane.X_d`` and the other terms in place), ideal
    solution, at the membrane's feed side with concentrations ``c_feed`` (d,) mol/m³. Keys:
    :data:`MECHANISMS` and ``"total"``; −inf for an ion that cannot enter (λ ≥ 1), NaN for Donnan when no
    counter-ion can enter.
    """
    pore = pore_ions(species, membrane, temperature)
    table = [ions.get(s) for s in species]
    r_s = np.array([i.stokes_radius for i in table])
    with np.errstate(divide="ignore"):
        terms = {
            "steric": np.log(steric_partition(pore.lam)),
            "dielectric": born_log_partition(pore.z, r_s, membrane.eps_p, membrane.eps_b, temperature),
        }
    terms["image"] = (
        image_log_partition(pore.z, membrane.r_p, membrane.eps_p, membrane.eps_m, temperature)
        if image_forces
        else np.zeros(len(species))
    )
    ln_phi = terms["steric"] + terms["dielectric"] + terms["image"]
    terms["Donnan"] = -pore.z * donnan_potential(np.asarray(c_feed, float), pore.z, ln_phi, membrane.X_d)
    terms["total"] = ln_phi + terms["Donnan"]
    return terms
