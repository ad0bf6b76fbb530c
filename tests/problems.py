"""Closed-form reference problems shared by the DSPM-DE tests."""
from __future__ import annotations

import numpy as np

from nanoutils.dspmde import Membrane, pore_ions


def uncharged_rejection(phi: float, k_c: float, k_d_D: float, jv: np.ndarray, dx: float) -> np.ndarray:
    """Hindered transport of an uncharged solute (no film): R = 1 − φK_c / (1 − (1 − φK_c) e^{−Pe}),
    Pe = K_c J_v Δx / (K_d D)."""
    pe = k_c * np.asarray(jv) * dx / k_d_D
    return 1.0 - phi * k_c / (1.0 - (1.0 - phi * k_c) * np.exp(-pe))


def binary_salt_as_uncharged(cation: str, anion: str, membrane: Membrane) -> tuple[float, float, float]:
    """(φ, K_c, K_d D) of a 1:1 salt that behaves as one uncharged solute when X_d = 0 and
    ε_p = ε_b: c₊ = c₋ everywhere, so φ = √(φ₊φ₋), K_d D is the harmonic mean of the ions'
    K_d D and K_c their K_c/(K_d D)-weighted mean (eliminating the diffusion potential)."""
    p = pore_ions([cation, anion], membrane, 298.15)
    assert list(p.z) == [1.0, -1.0]
    kd_d = p.K_d * p.D
    d_s = 2.0 / (1.0 / kd_d).sum()
    k_s = d_s / 2.0 * (p.K_c / kd_d).sum()
    return float(np.sqrt(np.exp(p.ln_phi).prod())), float(k_s), float(d_s)
