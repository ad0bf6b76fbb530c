"""Result container of a DSPM-DE batch: N feeds × M fluxes × d ions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Profiles:
    """Pore profiles: positions ``x`` (n+1,) in m from the pore entrance, concentrations
    (N, M, n+1, d) in mol/m³ inside the pore, potential (N, M, n+1) in V and permeate
    potential (N, M) in V, both relative to the feed bulk."""

    x: np.ndarray
    concentration: np.ndarray
    potential: np.ndarray
    permeate_potential: np.ndarray


@dataclass(frozen=True)
class Result:
    """Solution of :func:`solve`. Arrays in SI units (mol/m³, m/s):

    ``species`` (d names), ``feed`` (N, d), ``fluxes`` (M,), ``permeate`` (N, M, d),
    ``membrane_surface`` (N, M, d), ``rejection`` R = 1 − c_p/c_f (N, M, d; NaN for absent
    ions), ``converged`` (N, M). Cases that did not converge hold NaN outputs.
    ``info``: per-case ``iterations`` and ``residual`` (max-norm of the scaled discrete
    equations), and ``n_failed``. ``profiles``: :class:`Profiles` when requested.
    """

    species: tuple[str, ...]
    feed: np.ndarray
    fluxes: np.ndarray
    permeate: np.ndarray
    membrane_surface: np.ndarray
    converged: np.ndarray
    info: dict = field(default_factory=dict)
    profiles: Profiles | None = None

    @property
    def rejection(self) -> np.ndarray:
        """R_i = 1 − c_p,i / c_f,i (N, M, d); may be negative; NaN where the ion is absent."""
        c_f = self.feed[:, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(c_f > 0, 1.0 - self.permeate / c_f, np.nan)

    @property
    def n_failed(self) -> int:
        """Number of (feed, flux) cases that did not converge."""
        return int((~self.converged).sum())

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per (feed, flux, ion present): feed_id, Jv_m_s, ion,
        c_feed, c_perm (mol/m³), R, converged."""
        n, m, d = self.permeate.shape
        f_id, j_id, i_id = np.meshgrid(np.arange(n), np.arange(m), np.arange(d), indexing="ij")
        frame = pd.DataFrame(
            {
                "feed_id": f_id.ravel(),
                "Jv_m_s": self.fluxes[j_id.ravel()],
                "ion": np.asarray(self.species, dtype=object)[i_id.ravel()],
                "c_feed": self.feed[f_id.ravel(), i_id.ravel()],
                "c_perm": self.permeate.ravel(),
                "R": self.rejection.ravel(),
                "converged": self.converged[f_id.ravel(), j_id.ravel()],
            }
        )
        return frame[frame.c_feed > 0].reset_index(drop=True)
