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


def sdem_trace_rejection(
    jv: np.ndarray, p_trace: float, z_trace: int, p_cation: float, p_anion: float, z_cation: int, z_anion: int
) -> np.ndarray:
    """SDEM rejection of a trace ion in the field of one dominant salt (closed form, trace limit):
    c_p/c_f = 1 / [(1 − R_s)^k + J_v (1 − (1 − R_s)^{k+1}) / (R_s P_t (k + 1))], R_s = J_v/(J_v + P_s),
    k = z_t P_s (1/P₊ − 1/P₋)/(z₊ − z₋), 1/P_s = (z₊/P₋ + |z₋|/P₊)/(z₊ + |z₋|)  (k ≠ −1)."""
    jv = np.asarray(jv, dtype=float)
    p_s = (z_cation - z_anion) / (z_cation / p_anion - z_anion / p_cation)
    r_s = jv / (jv + p_s)
    k = z_trace * p_s * (1 / p_cation - 1 / p_anion) / (z_cation - z_anion)
    ratio = 1.0 / ((1 - r_s) ** k + jv * (1 - (1 - r_s) ** (k + 1)) / (r_s * p_trace * (k + 1)))
    return 1.0 - ratio
