"""The solution-friction (SF) model: per-ion friction with water and membrane, solved as a DSPM-DE chain.

Force balance on ion i in the pore water (Wang et al., ES&T 55 (2021) 16665; Biesheuvel et al.,
arXiv 2110.07506), per mole, membrane at rest, ion velocity u_i, interstitial water velocity v_w:

    −RT (d ln c_i/dx + z_i dφ/dx) = f_iw (u_i − v_w) + f_im u_i                   (φ = Fψ/RT)

so that the ion flux per pore-water area is

    c_i u_i = K_f,i c_i v_w − D_i,m (dc_i/dx + z_i c_i dφ/dx),
    K_f,i = f_iw / (f_iw + f_im) = 1 / (1 + r_i),
    D_i,m = RT / (f_iw + f_im)   = D_i / (1 + r_i),

with r_i = f_im/f_iw the friction ratio and f_iw = RT/D_i (bulk diffusivity D_i of the ion table).
With water volume fraction ε_w, v_w = J_v/ε_w and the flux per membrane area is ε_w c_i u_i = J_v c_p,i
at steady state, i.e.

    J_v c_p,i = K_f,i c_i J_v − ε_w D_i,m (dc_i/dx + z_i c_i dφ/dx),   0 < x < L,

the extended Nernst–Planck equation of DSPM-DE with K_c → K_f,i, K_d D → ε_w D_i,m and Δx_e → L. It is
solved by the same Scharfetter–Gummel chain and Newton solver (:func:`nanoutils.dspmde.solve_transport`).
At both faces c_i,pore = Φ φ_B,i c_i,out exp(−z_i Δφ_D) with one partition factor Φ for all ions
(φ_B,i = 1 unless the optional Born term is on, then eq. of :func:`nanoutils.dspmde.born_log_partition`
with the Stokes radius); Σ z_i c_i + X = 0 in the pore water (X per pore-water volume, mol/m³);
zero current in the permeate. Pore Péclet number: Pe_i = K_f,i v_w L / D_i,m = J_v L / (ε_w D_i).
For a neutral solute (or X = 0, no Born term, a salt of ions with equal K_f) the solution is
R = 1 − Φ K_f / (1 − (1 − Φ K_f) e^{−Pe}).

Parameters: d friction ratios + X, ε_w, L, Φ ("d + 4"). With ideal solutions rejections depend on them
only through the d + 2 combinations Φ K_f,i, X/Φ and L/ε_w (see ``_fit``); :func:`nanoutils.friction.fit`
regresses those and reports a model with ε_w and Φ at fixed values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from .. import ions
from ..constants import EPS_WATER_25C
from ..dspmde import DEFAULT_CELLS, ActivityModel, Film, PoreIons, Result, born_log_partition, solve_transport

#: The four membrane quantities of the model (SI): charge per pore-water volume (mol/m³, signed),
#: water volume fraction (–), thickness (m), common partition factor (–).
MEMBRANE_PARAMETERS = ("X", "water_fraction", "thickness", "partition")


class SFError(ValueError):
    """An invalid solution-friction parameter or input; the message names it and its value."""


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not math.isfinite(value):
        raise SFError(f"SF parameter {name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True, eq=False)
class SFModel:
    """Solution-friction membrane: ``friction_ratio`` ion → r_i = f_im/f_iw (–, ≥ 0), charge ``X``
    (mol/m³ of pore water, signed), ``water_fraction`` ε_w (0 < ε_w ≤ 1), ``thickness`` L (m, > 0),
    common ``partition`` factor Φ (–, > 0). ``born_eps_p``: pore dielectric constant for an optional
    Born exclusion (``None``: off), ``eps_b`` the bulk one. See the module docstring for the equations.
    """

    friction_ratio: Mapping[str, float]
    X: float
    water_fraction: float
    thickness: float
    partition: float
    born_eps_p: float | None = None
    eps_b: float = EPS_WATER_25C

    def __post_init__(self) -> None:
        if not isinstance(self.friction_ratio, Mapping) or not self.friction_ratio:
            raise SFError(f"friction_ratio must be a non-empty mapping ion → f_im/f_iw, got {self.friction_ratio!r}")
        ratios = {}
        for name, value in self.friction_ratio.items():
            ion = ions.canonical(name)
            if _finite(f"friction_ratio[{name!r}]", value) < 0:
                raise SFError(f"SF parameter friction_ratio[{name!r}] must be ≥ 0, got {value!r}")
            ratios[ion] = float(value)
        object.__setattr__(self, "friction_ratio", MappingProxyType(ratios))
        _finite("X", self.X)
        if not 0 < _finite("water_fraction", self.water_fraction) <= 1:
            raise SFError(f"SF parameter water_fraction must be in (0, 1], got {self.water_fraction!r}")
        for name in ("thickness", "partition", "eps_b") + (("born_eps_p",) if self.born_eps_p is not None else ()):
            if _finite(name, getattr(self, name)) <= 0:
                raise SFError(f"SF parameter {name} must be > 0, got {getattr(self, name)!r}")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SFModel)
            and self.params() == other.params()
            and (self.born_eps_p, self.eps_b) == (other.born_eps_p, other.eps_b)
        )

    @property
    def species(self) -> tuple[str, ...]:
        """Ions with a friction ratio."""
        return tuple(self.friction_ratio)

    def missing_ions(self, species: Iterable[str]) -> tuple[str, ...]:
        """The ions of ``species`` without a friction ratio: the model cannot predict a feed holding one."""
        return tuple(n for n in (ions.canonical(s) for s in species) if n not in self.friction_ratio)

    @property
    def n_params(self) -> int:
        """Parameter count d + 4 (d friction ratios, X, ε_w, L, Φ)."""
        return len(self.friction_ratio) + len(MEMBRANE_PARAMETERS)

    def params(self) -> dict[str, float]:
        """All d + 4 parameters (SI): ``r[<ion>]`` for the friction ratios, then X, water_fraction, thickness,
        partition."""
        return {
            **{f"r[{k}]": v for k, v in self.friction_ratio.items()},
            **{n: float(getattr(self, n)) for n in MEMBRANE_PARAMETERS},
        }

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable description (SI) that :meth:`from_dict` rebuilds."""
        return {
            "friction_ratio": dict(self.friction_ratio),
            "born_eps_p": self.born_eps_p,
            "eps_b": self.eps_b,
            **{n: float(getattr(self, n)) for n in MEMBRANE_PARAMETERS},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SFModel:
        """The model of :meth:`to_dict` output; bad or missing values raise :class:`SFError` naming them."""
        try:
            return cls(**d)
        except TypeError as err:
            raise SFError(f"not an SF model description ({err})") from None

    def with_(self, **changes: Any) -> SFModel:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def pore_coefficients(
        self, species: Sequence[str], temperature: float = 298.15, present: np.ndarray | None = None
    ) -> PoreIons:
        """Per-ion chain coefficients of ``species``: K_c = K_f = 1/(1 + r), K_d D = ε_w D/(1 + r) (m²/s),
        ln φ = ln Φ (+ Born). ``present`` (d,) bool: ions that occur in some feed (others need no ratio).
        ``lam`` (r_s/r_p) has no meaning here and is NaN."""
        table = [ions.get(s) for s in species]
        names = tuple(i.name for i in table)
        present = np.ones(len(names), bool) if present is None else np.asarray(present, bool)
        missing = self.missing_ions(n for n, p in zip(names, present, strict=True) if p)
        if missing:
            raise SFError(
                f"no friction ratio for ion(s) {list(missing)}; the model has ratios for {list(self.species)}"
            )
        r = np.array([self.friction_ratio.get(n, 0.0) for n in names])
        z = np.array([i.z for i in table], dtype=float)
        diff = np.array([i.diffusivity for i in table])
        ln_phi = np.full(len(names), math.log(self.partition))
        if self.born_eps_p is not None:
            radius = np.array([i.stokes_radius for i in table])
            ln_phi = ln_phi + born_log_partition(z, radius, self.born_eps_p, self.eps_b, temperature)
        k_f = 1.0 / (1.0 + r)
        return PoreIons(names, z, diff, np.full(len(names), np.nan), k_f, self.water_fraction * k_f, ln_phi)

    def solve(
        self,
        feeds,
        fluxes,
        *,
        film: Film | None = None,
        temperature: float = 298.15,
        species: Sequence[str] | None = None,
        n_cells: int = DEFAULT_CELLS,
        activity: str | ActivityModel | None = None,
        profiles: bool = False,
        tol: float = 1e-8,
    ) -> Result:
        """Permeate of N feeds × M fluxes (m/s), the same :class:`nanoutils.dspmde.Result` as
        :func:`nanoutils.dspmde.solve` (and the same ``feeds``/``film``/``activity``/``tol`` options).
        Raises :class:`SFError` naming any ion present in a feed without a friction ratio."""
        return solve_transport(
            feeds,
            fluxes,
            self.pore_coefficients,
            self.thickness,
            self.X,
            film=film,
            temperature=temperature,
            species=species,
            n_cells=n_cells,
            activity=activity,
            profiles=profiles,
            tol=tol,
            info={"model": "solution-friction", "params": self.params()},
            label="SF",
        )
