"""The measurement CSV schema: columns, header units, errors, quantities, feed strings.

One CSV row is one measured quantity (an ion, or a neutral salt) at one permeate
flux for one feed. Columns with a physical unit are named ``<field>_<unit>``
(``Jv_um_s``, ``feed_mol_m3``…); columns outside the schema must start with
``x_`` and are carried along untouched. See ``data/measured/README.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .. import ions, units

# ---------------------------------------------------------------------------
# errors: every one names file, line (1 = header), column and value


class MeasurementError(ValueError):
    """A measurement file that does not follow the schema; names file, line, column and value."""

    def __init__(
        self,
        message: str,
        *,
        file: str = "?",
        line: int | str | None = None,
        column: str | None = None,
        value: object = None,
    ):
        self.file, self.line, self.column, self.value = file, line, column, value
        where = [f"file {file}"]
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        if value is not None:
            where.append(f"value {value!r}")
        super().__init__(", ".join(where) + ": " + message)


class MissingColumnError(MeasurementError):
    """A required column is absent."""


class ColumnNameError(MeasurementError):
    """A column the schema does not know, or a ``<field>_<unit>`` header with an unknown unit."""


class UnknownQuantityError(MeasurementError, ions.UnknownIonError):
    """A quantity or feed ion that is neither an ion of the table nor a salt of its ions."""


class MeasurementValueError(MeasurementError):
    """An empty, non-numeric, NaN, infinite or out-of-range value."""


class NonNeutralFeedError(MeasurementError, ions.ElectroneutralityError):
    """A feed composition whose net charge exceeds the tolerance."""


class DuplicateRowError(MeasurementError):
    """Two rows measure the same quantity of the same feed at the same flux (and replicate)."""


class InconsistentRowsError(MeasurementError):
    """Rows of one feed that disagree on its composition, membrane, temperature or rejection
    type, or a row whose stated R and permeate concentration disagree."""


# ---------------------------------------------------------------------------
# header units


def _scale(factor: float) -> Callable[[ArrayLike], np.ndarray]:
    return lambda v: np.asarray(v, dtype=float) * factor


_CONC = {
    tok: _scale(float(units.conc_to_si(1.0, u)))
    for tok, u in {"mol_m3": "mol/m3", "mM": "mM", "mmol_L": "mmol/L", "mol_L": "mol/L", "M": "M", "uM": "um"}.items()
}
_FLUX = {"m_s": _scale(1.0), "um_s": _scale(1e-6), "LMH": units.lmh_to_m_s}
_RATIO = {"frac": _scale(1.0), "pct": _scale(0.01)}
_TEMP = {"C": units.celsius_to_kelvin, "K": _scale(1.0)}

#: field → (unit family name, {header unit token → converter to SI}, required).
UNIT_FIELDS: dict[str, tuple[str, dict[str, Callable[[ArrayLike], np.ndarray]], bool]] = {
    "T": ("temperature", _TEMP, True),
    "feed": ("concentration", _CONC, True),
    "Jv": ("flux", _FLUX, True),
    "sigma_Jv": ("flux", _FLUX, False),
    "R": ("rejection", _RATIO, False),
    "sigma_R": ("rejection", _RATIO, False),
    "c_perm": ("concentration", _CONC, False),
    "sigma_c_perm": ("concentration", _CONC, False),
}
#: unit-free columns → required?
PLAIN_FIELDS = {
    "study": True,
    "feed_id": True,
    "membrane": True,
    "quantity": True,
    "rejection_type": True,
    "source": True,
    "replicate": False,
    "feed_salts": False,
}
REJECTION_TYPES = ("intrinsic", "observed")
EXTRA_PREFIX = "x_"


@dataclass(frozen=True)
class Header:
    """The resolved header: field → (column name, unit token), extras in file order."""

    fields: dict[str, tuple[str, str]]
    extras: tuple[str, ...]

    def to_si(self, field: str) -> Callable[[ArrayLike], np.ndarray]:
        """Converter of a unit field's values to SI (mol/m³, m/s, K, fraction)."""
        return UNIT_FIELDS[field][1][self.fields[field][1]]


