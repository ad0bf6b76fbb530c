"""Ion properties and validated feed compositions.

The ion table (``data/ions.csv``) gives, for each species, its charge number z,
Stokes radius (m), bulk diffusivity at 25 °C (m²/s) and molar mass (kg/mol),
each with the literature source in the CSV. A :class:`Feed` maps ion names to
concentrations in mol/m³ (= mM) and is validated on construction: known ions,
finite, non-negative and electroneutral within a stated tolerance.

>>> feed = Feed.from_salts("NaCl 10 mM + MgSO4 5 mM")
>>> dict(feed)
{'Na+': 10.0, 'Mg2+': 5.0, 'Cl-': 10.0, 'SO4-2': 5.0}
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from . import units

#: The package's copy of the data files it reads (``data/ions.csv``, ``data/pitzer/``; see its README).
PACKAGE_DATA = resources.files(__package__) / "_data"
ION_TABLE_CSV = PACKAGE_DATA / "ions.csv"

#: Feeds must satisfy |Σ z c| ≤ NEUTRALITY_RTOL · Σ |z| c (relative charge imbalance).
NEUTRALITY_RTOL = 1e-6


class CompositionError(ValueError):
    """A feed composition a user supplied is invalid; the message names the culprit."""


class UnknownIonError(CompositionError):
    """An ion (or salt) name that the ion table does not know."""


class ConcentrationValueError(CompositionError):
    """A concentration that is negative, NaN or infinite."""


class ElectroneutralityError(CompositionError):
    """A feed whose net charge exceeds the stated tolerance."""


@dataclass(frozen=True)
class Ion:
    """One species of the ion table, in SI units.

    name: canonical ASCII name (``"SO4-2"``); formula: ASCII formula without
    charge (``"SO4"``); label: pretty name; z: charge number; stokes_radius: m;
    diffusivity: bulk diffusivity at 25 °C in m²/s; molar_mass: kg/mol.
    """

    name: str
    formula: str
    label: str
    z: int
    stokes_radius: float
    diffusivity: float
    molar_mass: float


@lru_cache(maxsize=1)
def table() -> pd.DataFrame:
    """The ion table as read from ``data/ions.csv`` (units in the column names), indexed by name."""
    with ION_TABLE_CSV.open(encoding="utf-8") as fh:
        return pd.read_csv(fh, keep_default_na=False).set_index("name")


@lru_cache(maxsize=1)
def _ions() -> dict[str, Ion]:
    return {
        str(name): Ion(
            name=str(name),
            formula=row.formula,
            label=row.label,
            z=int(row.z),
            stokes_radius=float(row.stokes_radius_nm) * 1e-9,
            diffusivity=float(row.diffusivity_1e9_m2_s) * 1e-9,
            molar_mass=float(row.molar_mass_g_mol) * 1e-3,
        )
        for name, row in table().iterrows()
    }


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    out: dict[str, str] = {}
    for name, row in table().iterrows():
        for alias in [name, row.formula, *str(row.aliases).split(";")]:
            if alias:
                out[_key(alias)] = str(name)
    return out


def _key(alias: str) -> str:
    return alias.replace(" ", "").replace("(", "").replace(")", "").lower()


def species() -> tuple[str, ...]:
    """All canonical ion names, in table order (the order of every dense vector)."""
    return tuple(_ions())


def canonical(name: str) -> str:
    """Canonical name of an ion given by name or alias (``"Na"``, ``"SO4 2-"``…)."""
    try:
        return _aliases()[_key(name)]
    except KeyError:
        raise UnknownIonError(f"unknown ion {name!r}; known: {', '.join(species())}") from None


def get(name: str) -> Ion:
    """The :class:`Ion` for a name or alias."""
    return _ions()[canonical(name)]


def charges(names: Iterable[str]) -> np.ndarray:
    """Charge numbers z of the given ions, as a float array."""
    return np.array([get(n).z for n in names], dtype=float)


class Feed(Mapping[str, float]):
    """A validated feed composition: ion → concentration in mol/m³.

    Ions are stored under canonical names in table order. Raises
    :class:`UnknownIonError`, :class:`ConcentrationValueError` or
    :class:`ElectroneutralityError` (all ``ValueError``) naming the bad ion and value.
    ``rtol`` is the allowed relative charge imbalance |Σ z c| / Σ |z| c.
    """

    def __init__(self, concentrations: Mapping[str, float], *, rtol: float = NEUTRALITY_RTOL):
        merged: dict[str, float] = {}
        for raw, value in concentrations.items():
            name = canonical(raw)
            try:
                c = float(value)
            except (TypeError, ValueError):
                raise ConcentrationValueError(f"concentration of {name} is not a number: {value!r}") from None
            if not math.isfinite(c):
                raise ConcentrationValueError(f"concentration of {name} is not finite: {c}")
            if c < 0:
                raise ConcentrationValueError(f"concentration of {name} is negative: {c} mol/m³")
            if name in merged:
                raise CompositionError(f"ion {name} given twice (as {raw!r})")
            merged[name] = c
        if not merged:
            raise CompositionError("empty feed: give at least one ion")
        order = species()
        self._c = {n: merged[n] for n in sorted(merged, key=order.index)}
        self._check_neutral(rtol)

    def _check_neutral(self, rtol: float) -> None:
        z = charges(self._c)
        c = np.fromiter(self._c.values(), float)
        net, scale = float(z @ c), float(np.abs(z) @ c)
        if abs(net) > rtol * scale:
            terms = ", ".join(f"{n}: {zi * ci:+g}" for n, zi, ci in zip(self._c, z, c, strict=True))
            raise ElectroneutralityError(
                f"feed is not electroneutral: Σ z c = {net:+.6g} mol/m³ "
                f"(relative {abs(net) / scale:.3g} > tolerance {rtol:g}); z·c per ion: {terms}"
            )

    @classmethod
    def from_salts(cls, text: str, *, rtol: float = NEUTRALITY_RTOL) -> Feed:
        """Build a feed from salts, e.g. ``"NaCl 10 mM + MgSO4 5 mM"`` or ``"Na2SO4 0.01 M"``.

        Units: mM, mmol/L, M, mol/L, µM/uM, mol/m3, g/L, mg/L. Salts are split into
        ions from the ion table (``Mg(NO3)2``, ``(NH4)2SO4`` work); ions shared by
        several salts add up.
        """
        total: dict[str, float] = {}
        parts = [p for p in re.split(r"\s*[+,;]\s*(?=[A-Z(])", text.strip()) if p]
        if not parts:
            raise CompositionError(f"no salts found in {text!r}")
        for part in parts:
            m = re.fullmatch(r"(\S+)\s+([-+0-9.eE]+)\s*(\S+)", part.strip())
            if not m:
                raise CompositionError(f"cannot read {part!r}: expected 'SALT VALUE UNIT', e.g. 'NaCl 10 mM'")
            salt, value, unit = m.groups()
            stoich = parse_salt(salt)
            c_salt = _salt_conc_to_si(float(value), unit, stoich, part)
            if not math.isfinite(c_salt) or c_salt < 0:
                raise ConcentrationValueError(f"concentration of {salt} must be finite and ≥ 0, got {value} {unit}")
            for ion, n in stoich.items():
                total[ion] = total.get(ion, 0.0) + n * c_salt
        return cls(total, rtol=rtol)

    @property
    def ions(self) -> tuple[str, ...]:
        """Canonical names of the ions present, in table order."""
        return tuple(self._c)

    def vector(self, names: Iterable[str] | None = None) -> np.ndarray:
        """Concentrations (mol/m³) in the order of ``names`` (default: all species); absent ions are 0."""
        return np.array([self._c.get(canonical(n), 0.0) for n in (names or species())], dtype=float)

    def balanced_with(self, ion: str) -> Feed:
        """A copy whose ``ion`` concentration is adjusted to make Σ z c = 0 exactly."""
        name = canonical(ion)
        z = get(name).z
        rest = {n: c for n, c in self._c.items() if n != name}
        c = -float(charges(rest) @ np.fromiter(rest.values(), float)) / z if rest else 0.0
        return Feed({**rest, name: c})

    def __getitem__(self, key: str) -> float:
        return self._c[canonical(key)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._c)

    def __len__(self) -> int:
        return len(self._c)

    def __repr__(self) -> str:
        return "Feed({" + ", ".join(f"{n!r}: {c:g}" for n, c in self._c.items()) + "})"


def parse_salt(formula: str) -> dict[str, int]:
    """Stoichiometry of a neutral salt: ``"Na2SO4"`` → ``{"Na+": 2, "SO4-2": 1}``."""
    ion_formulas = sorted(((i.formula, i.name) for i in _ions().values()), key=lambda t: -len(t[0]))
    for cat_formula, cat in ion_formulas:
        if get(cat).z <= 0:
            continue
        m = re.fullmatch(rf"(?:{re.escape(cat_formula)}|\({re.escape(cat_formula)}\))(\d*)(.+)", formula)
        if not m:
            continue
        n_cat, rest = int(m.group(1) or 1), m.group(2)
        for an_formula, an in ion_formulas:
            if get(an).z >= 0:
                continue
            m2 = re.fullmatch(rf"(?:{re.escape(an_formula)}|\({re.escape(an_formula)}\))(\d*)", rest)
            if m2:
                n_an = int(m2.group(1) or 1)
                if n_cat * get(cat).z + n_an * get(an).z != 0:
                    raise CompositionError(f"salt {formula!r} is not neutral: {n_cat}×{cat} + {n_an}×{an}")
                return {cat: n_cat, an: n_an}
    raise UnknownIonError(f"cannot split salt {formula!r} into ions of the table ({', '.join(species())})")


def _salt_conc_to_si(value: float, unit: str, stoich: Mapping[str, int], where: str) -> float:
    u = unit.strip().lower()
    if u in ("g/l", "mg/l"):
        molar_mass = sum(n * get(ion).molar_mass for ion, n in stoich.items())
        return float(units.mass_conc_to_mol_m3(value * (1e-3 if u == "mg/l" else 1.0), molar_mass))
    try:
        return float(units.conc_to_si(value, unit))
    except ValueError as err:
        raise CompositionError(f"{err} in {where!r}") from None


def stack(
    feeds: Iterable[Mapping[str, float]], names: Iterable[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Dense (N, d) array of concentrations (mol/m³) for N feeds, and the d ion names.

    ``names`` defaults to the union of the feeds' ions in table order. Plain
    mappings are validated by turning them into :class:`Feed`.
    """
    checked = [f if isinstance(f, Feed) else Feed(f) for f in feeds]
    if names is None:
        present = {n for f in checked for n in f}
        names = tuple(n for n in species() if n in present)
    else:
        names = tuple(canonical(n) for n in names)
    missing = {n for f in checked for n in f} - set(names)
    if missing:
        raise CompositionError(f"feeds contain ions not in the requested species: {sorted(missing)}")
    return np.stack([f.vector(names) for f in checked]) if checked else np.zeros((0, len(names))), names
