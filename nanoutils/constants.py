"""Physical constants in SI units, defined once for the whole package.

Values from CODATA 2018 (Tiesinga et al., Rev. Mod. Phys. 93, 025010 (2021)): N_A, k_B and e
are exact by the 2019 SI definition; F = N_A e and R = N_A k_B are given to the digits CODATA
lists, ε₀ is the CODATA recommended value. The relative permittivity of water at 25 °C is
Malmberg & Maryott (1956), J. Res. Natl. Bur. Stand. 56, 1 (the value DSPM-DE studies use).
"""

from __future__ import annotations

AVOGADRO = 6.02214076e23  # N_A, 1/mol (exact)
BOLTZMANN = 1.380649e-23  # k_B, J/K (exact)
ELEMENTARY_CHARGE = 1.602176634e-19  # e, C (exact)
FARADAY = 96485.33212  # F = N_A e, C/mol
GAS_CONSTANT = 8.314462618  # R = N_A k_B, J/(mol K)
VACUUM_PERMITTIVITY = 8.8541878128e-12  # ε₀, F/m
EPS_WATER_25C = 78.54  # ε_b, relative permittivity of bulk water at 25 °C


def thermal_voltage(temperature: float) -> float:
    """RT/F in volts at ``temperature`` (K): converts the dimensionless potential Fψ/RT to volts
    (0.025693 V at 298.15 K)."""
    return GAS_CONSTANT * temperature / FARADAY