def resolve_header(columns: list[str], file: str) -> Header:
    """Match CSV column names to schema fields; raise on unknown, doubled or missing columns."""
    fields: dict[str, tuple[str, str]] = {}
    extras: list[str] = []
    prefixes = sorted(UNIT_FIELDS, key=len, reverse=True)
    for col in columns:
        if col.startswith(EXTRA_PREFIX):
            extras.append(col)
            continue
        field: str | None
        if col in PLAIN_FIELDS:
            field, unit = col, ""
        else:
            field = next((p for p in prefixes if col.startswith(p + "_")), None)
            if field is None:
                raise ColumnNameError(
                    f"unknown column; schema columns are {', '.join(PLAIN_FIELDS)} and "
                    f"{', '.join(f + '_<unit>' for f in UNIT_FIELDS)}; extra columns must start with "
                    f"{EXTRA_PREFIX!r}",
                    file=file,
                    line=1,
                    column=col,
                )
            family, table, _ = UNIT_FIELDS[field]
            unit = col[len(field) + 1 :]
            if unit not in table:
                raise ColumnNameError(
                    f"unknown {family} unit {unit!r}; use one of "
                    f"{', '.join(field + '_' + u for u in table)} (extra columns must start with "
                    f"{EXTRA_PREFIX!r})",
                    file=file,
                    line=1,
                    column=col,
                )
        if field in fields:
            raise ColumnNameError(
                f"field {field!r} given twice (also as {fields[field][0]!r})", file=file, line=1, column=col
            )
        fields[field] = (col, unit)
    required = [f for f, req in PLAIN_FIELDS.items() if req] + [f for f, s in UNIT_FIELDS.items() if s[2]]
    for field in required:
        if field not in fields:
            units_ = ", ".join(UNIT_FIELDS[field][1]) if field in UNIT_FIELDS else ""
            hint = f" (as {field}_<unit>, unit one of {units_})" if units_ else ""
            raise MissingColumnError(f"required column missing{hint}", file=file, line=1, column=field)
    if "R" not in fields and "c_perm" not in fields:
        raise MissingColumnError(
            "give the rejection (R_frac or R_pct) or the permeate concentration (c_perm_<unit>), or both",
            file=file,
            line=1,
            column="R_frac",
        )
    return Header(fields, tuple(extras))


# ---------------------------------------------------------------------------
# quantities: an ion, or a neutral salt mapped to an equivalent-weighted ion combination


@dataclass(frozen=True)
class Quantity:
    """A measured quantity as a linear combination of ion concentrations (mol/m³).

    For an ion the weight is 1. For a salt M_a X_b, weight w_i = |z_i| / Σ_j ν_j |z_j| on
    each of its ions, so w·c is the salt's molar concentration in a feed of that salt alone
    and the salt rejection 1 − w·c_p / w·c_f is the equivalent-weighted rejection of its ions.
    """

    name: str
    kind: str  # "ion" or "salt"
    weights: Mapping[str, float]


def quantity(name: str) -> Quantity:
    """Parse ``"Na"``, ``"SO4 2-"`` (ions, canonicalised) or ``"Na2SO4"`` (salt) into a :class:`Quantity`."""
    try:
        return Quantity(ions.canonical(name), "ion", {ions.canonical(name): 1.0})
    except ions.UnknownIonError:
        pass
    stoich = ions.parse_salt(name.strip())  # raises UnknownIonError / CompositionError
    eq = {ion: n * abs(ions.get(ion).z) for ion, n in stoich.items()}
    weights = {ion: abs(ions.get(ion).z) / sum(eq.values()) for ion in stoich}
    return Quantity(_salt_name(stoich), "salt", weights)


def _salt_name(stoich: Mapping[str, int]) -> str:
    parts = []
    for ion, n in stoich.items():
        formula = ions.get(ion).formula
        poly = n > 1 and (re.search(r"\d", formula) or sum(ch.isupper() for ch in formula) > 1)
        parts.append((f"({formula})" if poly else formula) + (str(n) if n > 1 else ""))
    return "".join(parts)


# ---------------------------------------------------------------------------
# feed compositions as one cell: "Na+=10.2; Cl-=10.2; NO3-=0.2"


def parse_feed(text: str, to_si: Callable[[ArrayLike], np.ndarray]) -> dict[str, float]:
    """``"ION=VALUE; ION=VALUE"`` (values in the header's unit) → {canonical ion: mol/m³}.

    Raises :class:`ions.UnknownIonError` or plain ``ValueError`` with a short reason; the
    loader adds file, line and column.
    """
    out: dict[str, float] = {}
    pairs = [p.strip() for p in text.split(";") if p.strip()]
    if not pairs:
        raise ValueError("empty feed composition; write e.g. 'Na+=10; Cl-=10'")
    for pair in pairs:
        m = re.fullmatch(r"([^=\s]+)\s*=\s*(\S+)", pair)
        if not m:
            raise ValueError(f"cannot read {pair!r}; expected ION=VALUE")
        ion = ions.canonical(m.group(1))
        try:
            value = float(m.group(2))
        except ValueError:
            raise ValueError(f"concentration of {ion} is not a number: {m.group(2)!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"concentration of {ion} must be finite and >= 0, got {m.group(2)!r}")
        if ion in out:
            raise ValueError(f"ion {ion} given twice")
        out[ion] = float(to_si(value))
    return out


def format_feed(feed: Mapping[str, float], scale: float = 1.0) -> str:
    """Inverse of :func:`parse_feed` for values in mol/m³ divided by ``scale``, ions in table order."""
    order = ions.species()
    return "; ".join(f"{ion}={feed[ion] / scale:.12g}" for ion in sorted(feed, key=order.index))
