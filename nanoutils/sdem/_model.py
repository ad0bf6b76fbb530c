"""The SDEM model: ion permeances, their feed dependence, the batched solve, and a JSON form.

Equations in the package docstring (:mod:`nanoutils.sdem`). The discrete problem is the DSPM-DE
chain (:func:`nanoutils.dspmde.solve_transport`) with the pore replaced by the SDEM layer:
dimensionless thickness ξ ∈ [0, 1] (pore length 1), no convection (K_c = 0), "diffusivity" K_d D = P_i,
no partitioning (ln φ = 0) and no fixed charge, so the pore unknowns are the virtual concentrations and
the dimensionless potential, and the Scharfetter–Gummel cells integrate j_i = −P_i (c_i' + z_i c_i ψ').
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from .. import ions
from ..dspmde import Film, PoreIons, Profiles, Result, as_concentrations, as_fluxes, check_temperature, solve_transport

#: Cells across the layer. The uniform mesh's error is O(h²) and largest for a trace ion at high
#: rejection of the dominant salt (steep potential near the permeate face): measured on the FdL feeds
#: at 50 µm/s, 20 cells give |ΔR| ≤ 3e-3, 40 cells ≤ 8e-4 (against 160 cells).
DEFAULT_CELLS = 40
#: Reference equivalent concentration c_ref (mol/m³) of the permeance law P_i = P_i,ref (c_eq/c_ref)^a.
C_REF = 10.0
#: Physical fallbacks for ions without a fitted permeance, by name.
FALLBACKS = {
    "diffusivity": "P_i = D_i · exp(mean over permeance ions of the same charge z of ln(P_j/D_j))",
}


class SDEMError(ValueError):
    """An invalid SDEM parameter or input; the message names it and its value."""


class MissingPermeanceWarning(UserWarning):
    """Some feeds hold an ion without a permeance: their predictions are NaN (``converged`` False)."""


def _positive(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.floating))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise SDEMError(f"SDEM parameter {name} must be a finite number > 0, got {value!r}")
    return float(value)


def salt_permeance(p_cation: float, p_anion: float, z_cation: int, z_anion: int) -> float:
    """Permeance P_s (m/s) of a single salt from its ion permeances (m/s) and charges:
    1/P_s = (z₊/P₋ + |z₋|/P₊) / (z₊ + |z₋|), and R = J_v / (J_v + P_s) (package docstring)."""
    if z_cation <= 0 or z_anion >= 0:
        raise SDEMError(f"salt_permeance needs z_cation > 0 > z_anion, got {z_cation!r}, {z_anion!r}")
    a = abs(z_anion)
    return (z_cation + a) / (z_cation / p_anion + a / p_cation)


def equivalent_concentration(c_feed: np.ndarray, z: np.ndarray) -> np.ndarray:
    """c_eq = ½ Σ_i |z_i| c_i (mol/m³) of feeds ``c_feed`` (N, d) with charges ``z`` (d,)."""
    return 0.5 * np.asarray(c_feed) @ np.abs(np.asarray(z, dtype=float))


@dataclass(frozen=True, eq=False)
class SDEMModel:
    """Solution–diffusion–electromigration membrane.

    ``permeance``: ion → P_i,ref (m/s, > 0) at the reference equivalent concentration ``c_ref``
    (mol/m³); ``exponent`` a of P_i = P_i,ref (c_eq/c_ref)^a, one for all ions (0: feed-independent
    permeances); ``fallback``: ``None`` (an ion without a permeance makes its feed's prediction NaN)
    or a key of :data:`FALLBACKS`. Permeances hold at the temperature of the data they came from.
    """

    permeance: Mapping[str, float]
    exponent: float = 0.0
    c_ref: float = C_REF
    fallback: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.permeance, Mapping) or not self.permeance:
            raise SDEMError(f"permeance must be a non-empty mapping ion → P (m/s), got {self.permeance!r}")
        clean = {ions.canonical(k): _positive(f"permeance[{k!r}]", v) for k, v in self.permeance.items()}
        object.__setattr__(self, "permeance", MappingProxyType(clean))
        if (
            isinstance(self.exponent, bool)
            or not isinstance(self.exponent, (int, float, np.floating))
            or not math.isfinite(self.exponent)
        ):
            raise SDEMError(f"SDEM parameter exponent must be a finite number, got {self.exponent!r}")
        object.__setattr__(self, "exponent", float(self.exponent))
        object.__setattr__(self, "c_ref", _positive("c_ref", self.c_ref))
        if self.fallback is not None and self.fallback not in FALLBACKS:
            raise SDEMError(f"unknown fallback {self.fallback!r}; choose None or one of {', '.join(FALLBACKS)}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SDEMModel) and self.to_dict() == other.to_dict()

    @property
    def species(self) -> tuple[str, ...]:
        """Ions with a permeance."""
        return tuple(self.permeance)

    def to_dict(self) -> dict:
        """JSON-safe form (SI units): ``{"model": "sdem", "permeance_m_s": {...}, "exponent", "c_ref_mol_m3",
        "fallback"}``; :meth:`from_dict` inverts it."""
        return {
            "model": "sdem",
            "permeance_m_s": dict(self.permeance),
            "exponent": self.exponent,
            "c_ref_mol_m3": self.c_ref,
            "fallback": self.fallback,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> SDEMModel:
        """The model stored by :meth:`to_dict`."""
        if not isinstance(data, Mapping) or data.get("model") != "sdem" or "permeance_m_s" not in data:
            raise SDEMError(f"not an SDEM model dictionary (needs model='sdem' and permeance_m_s): {data!r}")
        return cls(
            dict(data["permeance_m_s"]),
            exponent=data.get("exponent", 0.0),
            c_ref=data.get("c_ref_mol_m3", C_REF),
            fallback=data.get("fallback"),
        )

    def permeances(self, species: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
        """P_i,ref (m/s) of ``species`` (d,): the fitted value, the fallback's, or NaN; and the ions that
        took the fallback."""
        names = tuple(ions.canonical(s) for s in species)
        p = np.array([self.permeance.get(n, np.nan) for n in names])
        used: list[str] = []
        if self.fallback == "diffusivity":
            known = [ions.get(n) for n in self.permeance]
            for i, name in enumerate(names):
                if np.isnan(p[i]):
                    ion = ions.get(name)
                    same = [math.log(self.permeance[k.name] / k.diffusivity) for k in known if k.z == ion.z]
                    if same:
                        p[i] = ion.diffusivity * math.exp(sum(same) / len(same))
                        used.append(name)
        return p, tuple(used)

    def solve(
        self,
        feeds,
        fluxes,
        *,
        film: Film | None = None,
        temperature: float = 298.15,
        species: Sequence[str] | None = None,
        n_cells: int = DEFAULT_CELLS,
        activity: str | None = None,
        profiles: bool = False,
        tol: float = 1e-9,
    ) -> Result:
        """Permeate of N feeds × M fluxes (m/s) as a :class:`nanoutils.dspmde.Result` (the interface of
        :func:`nanoutils.dspmde.solve`). ``film``: concentration polarisation in front of the membrane
        (the feed is then the bulk and c_eq that of the bulk). ``temperature`` (K) only converts the
        profile potentials to volts. Virtual concentrations are ideal: ``activity`` must be None or
        "ideal". A feed holding an ion without a permeance (and no fallback for it) gets NaN outputs and
        ``converged`` False, named in ``info["no_permeance"]`` (feed index → ions) and by a
        :class:`MissingPermeanceWarning`; ``info["fallback_ions"]`` names the ions that used the fallback.
        ``profiles=True``: virtual concentrations and potential across the layer, positions ξ ∈ [0, 1]."""
        if activity not in (None, "ideal"):
            raise SDEMError(
                f"SDEM uses ideal virtual concentrations; activity must be None or 'ideal', got {activity!r}"
            )
        if not isinstance(n_cells, int) or isinstance(n_cells, bool) or n_cells < 1:
            raise SDEMError(f"n_cells must be an integer ≥ 1, got {n_cells!r}")
        c_feed, names = as_concentrations(feeds, species)
        jv = as_fluxes(fluxes)
        temperature = check_temperature(temperature)
        z = ions.charges(names).astype(float)
        p_ref, used = self.permeances(names)
        present = c_feed > 0
        missing = present & np.isnan(p_ref)
        scale = (equivalent_concentration(c_feed, z) / self.c_ref) ** self.exponent
        n, m, d = len(c_feed), len(jv), len(names)
        out = {k: np.full((n, m, d), np.nan) for k in ("permeate", "surface")}
        converged = np.zeros((n, m), bool)
        iterations, residual = np.zeros((n, m), int), np.full((n, m), np.nan)
        conc = np.full((n, m, n_cells + 1, d), np.nan)
        pot, perm_pot = np.full((n, m, n_cells + 1), np.nan), np.full((n, m), np.nan)
        solvable = ~missing.any(axis=1)
        for s in np.unique(scale[solvable]):
            idx = np.flatnonzero(solvable & (scale == s))
            pore = PoreIons(
                names,
                z,
                np.where(np.isnan(p_ref), 1.0, p_ref) * s,
                np.full(d, np.nan),
                np.zeros(d),
                np.ones(d),
                np.zeros(d),
            )
            res = solve_transport(
                c_feed[idx],
                jv,
                lambda *_, pore=pore: pore,
                1.0,
                0.0,
                film=film,
                temperature=temperature,
                species=names,
                n_cells=n_cells,
                profiles=profiles,
                tol=tol,
                label="SDEM",
            )
            out["permeate"][idx], out["surface"][idx], converged[idx] = (
                res.permeate,
                res.membrane_surface,
                res.converged,
            )
            iterations[idx], residual[idx] = res.info["iterations"], res.info["residual"]
            if res.profiles is not None:  # asked for with ``profiles``
                conc[idx], pot[idx], perm_pot[idx] = (
                    res.profiles.concentration,
                    res.profiles.potential,
                    res.profiles.permeate_potential,
                )
        no_permeance = {int(i): [names[k] for k in np.flatnonzero(missing[i])] for i in np.flatnonzero(~solvable)}
        if no_permeance:
            lacking = sorted({ion for v in no_permeance.values() for ion in v})
            warnings.warn(
                f"SDEM: no permeance for ion(s) {lacking} (fallback {self.fallback!r}); "
                f"{len(no_permeance)} of {n} feeds not predicted (NaN, converged=False)",
                MissingPermeanceWarning,
                stacklevel=2,
            )
        prof = Profiles(np.linspace(0.0, 1.0, n_cells + 1), conc, pot, perm_pot) if profiles else None
        info = {
            "model": "sdem",
            "params": self.to_dict(),
            "iterations": iterations,
            "residual": residual,
            "n_failed": int((~converged[solvable]).sum()),
            "n_cells": n_cells,
            "no_permeance": no_permeance,
            "fallback_ions": used,
            "permeance_scale": scale,
        }
        return Result(names, c_feed, jv, out["permeate"], out["surface"], converged, info, prof)
