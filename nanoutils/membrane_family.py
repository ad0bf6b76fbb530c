"""A family of NF membranes: the prior the pre-training set draws its membranes from, and the membrane code.

One membrane of the family is DSPM-DE with the paper's Z = {r_p, Δx_e, ε_p, X_d}, a charge isotherm with both a
Freundlich exponent n and competitive Langmuir binding of the divalent cations Mg²⁺ and Ca²⁺ (sites Γ, binding
constants K), X = X_d (I_f/10 mol/m³)^n + Γ Σ z_i K_i c_i / (1 + Σ K_j c_j), and a partition energy ΔW_i (k_B T) per
ion of the table (:func:`nanoutils.dspmde.solve`'s ``partition_energy``). The paper's Table 2 membrane is the member
with n = 0, Γ = 0 and every ΔW_i = 0 (:data:`REFERENCE`).

:data:`PRIOR` is the one table of the prior: each parameter's range, scale (log or linear) and the reason for its
bounds; :data:`FITTED` holds the values fitted on the real NF270 set and the VIRTUAL set that the bounds must
cover (a test checks). :func:`draw` samples membranes (scrambled Sobol in the unit box of the prior), and
:func:`code` maps a membrane to its **code**: each parameter scaled to [−1, 1] over its prior range (log10 for the
log-scaled ones), the extra input of a membrane-aware network (:mod:`nanoutils.models`); :func:`from_code` inverts
it. A code outside [−1, 1] is a membrane outside the prior: :func:`from_code` accepts it and
:func:`outside_prior` names the parameters concerned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from . import dspmde, ions, sampling

#: Divalent cations that bind to the membrane in the family's Langmuir isotherm.
BINDING_IONS = ("Mg2+", "Ca2+")
#: Reference ionic strength of the Freundlich factor (mol/m³), as :class:`nanoutils.dspmde.ChargeIsotherm`.
I_REF = 10.0


class PriorBound(NamedTuple):
    """One parameter of the prior: SI range [lo, hi], ``log`` scale or linear, display unit and factor, reason."""

    lo: float
    hi: float
    log: bool
    unit: str
    factor: float
    reason: str


_DW = PriorBound(
    -2.0,
    2.0,
    False,
    "kT",
    1.0,
    "±2σ of dspmde_plus's N(0, 1 kT) prior on ΔW_i (a 55-fold change of the partition coefficient either way); "
    "covers the values fitted on the real set",
)

#: The prior of the membrane family, SI (r_p m, dx_e m, X_d and sites mol/m³, K m³/mol, dW k_B T).
PRIOR: dict[str, PriorBound] = {
    "r_p": PriorBound(
        0.3e-9,
        1.5e-9,
        True,
        "nm",
        1e9,
        "eq. 11's fit box (fitting.BOUNDS): above the smallest hydrated radii, still NF; Table 2 (0.51 nm), the "
        "VIRTUAL fits (0.38, 0.95 nm) and the real fit (1.5 nm, at the box's edge) lie inside",
    ),
    "dx_e": PriorBound(
        0.1e-6,
        10e-6,
        True,
        "µm",
        1e6,
        "from the fit box's thinnest active layer (0.1 µm, where the real fit ends) to 8× Table 2's 1.27 µm; "
        "thicker layers only push every rejection to its convective limit (no fit went above 1.3 µm)",
    ),
    "eps_p": PriorBound(
        25.0,
        78.4,
        True,
        "–",
        1.0,
        "from ε_p = 25, where Born exclusion of a divalent ion reaches ≈ 16 k_B T (rejection ≈ 1 for all of "
        "them), to bulk water; Table 2 (43.6) and the fits (30.2–43.4) lie inside",
    ),
    "X_d": PriorBound(
        -400.0,
        50.0,
        False,
        "mol/m³",
        1.0,
        "from the fit box's most negative charge (−400, where the real fit ends) to a mildly positive one; charge "
        "reversal by divalent cations comes from Γ; Table 2 (−51) and the VIRTUAL fits (−132, −17) inside",
    ),
    "n": PriorBound(
        -0.3,
        0.7,
        False,
        "–",
        1.0,
        "Freundlich exponents of NF charge vs concentration, 0.3–0.6 (Bowen, Mohammad & Hilal 1997), widened "
        "to include a charge that falls with ionic strength and n = 0 (constant charge, Table 2)",
    ),
    "sites": PriorBound(
        0.0,
        300.0,
        False,
        "mol/m³",
        1.0,
        "from no binding (Γ = 0, Table 2) to 300 mol/m³ of sites, enough to reverse the most negative X_d's "
        "charge; the real set's Langmuir fit (251 mol/m³) inside",
    ),
    **{
        f"K[{ion}]": PriorBound(
            1e-3,
            1.0,
            True,
            "m³/mol",
            1.0,
            "K c from 0.01 to 10 at 10 mol/m³ of the binding ion: from weak binding to sites half-occupied at "
            "1 mol/m³; the fit's start (0.05) and the real set's Langmuir fit (K[Mg2+] = 0.41) inside",
        )
        for ion in BINDING_IONS
    },
    **{f"dW[{ion}]": _DW for ion in ions.species()},
}
#: Parameter names, in code order.
NAMES: tuple[str, ...] = tuple(PRIOR)
#: Length of the membrane code.
N_CODE = len(NAMES)
#: The lowest code of each parameter that is physical, not only the prior's edge: Γ ≥ 0 (a density of sites, code
#: −1); no floor elsewhere (a charge, an exponent or an energy of either sign is a membrane, if outside the prior).
CODE_FLOOR = np.array([-1.0 if name == "sites" else -np.inf for name in NAMES])


@dataclass(frozen=True)
class FamilyMembrane:
    """One membrane of the family: ``values`` maps every name of :data:`NAMES` to its SI value."""

    values: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing, unknown = set(NAMES) - set(self.values), set(self.values) - set(NAMES)
        if missing or unknown:
            raise ValueError(f"membrane family parameters: missing {sorted(missing)}, unknown {sorted(unknown)}")
        for name, value in self.values.items():
            if not np.isfinite(value) or (PRIOR[name].log and value <= 0) or (name == "sites" and value < 0):
                raise ValueError(f"membrane family parameter {name} = {value!r} is not a valid value")

    @classmethod
    def from_parameters(cls, **values: float) -> FamilyMembrane:
        """The reference membrane with some parameters replaced (names of :data:`NAMES`, SI)."""
        return cls({**REFERENCE.values, **values})

    def solve_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`nanoutils.dspmde.solve` for this membrane: ``membrane``, ``isotherm``
        (``None`` when Γ = 0 and n = 0) and ``partition_energy`` (``None`` when every ΔW_i = 0)."""
        v = self.values
        membrane = dspmde.Membrane.nf270(r_p=v["r_p"], dx_e=v["dx_e"], eps_p=v["eps_p"], X_d=v["X_d"])
        binding = {ion: v[f"K[{ion}]"] for ion in BINDING_IONS}
        isotherm = (
            dspmde.ChargeIsotherm.langmuir(v["sites"], binding, n=v["n"], I_ref=I_REF)
            if v["sites"] > 0 or v["n"] != 0
            else None
        )
        dw = {ion: v[f"dW[{ion}]"] for ion in ions.species() if v[f"dW[{ion}]"] != 0}
        return {"membrane": membrane, "isotherm": isotherm, "partition_energy": dw or None}

    def code(self) -> np.ndarray:
        """The membrane code (:data:`N_CODE`,): each parameter scaled to [−1, 1] over its prior range."""
        return code(np.array([[self.values[n] for n in NAMES]]))[0]


