"""Membrane parameters Z = {r_p, Δx_e, ε_p, X_d} of the DSPM-DE model, validated."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from ..constants import EPS_WATER_25C
from ._hindrance import DEFAULT_HINDRANCE, HINDRANCE


class MembraneError(ValueError):
    """An invalid membrane parameter; the message names it and its value."""


@dataclass(frozen=True)
class Membrane:
    """DSPM-DE membrane: pore radius ``r_p`` (m), effective thickness ``dx_e`` = Δx/A_k (m),
    pore dielectric constant ``eps_p`` (–), volumetric charge density ``X_d`` (mol/m³, signed),
    bulk and membrane-matrix dielectric constants ``eps_b``, ``eps_m`` (–) and the
    hindrance-factor source (a key of ``HINDRANCE``).
    """

    r_p: float
    dx_e: float
    eps_p: float
    X_d: float
    eps_b: float = EPS_WATER_25C
    eps_m: float = 4.5
    hindrance: str = DEFAULT_HINDRANCE

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "hindrance":
                continue
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise MembraneError(f"membrane parameter {f.name} must be a finite number, got {value!r}")
            if f.name != "X_d" and value <= 0:
                raise MembraneError(f"membrane parameter {f.name} must be > 0, got {value!r}")
        if self.hindrance not in HINDRANCE:
            raise MembraneError(f"unknown hindrance source {self.hindrance!r}; choose one of {', '.join(HINDRANCE)}")

    @classmethod
    def nf270(cls, **overrides: Any) -> Membrane:
        """NF270 parameters of the paper's Table 2: r_p = 0.51 nm, Δx_e = 1.27 µm, ε_p = 43.56,
        X_d = −51.23 mol/m³; keyword overrides replace single fields."""
        return replace(cls(r_p=0.51e-9, dx_e=1.27e-6, eps_p=43.56, X_d=-51.23), **overrides)

    def with_(self, **changes: Any) -> Membrane:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)
