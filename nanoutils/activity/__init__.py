"""Activity coefficients of the ion table's species: ``ideal``, ``davies`` and ``pitzer``.

The paper's DSPM-DE (Appendix A.2, eq. 8) partitions ions with Pitzer–Kim activity
coefficients. Models, chosen by name from :data:`MODELS`:

- ``pitzer`` — Pitzer's equations with the Pitzer & Kim (1974) mixing terms θ, ψ and
  the unsymmetrical ^Eθ terms (Pitzer 1975), in the form of Harvie, Møller & Weare (1984)
  as PHREEQC implements it; parameters from PHREEQC's ``pitzer.dat`` plus Pitzer &
  Mayorga (1973) for NH₄⁺, F⁻, NO₃⁻ salts (``data/pitzer/``), 0–100 °C;
- ``davies`` — ln γ = −3A^φ z² (√I/(1 + √I) − 0.3 I), sharing Pitzer's limiting slope;
- ``ideal`` — γ = 1.

All functions take molalities (mol/kg) shaped (…, d) for ``species`` (names or
aliases of the ion table; default: every species in table order) and work on
whole batches at once.

>>> import numpy as np
>>> gamma = coefficients(np.array([0.1, 0.1]), ("Na+", "Cl-"))          # Pitzer, 25 °C
>>> round(float(mean_coefficient(np.log(gamma), ("Na+", "Cl-"), "NaCl")), 3)
0.778
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .. import ions
from ._pitzer import PitzerResult, e_theta, j_function, parameter_table
from ._pitzer import pitzer as _pitzer_model
from ._water import TemperatureError, check_temperature, debye_huckel_aphi, water_density, water_permittivity

__all__ = [
    "MODELS",
    "ActivityError",
    "UnknownModelError",
    "MolalityValueError",
    "ShapeError",
    "TemperatureError",
    "PitzerResult",
    "coefficients",
    "ln_coefficients",
    "osmotic_coefficient",
    "mean_coefficient",
    "ionic_strength",
    "molar_to_molal",
    "molal_to_molar",
    "pitzer",
    "debye_huckel_aphi",
    "water_density",
    "water_permittivity",
    "e_theta",
    "j_function",
    "parameter_table",
]


class ActivityError(ValueError):
    """Bad input to an activity model; the message names the culprit."""


class UnknownModelError(ActivityError):
    """A model name that is not in :data:`MODELS`."""


class MolalityValueError(ActivityError):
    """A molality or concentration that is negative, NaN or infinite."""


class ShapeError(ActivityError):
    """An array whose last axis does not match the species list."""


def _ideal_ln(m: np.ndarray, species: tuple[str, ...], temperature: float) -> np.ndarray:
    return np.zeros_like(m)


def _davies_ln(m: np.ndarray, species: tuple[str, ...], temperature: float) -> np.ndarray:
    z = ions.charges(species)
    i = (0.5 * m @ z**2)[..., None]
    sq = np.sqrt(i)
    return -3.0 * debye_huckel_aphi(temperature) * z**2 * (sq / (1.0 + sq) - 0.3 * i)


def _pitzer_ln(m: np.ndarray, species: tuple[str, ...], temperature: float) -> np.ndarray:
    return _pitzer_model(m, species, temperature).ln_gamma


#: Activity models by name: f(molality (…, d) mol/kg, canonical species, T in K) → ln γ (…, d).
MODELS: dict[str, Callable[[np.ndarray, tuple[str, ...], float], np.ndarray]] = {
    "ideal": _ideal_ln,
    "davies": _davies_ln,
    "pitzer": _pitzer_ln,
}


def _species(species: Iterable[str] | None) -> tuple[str, ...]:
    if species is None:
        return ions.species()
    if isinstance(species, str):
        raise ActivityError(f"species must be a sequence of ion names, got the string {species!r}")
    names = tuple(ions.canonical(s) for s in species)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ActivityError(f"species given twice: {dupes}")
    return names


def _check(values: ArrayLike, names: tuple[str, ...], what: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise MolalityValueError(f"{what} is not numeric: {values!r}") from None
    if arr.ndim == 0 or arr.shape[-1] != len(names):
        raise ShapeError(
            f"{what} has shape {arr.shape}; its last axis must have {len(names)} entries, one per species {names}"
        )
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        idx = tuple(int(k) for k in np.argwhere(bad)[0])
        raise MolalityValueError(
            f"{what} of {names[idx[-1]]} at index {idx} is {float(arr[idx])!r}; it must be finite and ≥ 0"
        )
    return arr


def _model(name: str) -> Callable[[np.ndarray, tuple[str, ...], float], np.ndarray]:
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise UnknownModelError(f"unknown activity model {name!r}; known: {', '.join(MODELS)}") from None


def ln_coefficients(
    molality: ArrayLike, species: Iterable[str] | None = None, model: str = "pitzer", temperature: float = 298.15
) -> np.ndarray:
    """ln γ_i (…, d) for molalities (…, d) in mol/kg at ``temperature`` (K), model chosen by name."""
    names = _species(species)
    fn = _model(model)
    m = _check(molality, names, "molality")
    return fn(m, names, check_temperature(temperature))


def coefficients(
    concentration: ArrayLike,
    species: Iterable[str] | None = None,
    model: str = "pitzer",
    temperature: float = 298.15,
    units: Literal["mol/kg", "mol/m3"] = "mol/kg",
) -> np.ndarray:
    """Activity coefficients γ_i (…, d) of ``species`` at ``temperature`` (K).

    ``concentration`` is a molality (``units="mol/kg"``, default) or a molar concentration
    in mol/m³ (``units="mol/m3"``, converted with :func:`molar_to_molal`).
    """
    names = _species(species)
    if units == "mol/m3":
        c = _check(concentration, names, "concentration")
        concentration = molar_to_molal(c, temperature)
    elif units != "mol/kg":
        raise ActivityError(f"unknown concentration units {units!r}; use 'mol/kg' or 'mol/m3'")
    return np.exp(ln_coefficients(concentration, names, model, temperature))


def pitzer(
    molality: ArrayLike, species: Iterable[str] | None = None, temperature: float = 298.15, *, macinnes: bool = False
) -> PitzerResult:
    """The full Pitzer result — ln γ (…, d), osmotic coefficient φ (…), ionic strength (…) — for molalities in mol/kg.

    ``macinnes=True`` rescales single-ion values so that γ_Cl⁻ = γ±(KCl) at the same ionic
    strength, as PHREEQC reports them; neutral combinations (γ±, φ) are unaffected.
    """
    names = _species(species)
    return _pitzer_model(_check(molality, names, "molality"), names, check_temperature(temperature), macinnes=macinnes)


def osmotic_coefficient(
    molality: ArrayLike, species: Iterable[str] | None = None, temperature: float = 298.15
) -> np.ndarray:
    """Pitzer osmotic coefficient φ (…) of the solution; 1 for pure water."""
    return pitzer(molality, species, temperature).osmotic


def ionic_strength(molality: ArrayLike, species: Iterable[str] | None = None) -> np.ndarray:
    """Ionic strength I = ½ Σ m_i z_i² (mol/kg), shape (…)."""
    names = _species(species)
    return 0.5 * _check(molality, names, "molality") @ ions.charges(names) ** 2


def mean_coefficient(ln_gamma: ArrayLike, species: Iterable[str] | None, salt: str) -> np.ndarray:
    """Mean activity coefficient γ± = exp(Σ ν_i ln γ_i / Σ ν_i) of a neutral ``salt`` (e.g. ``"Na2SO4"``)."""
    names = _species(species)
    lg = np.asarray(ln_gamma, dtype=float)
    stoich = ions.parse_salt(salt)
    missing = [ion for ion in stoich if ion not in names]
    if missing:
        raise ActivityError(f"salt {salt!r} needs {missing}, not among species {names}")
    nu = sum(stoich.values())
    return np.exp(sum(n * lg[..., names.index(ion)] for ion, n in stoich.items()) / nu)


def molar_to_molal(concentration: ArrayLike, temperature: float = 298.15) -> np.ndarray:
    """mol/m³ → mol/kg for dilute solutions: m = c / ρ_w(T).

    Assumes each m³ of solution holds ρ_w(T) kg of water (997 kg at 25 °C), i.e. the
    solutes' own volume and mass are neglected; the error is O(c): ≈ 1 % at seawater
    salinity (35 g/kg), far less at nanofiltration feed concentrations.
    """
    return np.asarray(concentration, dtype=float) / water_density(temperature)


def molal_to_molar(molality: ArrayLike, temperature: float = 298.15) -> np.ndarray:
    """mol/kg → mol/m³, the inverse of :func:`molar_to_molal` (same dilute assumption)."""
    return np.asarray(molality, dtype=float) * water_density(temperature)