def _unit(values: np.ndarray) -> np.ndarray:
    """(…, N_CODE) SI values → position in the prior box, 0…1 (log10 for log-scaled parameters)."""
    lo, hi, log = (np.array([getattr(PRIOR[n], a) for n in NAMES]) for a in ("lo", "hi", "log"))
    log = log.astype(bool)
    v = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(log, np.log10(np.where(log, v, 1.0)), v)
    a, b = np.where(log, np.log10(np.where(log, lo, 1.0)), lo), np.where(log, np.log10(np.where(log, hi, 1.0)), hi)
    return (x - a) / (b - a)


def code(values: np.ndarray) -> np.ndarray:
    """Membrane codes (…, N_CODE) in [−1, 1] inside the prior, from SI values (…, N_CODE) in :data:`NAMES` order."""
    return 2.0 * _unit(values) - 1.0


def from_code(c: np.ndarray) -> FamilyMembrane:
    """The membrane of a code (N_CODE,) (inverse of :func:`code`; a code outside [−1, 1] is outside the prior)."""
    c = np.asarray(c, dtype=float)
    if c.shape != (N_CODE,) or not np.isfinite(c).all():
        raise ValueError(f"a membrane code is {N_CODE} finite numbers, got shape {c.shape}")
    u = (c + 1.0) / 2.0
    out = {}
    for name, x in zip(NAMES, u, strict=True):
        p = PRIOR[name]
        out[name] = float(10 ** (np.log10(p.lo) + x * np.log10(p.hi / p.lo)) if p.log else p.lo + x * (p.hi - p.lo))
    out["sites"] = max(out["sites"], 0.0)  # Γ below the prior's 0 means no sites; outside_prior reports it
    return FamilyMembrane(out)


