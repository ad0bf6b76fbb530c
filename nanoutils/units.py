"""Unit conversions at the edges of the package.

Everything inside ``nanoutils`` is SI: concentrations in mol/m³, fluxes in m/s,
lengths in m, temperatures in K. These helpers convert the units people type
(mM, g/L, LMH, nm, µm, °C) to and from SI. 1 mM = 1 mol/m³.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

LMH_PER_M_S = 3.6e6  # 1 m/s = 1000 L/m² per s = 3.6e6 L m⁻² h⁻¹
_CONC_TO_MOL_M3 = {"mol/m3": 1.0, "mm": 1.0, "mmol/l": 1.0, "m": 1000.0, "mol/l": 1000.0, "um": 1e-3, "µm": 1e-3}
_LENGTH_TO_M = {"m": 1.0, "mm": 1e-3, "um": 1e-6, "µm": 1e-6, "nm": 1e-9}


def _factor(table: dict[str, float], unit: str, kind: str) -> float:
    try:
        return table[unit.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown {kind} unit {unit!r}; known: {sorted(table)}") from None


def conc_to_si(value: ArrayLike, unit: str) -> np.ndarray | float:
    """Concentration in ``unit`` (mM, mmol/L, M, mol/L, µM, mol/m3) → mol/m³."""
    return np.asarray(value, dtype=float) * _factor(_CONC_TO_MOL_M3, unit, "concentration")


def conc_from_si(value: ArrayLike, unit: str) -> np.ndarray | float:
    """Concentration in mol/m³ → ``unit``."""
    return np.asarray(value, dtype=float) / _factor(_CONC_TO_MOL_M3, unit, "concentration")


def mass_conc_to_mol_m3(g_per_l: ArrayLike, molar_mass: ArrayLike) -> np.ndarray:
    """Mass concentration in g/L (= kg/m³) → mol/m³, for a molar mass in kg/mol."""
    return np.asarray(g_per_l, dtype=float) / np.asarray(molar_mass, dtype=float)


def mol_m3_to_mass_conc(mol_m3: ArrayLike, molar_mass: ArrayLike) -> np.ndarray:
    """Concentration in mol/m³ → g/L (= kg/m³) for a molar mass in kg/mol."""
    return np.asarray(mol_m3, dtype=float) * np.asarray(molar_mass, dtype=float)


def lmh_to_m_s(lmh: ArrayLike) -> np.ndarray:
    """Volumetric flux L m⁻² h⁻¹ (LMH) → m/s."""
    return np.asarray(lmh, dtype=float) / LMH_PER_M_S


def m_s_to_lmh(m_s: ArrayLike) -> np.ndarray:
    """Volumetric flux m/s → L m⁻² h⁻¹ (LMH)."""
    return np.asarray(m_s, dtype=float) * LMH_PER_M_S


def length_to_m(value: ArrayLike, unit: str) -> np.ndarray:
    """Length in ``unit`` (nm, µm/um, mm, m) → m."""
    return np.asarray(value, dtype=float) * _factor(_LENGTH_TO_M, unit, "length")


def length_from_m(value: ArrayLike, unit: str) -> np.ndarray:
    """Length in m → ``unit``."""
    return np.asarray(value, dtype=float) / _factor(_LENGTH_TO_M, unit, "length")


def celsius_to_kelvin(t_c: ArrayLike) -> np.ndarray:
    """Temperature °C → K."""
    return np.asarray(t_c, dtype=float) + 273.15
