"""Image-force (dielectric) exclusion of an ion on the axis of a cylindrical pore.

A point charge ze on the axis of an infinitely long cylinder of radius r_p, filled with a
medium of relative permittivity ε_p and surrounded by the membrane matrix ε_m, carries the
excess self-energy (solution of Laplace's equation in cylindrical harmonics, m = 0 mode)

    ΔW_im = z² e² / (4π² ε₀ ε_p r_p) · ∫₀^∞ (ε_p − ε_m) K₀(x) K₁(x) / (ε_p I₁(x) K₀(x) + ε_m I₀(x) K₁(x)) dx,

with I, K the modified Bessel functions. It is the κ → 0 (unscreened) limit of the
cylindrical-pore expression of Yaroshchuk, Adv. Colloid Interface Sci. 85 (2000) 193, used in
the SEDE model of Szymczyk & Fievet, J. Membr. Sci. 252 (2005) 77 (their eq. for ΔW_i,im with
the Debye screening length in the pore taken to infinity). ε_m < ε_p repels every ion (Fig. 2 of
the paper); ε_m = ε_p gives exactly 0. Screening by the pore electrolyte reduces the energy, so
this term is the upper bound of the image-force contribution (a few k_B T for a monovalent ion in
a 0.5 nm pore): a membrane fitted without it must be refitted with it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import integrate, special

from ..constants import BOLTZMANN, ELEMENTARY_CHARGE, VACUUM_PERMITTIVITY


@lru_cache(maxsize=256)
def image_integral(ratio: float) -> float:
    """∫₀^∞ (1 − r) K₀K₁ / (I₁K₀ + r I₀K₁) dx for r = ε_m/ε_p > 0 (dimensionless; 0 at r = 1).

    Exponentially scaled Bessel functions keep the integrand finite for large x; the log
    singularity at x → 0 is integrable and handled by adaptive quadrature (error < 1e-9)."""
    if ratio == 1.0:
        return 0.0

    def integrand(x: float) -> float:
        k0, k1 = special.k0e(x), special.k1e(x)
        return (1.0 - ratio) * k0 * k1 * np.exp(-2.0 * x) / (special.i1e(x) * k0 + ratio * special.i0e(x) * k1)

    value, _ = integrate.quad(integrand, 0.0, np.inf, limit=400, epsabs=1e-12, epsrel=1e-10)
    return float(value)


def image_log_partition(z: np.ndarray, r_p: float, eps_p: float, eps_m: float, temperature: float) -> np.ndarray:
    """ln φ_im = −ΔW_im/(k_B T) (dimensionless) for charges ``z`` (d,) in a pore of radius ``r_p`` (m)
    with pore and matrix permittivities ``eps_p``, ``eps_m`` (relative) at ``temperature`` (K)."""
    if eps_m <= 0 or eps_p <= 0:
        raise ValueError(f"permittivities must be > 0, got ε_p = {eps_p!r}, ε_m = {eps_m!r}")
    energy = (
        np.asarray(z, dtype=float) ** 2
        * ELEMENTARY_CHARGE**2
        / (4 * np.pi**2 * VACUUM_PERMITTIVITY * eps_p * r_p)
        * image_integral(float(eps_m / eps_p))
    )
    return -energy / (BOLTZMANN * temperature)