def outside_prior(c: np.ndarray, tol: float = 1e-9) -> list[str]:
    """Names of the parameters whose code (N_CODE,) lies outside [−1, 1]."""
    return [n for n, x in zip(NAMES, np.asarray(c, dtype=float), strict=True) if abs(x) > 1.0 + tol]


def draw(n: int, seed: int = 0) -> list[FamilyMembrane]:
    """``n`` membranes from the prior: a seeded, scrambled Sobol sequence in its unit box."""
    if n < 1:
        raise ValueError(f"number of membranes must be ≥ 1, got {n}")
    u = sampling._sobol(N_CODE, n, np.random.default_rng(seed))  # the compositions' scrambled Sobol draw
    return [from_code(2.0 * row - 1.0) for row in u]


def from_fit(params: Mapping[str, float]) -> FamilyMembrane:
    """The family membrane of an eq. 11 fit's parameters (``FitResult.params``: Z, and where fitted ``n``,
    ``sites``, ``K[ion]``, ``dW[ion]``, SI); parameters the fit did not have take the reference values."""
    known = {k: float(v) for k, v in params.items() if k in PRIOR}
    return FamilyMembrane.from_parameters(**known)


def table() -> list[dict[str, Any]]:
    """The prior as rows (parameter, unit, lo, hi, scale, reference, reason), display units; ΔW rows as one."""
    rows, seen_dw = [], False
    for name, p in PRIOR.items():
        if name.startswith("dW["):
            if seen_dw:
                continue
            seen_dw, name = True, "dW[ion], every ion"
        ref = REFERENCE.values.get(name, 0.0)
        rows.append(
            {
                "parameter": name,
                "unit": p.unit,
                "lo": p.lo * p.factor,
                "hi": p.hi * p.factor,
                "scale": "log" if p.log else "linear",
                "reference": ref * p.factor,
                "reason": p.reason,
            }
        )
    return rows


def metadata() -> dict[str, Any]:
    """The prior as JSON (part of the pre-training set's cache key)."""
    return {
        "names": list(NAMES),
        "prior": {n: [p.lo, p.hi, p.log] for n, p in PRIOR.items()},
        "I_ref": I_REF,
        "binding_ions": list(BINDING_IONS),
    }


#: The paper's Table 2 NF270 as a member of the family: constant charge, no binding, no ΔW.
REFERENCE = FamilyMembrane(
    {
        **{k: getattr(dspmde.Membrane.nf270(), k) for k in ("r_p", "dx_e", "eps_p", "X_d")},
        "n": 0.0,
        "sites": 0.0,
        **{f"K[{ion}]": 0.05 for ion in BINDING_IONS},
        **{f"dW[{ion}]": 0.0 for ion in ions.species()},
    }
)

#: Parameters fitted on measured and simulated data that the prior must cover (SI), with where they come from.
FITTED: dict[str, dict[str, float]] = {
    "Table 2 (paper)": {"r_p": 0.51e-9, "dx_e": 1.27e-6, "eps_p": 43.56, "X_d": -51.23},
    "VIRTUAL, annealing + Nelder–Mead (benchmarks/RESULTS.md; Table 2 until 2026-12)": {
        "r_p": 0.38e-9,
        "dx_e": 0.318e-6,
        "eps_p": 42.5,
        "X_d": -132.0,
    },
    "VIRTUAL, annealing + gradient fit (figures/table2.md)": {
        "r_p": 0.95e-9,
        "dx_e": 0.44e-6,
        "eps_p": 30.2,
        "X_d": -17.2,
    },
    "real NF270, constant charge (figures/table2.md)": {"r_p": 1.5e-9, "dx_e": 0.1e-6, "eps_p": 43.4, "X_d": -400.0},
    "real NF270, Langmuir Mg2+ (fitting.fit, isotherm='langmuir', Nelder–Mead 300 from Table 2)": {
        "r_p": 1.5e-9,
        "dx_e": 0.1007e-6,
        "eps_p": 43.50,
        "X_d": -400.0,
        "sites": 250.9,
        "K[Mg2+]": 0.408,
    },
}
