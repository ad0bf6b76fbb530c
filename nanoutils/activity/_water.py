"""Properties of pure liquid water at 1 atm that the activity models need.

Density from Wagner & Pruß (2002), J. Phys. Chem. Ref. Data 31, 387, eq. 2.6
(saturated liquid; at 1 atm the difference is < 1e-4 relative below 100 °C).
Relative permittivity from Bradley & Pitzer (1979), J. Phys. Chem. 83, 1599, at
P = 1.01325 bar. The Debye–Hückel osmotic slope follows from both:
A^φ = (1/3) (2π N_A ρ_w)^½ (e² / (4π ε₀ ε_r k_B T))^{3/2}, 0.3914 kg^½ mol^-½
at 25 °C — the same construction PHREEQC uses (``calc_dielectrics``).
"""

from __future__ import annotations

import math

from ..constants import AVOGADRO, BOLTZMANN, ELEMENTARY_CHARGE, VACUUM_PERMITTIVITY

T_MIN, T_MAX = 273.15, 373.15  # K: liquid water at 1 atm


class TemperatureError(ValueError):
    """A temperature outside the liquid range of water at 1 atm, or not a number."""


def check_temperature(temperature: float) -> float:
    """``temperature`` (K) as a float, checked to lie in [273.15, 373.15] K."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise TemperatureError(f"temperature must be a number in K, got {temperature!r}") from None
    if not (T_MIN <= t <= T_MAX):
        raise TemperatureError(f"temperature {t!r} K is outside the liquid range {T_MIN}–{T_MAX} K at 1 atm")
    return t


def water_density(temperature: float = 298.15) -> float:
    """Density of pure water (kg/m³) at ``temperature`` (K); 997.0 kg/m³ at 25 °C."""
    t = check_temperature(temperature)
    th = 1.0 - t / 647.096
    b = (1.99274064, 1.09965342, -0.510839303, -1.75493479, -45.5170352, -6.7469445e5)
    powers = (1 / 3, 2 / 3, 5 / 3, 16 / 3, 43 / 3, 110 / 3)
    return 322.0 * (1.0 + sum(bi * th**p for bi, p in zip(b, powers, strict=True)))


def water_permittivity(temperature: float = 298.15) -> float:
    """Relative permittivity ε_r of pure water at ``temperature`` (K) and 1 atm; 78.4 at 25 °C."""
    t = check_temperature(temperature)
    d1000 = 342.79 * math.exp(t * (-5.0866e-3 + t * 9.469e-7))
    c = -2.0525 + 3115.9 / (t - 182.89)
    b = -8032.5 + 4.2142e6 / t + 2.1417 * t
    return d1000 + c * math.log((b + 1.01325) / (b + 1000.0))


def debye_huckel_aphi(temperature: float = 298.15) -> float:
    """Debye–Hückel osmotic coefficient slope A^φ (kg^½ mol^-½) at ``temperature`` (K)."""
    t = check_temperature(temperature)
    bjerrum = ELEMENTARY_CHARGE**2 / (4 * math.pi * VACUUM_PERMITTIVITY * water_permittivity(t) * BOLTZMANN * t)  # m
    return math.sqrt(2 * math.pi * AVOGADRO * water_density(t) * bjerrum**3) / 3.0
