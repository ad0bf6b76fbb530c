"""How far the single-element pore (WaterTAP-style) departs from the integrated Nernst–Planck pore."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ._membrane import Membrane
from ._solver import ConvergenceWarning, solve


@dataclass(frozen=True)
class Departure:
    """``dR`` (N, M): the largest |R_single − R_full| over the present ions of each feed × flux (NaN where the
    single element did not converge); ``failed`` (N, M): the single element failed where the full model
    converged; ``fluxes`` (M,) m/s."""

    fluxes: np.ndarray
    dR: np.ndarray
    failed: np.ndarray

    def summary(self, below_m_s: float = 3e-5) -> dict[str, float]:
        """The largest dR at fluxes ≤ ``below_m_s`` ("max |ΔR| at low flux") and overall (converged cases), the
        number of single-element failures and the lowest flux (m/s) where one occurs (NaN if none)."""
        return {
            "max |ΔR| at low flux": float(np.nanmax(self.dR[:, self.fluxes <= below_m_s])),
            "max |ΔR|": float(np.nanmax(self.dR)),
            "single-element failures": int(self.failed.sum()),
            "lowest failing flux (m/s)": float(self.fluxes[self.failed.any(0)].min()) if self.failed.any() else np.nan,
        }


def single_element_departure(feeds, fluxes, membrane: Membrane | None = None, *, n_cells: int = 80) -> Departure:
    """Solve ``feeds`` at ``fluxes`` (m/s) with the integrated pore (``n_cells`` finite volumes) and with
    ``pore="single_element"`` (its unconverged cases are reported in ``failed``, not warned about) and compare
    their rejections."""
    full = solve(feeds, fluxes, membrane=membrane, n_cells=n_cells)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        single = solve(feeds, fluxes, membrane=membrane, pore="single_element")
    present = single.feed[:, None] > 0
    dr = np.abs(single.rejection - full.rejection).max(axis=-1, initial=0.0, where=present)
    return Departure(
        np.asarray(fluxes, dtype=float), np.where(single.converged, dr, np.nan), ~single.converged & full.converged
    )
