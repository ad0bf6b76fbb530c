"""Membrane charge X_d(C) from an adsorption isotherm (paper eq. 7: χ_d is a function of composition).

The charge is evaluated per case from the **feed** composition c_f handed to :func:`solve`,
which is the concentration at the membrane surface when ``film=None`` (intrinsic rejection;
with a film it is the bulk feed, a simplification), and is then uniform across the pore.
Kinds, chosen by name from :data:`ISOTHERMS`:

- ``"constant"`` (default): X = X_d.
- ``"freundlich"``: X = X_d · (I_f / I_ref)^n with I_f = ½ Σ z_i² c_f,i (mol/m³) the feed
  ionic strength — the power law in feed concentration fitted for NF membranes by Bowen,
  Mohammad & Hilal, J. Membr. Sci. 126 (1997) 91, written in ionic strength so that it applies
  to mixtures. n = 0 recovers the constant charge exactly.
- ``"langmuir"``: X = X_d + Γ Σ_i z_i K_i c_f,i / (1 + Σ_j K_j c_f,j) — competitive Langmuir
  binding of ions on Γ sites (mol/m³ of pore volume), each bound ion adding its charge z_i
  (binding constants K_i in m³/mol; ions not named do not bind). Divalent cations binding to the
  carboxylate groups of polyamide can neutralise or reverse the charge, which is what NF270
  shows with MgCl₂. Γ = 0 or all K_i = 0 recover the constant charge exactly. An exponent n ≠ 0
  (default 0) scales the fixed part as in ``"freundlich"``: X = X_d (I_f/I_ref)^n + Γ Σ …, the
  charge isotherm of the membrane family (:mod:`nanoutils.membrane_family`), which has both.

X_d itself stays in :class:`~nanoutils.dspmde.Membrane` (mol/m³, signed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import ions

ISOTHERMS: dict[str, str] = {
    "constant": "X = X_d",
    "freundlich": "X = X_d (I_f/I_ref)^n, I_f the feed ionic strength",
    "langmuir": "X = X_d (I_f/I_ref)^n + Γ Σ z_i K_i c_i / (1 + Σ K_j c_j), competitive ion binding (n = 0 default)",
}


class IsothermError(ValueError):
    """An invalid isotherm parameter; the message names it and its value."""


@dataclass(frozen=True)
class ChargeIsotherm:
    """X_d(c_f) of kind ``kind`` (a key of :data:`ISOTHERMS`): Freundlich exponent ``n`` (–) and
    reference ionic strength ``I_ref`` (mol/m³); Langmuir site density ``sites`` Γ (mol/m³) and
    ``binding`` ion → K (m³/mol)."""

    kind: str = "constant"
    n: float = 0.0
    I_ref: float = 10.0
    sites: float = 0.0
    binding: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ISOTHERMS:
            raise IsothermError(f"unknown isotherm {self.kind!r}; choose one of {', '.join(ISOTHERMS)}")
        for name, value, positive in (("n", self.n, False), ("I_ref", self.I_ref, True), ("sites", self.sites, False)):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or (value <= 0 if positive else False):
                raise IsothermError(
                    f"isotherm parameter {name} must be a finite number{' > 0' if positive else ''}, got {value!r}"
                )
        if self.sites < 0:
            raise IsothermError(f"isotherm parameter sites must be ≥ 0 mol/m³, got {self.sites!r}")
        for ion, k in self.binding.items():
            ions.canonical(ion)
            if not isinstance(k, (int, float)) or not math.isfinite(k) or k < 0:
                raise IsothermError(f"binding constant of {ion} must be a finite number ≥ 0 m³/mol, got {k!r}")

    @classmethod
    def freundlich(cls, n: float, I_ref: float = 10.0) -> ChargeIsotherm:
        """X = X_d (I_f/I_ref)^n."""
        return cls("freundlich", n=n, I_ref=I_ref)

    @classmethod
    def langmuir(
        cls, sites: float, binding: Mapping[str, float], n: float = 0.0, I_ref: float = 10.0
    ) -> ChargeIsotherm:
        """X = X_d (I_f/I_ref)^n + Γ Σ z_i K_i c_i / (1 + Σ K_j c_j) (n = 0: X_d + Γ Σ …)."""
        return cls("langmuir", n=n, I_ref=I_ref, sites=sites, binding=dict(binding))

    def charge(self, X_d: float, c_feed: np.ndarray, species: Sequence[str]) -> np.ndarray:
        """Membrane charge (mol/m³) for feeds ``c_feed`` (…, d) in mol/m³ of ``species``, shape (…)."""
        c = np.asarray(c_feed, dtype=float)
        z = ions.charges(species)
        if self.kind == "constant":
            return np.full(c.shape[:-1], float(X_d))
        if self.kind == "freundlich":
            return X_d * (0.5 * (c @ z**2) / self.I_ref) ** self.n
        given = {ions.canonical(k): v for k, v in self.binding.items()}
        k = np.array([given.get(s, 0.0) for s in species])
        fixed = X_d * (0.5 * (c @ z**2) / self.I_ref) ** self.n if self.n != 0 else np.full(c.shape[:-1], float(X_d))
        return fixed + self.sites * (c @ (z * k)) / (1.0 + c @ k)
