"""Hindrance factors K_c (convection) and K_d (diffusion) of a hard sphere in a cylindrical pore.

λ = r_s / r_p is the ratio of the solute (Stokes) radius to the pore radius. For
λ ≥ 1 the solute cannot enter the pore: both factors are 0 and the steric
partition coefficient is 0 (full exclusion, rejection 1). Sources are chosen by
name from :data:`HINDRANCE`; the default is ``"bowen_welfoot_2002"``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

DEFAULT_HINDRANCE = "bowen_welfoot_2002"


def steric_partition(lam: ArrayLike) -> np.ndarray:
    """Steric partition coefficient φ_S = (1 − λ)² for λ < 1, else 0 (dimensionless)."""
    lam = np.asarray(lam, dtype=float)
    return np.where(lam < 1.0, (1.0 - np.minimum(lam, 1.0)) ** 2, 0.0)


def bowen_welfoot_2002(lam: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(K_c, K_d) of Bowen & Welfoot, Chem. Eng. Sci. 57 (2002) 1121, eqs. for a centreline sphere.

    K_d = 1 − 2.30λ + 1.154λ² + 0.224λ³,
    K_c = (2 − φ)(1 + 0.054λ − 0.988λ² + 0.441λ³), φ = (1 − λ)².
    The polynomials are fitted to the Bungay–Brenner / Deen centreline results for
    0 ≤ λ ≤ 0.8 and are used up to λ < 1 here (beyond 0.8 they are extrapolations:
    K_d stays ≈ 0.08 at λ → 1 instead of vanishing).
    """
    lam = np.asarray(lam, dtype=float)
    phi = steric_partition(lam)
    k_d = 1.0 - 2.30 * lam + 1.154 * lam**2 + 0.224 * lam**3
    k_c = (2.0 - phi) * (1.0 + 0.054 * lam - 0.988 * lam**2 + 0.441 * lam**3)
    return _excluded(lam, k_c, k_d)


def dechadilok_deen_2006(lam: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(K_c, K_d) of Dechadilok & Deen, Ind. Eng. Chem. Res. 45 (2006) 6953 (as used by WaterTAP).

    Centreline-averaged fits over the whole cross-section, valid for 0 ≤ λ ≤ 0.95:
    H = φK_d = 1 + (9/8)λ ln λ − 1.56034λ + 0.528155λ² + 1.91521λ³ − 2.81903λ⁴
    + 0.270788λ⁵ + 1.10115λ⁶ − 0.435933λ⁷;
    K_c = (1 + 3.867λ − 1.907λ² − 0.834λ³) / (1 + 1.867λ − 0.741λ²).
    For 0.95 < λ < 1 the lubrication limit K_d = 0.984((1 − λ)/λ)^(5/2) is used.
    """
    lam = np.asarray(lam, dtype=float)
    x = np.clip(lam, 1e-12, 0.999999)
    h = (
        1.0
        + 9.0 / 8.0 * x * np.log(x)
        - 1.56034 * x
        + 0.528155 * x**2
        + 1.91521 * x**3
        - 2.81903 * x**4
        + 0.270788 * x**5
        + 1.10115 * x**6
        - 0.435933 * x**7
    )
    k_d = np.where(lam <= 0.95, h / (1.0 - x) ** 2, 0.984 * ((1.0 - x) / x) ** 2.5)
    k_d = np.where(lam > 0.0, k_d, 1.0)
    k_c = (1.0 + 3.867 * lam - 1.907 * lam**2 - 0.834 * lam**3) / (1.0 + 1.867 * lam - 0.741 * lam**2)
    return _excluded(lam, k_c, k_d)


def _excluded(lam: np.ndarray, k_c: np.ndarray, k_d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inside = lam < 1.0
    return np.where(inside, k_c, 0.0), np.where(inside, k_d, 0.0)


#: Hindrance-factor sources by name: λ → (K_c, K_d).
HINDRANCE: dict[str, Callable[[ArrayLike], tuple[np.ndarray, np.ndarray]]] = {
    "bowen_welfoot_2002": bowen_welfoot_2002,
    "dechadilok_deen_2006": dechadilok_deen_2006,
}


def hindrance(lam: ArrayLike, source: str = DEFAULT_HINDRANCE) -> tuple[np.ndarray, np.ndarray]:
    """(K_c, K_d) for λ = r_s/r_p from the named source in :data:`HINDRANCE`."""
    try:
        fn = HINDRANCE[source]
    except KeyError:
        raise ValueError(f"unknown hindrance source {source!r}; choose one of {', '.join(HINDRANCE)}") from None
    lam = np.asarray(lam, dtype=float)
    if np.any(~np.isfinite(lam) | (lam < 0)):
        raise ValueError(f"λ = r_s/r_p must be finite and ≥ 0, got {lam}")
    return fn(lam)
