"""Concentration-polarisation film on the feed side of the membrane.

The film is solved with the extended Nernst–Planck equation (K_c = K_d = 1, bulk
diffusivities, Σ z c = 0) between the feed bulk and the membrane surface; all it
needs per ion is the mass-transfer coefficient k_i = D_i/δ_i (m/s). ``film=None``
in :func:`solve` means no film: the membrane surface sees the feed (intrinsic rejection).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .. import ions

WATER_KINEMATIC_VISCOSITY = 8.93e-7  # m²/s at 25 °C


def leveque(re: float, sc: np.ndarray, dh_over_l: float) -> np.ndarray:
    """Lévêque solution for laminar flow in a slit channel: Sh = 1.85 (Re Sc d_h/L)^(1/3)."""
    return 1.85 * (re * sc * dh_over_l) ** (1 / 3)


def schock_miquel(re: float, sc: np.ndarray, dh_over_l: float) -> np.ndarray:
    """Spacer-filled channel (Schock & Miquel, Desalination 64 (1987) 339): Sh = 0.065 Re^0.875 Sc^0.25."""
    return 0.065 * re**0.875 * sc**0.25


#: Sherwood correlations by name: (Re, Sc per ion, d_h/L) → Sh per ion.
SHERWOOD: dict[str, Callable[[float, np.ndarray, float], np.ndarray]] = {
    "leveque": leveque,
    "schock_miquel": schock_miquel,
}


class FilmError(ValueError):
    """An invalid film parameter; the message names it and its value."""


@dataclass(frozen=True)
class Film:
    """Film layer given by mass-transfer coefficients ``k`` (m/s): one value for all ions or a
    mapping ion → k. ``n_cells`` finite volumes resolve the film. Build from channel
    hydrodynamics with :meth:`sherwood`.
    """

    k: float | Mapping[str, float]
    n_cells: int = 8

    def __post_init__(self) -> None:
        values = self.k.values() if isinstance(self.k, Mapping) else [self.k]
        for value in values:
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise FilmError(f"mass-transfer coefficient k must be a finite number > 0 m/s, got {self.k!r}")
        if not isinstance(self.n_cells, int) or self.n_cells < 1:
            raise FilmError(f"n_cells must be an integer ≥ 1, got {self.n_cells!r}")

    @classmethod
    def sherwood(
        cls,
        species: Sequence[str],
        *,
        velocity: float,
        hydraulic_diameter: float,
        channel_length: float = 1.0,
        correlation: str = "leveque",
        kinematic_viscosity: float = WATER_KINEMATIC_VISCOSITY,
        n_cells: int = 8,
    ) -> Film:
        """k_i = Sh_i D_i / d_h from a Sherwood correlation (a key of :data:`SHERWOOD`) for
        cross-flow ``velocity`` (m/s), ``hydraulic_diameter`` and ``channel_length`` (m)."""
        for name, value in (
            ("velocity", velocity),
            ("hydraulic_diameter", hydraulic_diameter),
            ("channel_length", channel_length),
            ("kinematic_viscosity", kinematic_viscosity),
        ):
            if not math.isfinite(value) or value <= 0:
                raise FilmError(f"{name} must be a finite number > 0, got {value!r}")
        if correlation not in SHERWOOD:
            raise FilmError(f"unknown Sherwood correlation {correlation!r}; choose one of {', '.join(SHERWOOD)}")
        names = [ions.canonical(s) for s in species]
        diff = np.array([ions.get(s).diffusivity for s in names])
        re = velocity * hydraulic_diameter / kinematic_viscosity
        sh = SHERWOOD[correlation](re, kinematic_viscosity / diff, hydraulic_diameter / channel_length)
        return cls({n: float(k) for n, k in zip(names, sh * diff / hydraulic_diameter, strict=True)}, n_cells=n_cells)

    def coefficients(self, species: Sequence[str]) -> np.ndarray:
        """Mass-transfer coefficients (m/s) in the order of ``species``."""
        if not isinstance(self.k, Mapping):
            return np.full(len(species), float(self.k))
        given = {ions.canonical(n): v for n, v in self.k.items()}
        missing = [s for s in species if s not in given]
        if missing:
            raise FilmError(f"film has no mass-transfer coefficient for {missing}")
        return np.array([given[s] for s in species], dtype=float)
