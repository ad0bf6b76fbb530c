"""Temperature dependence of the DSPM-DE inputs, chosen by name from :data:`TEMPERATURE_MODELS`.

- ``"none"`` (default, the original model): ion diffusivities and ε_b keep their 25 °C values;
  the temperature enters only through k_B T (Born and image energies) and RT/F (potentials).
- ``"stokes_einstein"``: in addition D_i(T) = D_i(25 °C) · (T/298.15 K) · η(298.15 K)/η(T)
  (Stokes–Einstein with a temperature-independent Stokes radius) with the viscosity of water of
  Kestin, Sokolov & Wakeham, J. Phys. Chem. Ref. Data 7 (1978) 941 — the same source the ion
  table's Stokes radii use — and ε_b(T) = ε_b · ε_w(T)/ε_w(25 °C), ε_w from Bradley & Pitzer (1979)
  via :func:`nanoutils.activity.water_permittivity`. ε_p and ε_m are membrane properties and are
  held at their given values. Valid 5–50 °C (278.15–323.15 K); outside that range it refuses.

At 25 °C both factors are exactly 1, so the two models coincide.
"""

from __future__ import annotations

import math

from ..activity import water_permittivity

T_REF = 298.15  # K
T_RANGE = (278.15, 323.15)  # K, validity range of the "stokes_einstein" model
ETA_20C = 1.002e-3  # Pa s, Kestin et al. (1978)

#: Temperature models by name (see the module docstring).
TEMPERATURE_MODELS: dict[str, str] = {
    "none": "25 °C diffusivities and ε_b; T only in k_B T and RT/F",
    "stokes_einstein": "D ∝ T/η(T) (Kestin 1978), ε_b(T) (Bradley & Pitzer 1979); 5–50 °C",
}


class TemperatureRangeError(ValueError):
    """A temperature outside the validity range of the chosen temperature model."""


def water_viscosity(temperature: float) -> float:
    """Dynamic viscosity of liquid water at 0.1 MPa (Pa s), Kestin, Sokolov & Wakeham (1978) eq. 2:
    log10(η/η₂₀) = [1.2378(20 − t) − 1.303e-3(20 − t)² + 3.06e-6(20 − t)³ + 2.55e-8(20 − t)⁴]/(96 + t),
    t in °C, η₂₀ = 1.002 mPa s; stated for −8 to 150 °C (0.8901 mPa s at 25 °C)."""
    d = 20.0 - (temperature - 273.15)
    log_ratio = (1.2378 * d - 1.303e-3 * d**2 + 3.06e-6 * d**3 + 2.55e-8 * d**4) / (96.0 + temperature - 273.15)
    return ETA_20C * 10.0**log_ratio


def scaling(model: str, temperature: float) -> tuple[float, float]:
    """(D(T)/D(25 °C), ε_b(T)/ε_b(25 °C)) for the named model at ``temperature`` (K)."""
    if model not in TEMPERATURE_MODELS:
        raise ValueError(f"unknown temperature model {model!r}; choose one of {', '.join(TEMPERATURE_MODELS)}")
    if model == "none":
        return 1.0, 1.0
    lo, hi = T_RANGE
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and lo <= temperature <= hi):
        raise TemperatureRangeError(
            f"temperature {temperature!r} K is outside the {lo}–{hi} K (5–50 °C) "
            f"range of the {model!r} temperature model"
        )
    d_ratio = (temperature / T_REF) * (water_viscosity(T_REF) / water_viscosity(temperature))
    return d_ratio, water_permittivity(temperature) / water_permittivity(T_REF)
