"""Measurements as padded arrays a model consumes: feeds × flux points × quantities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import ions
from ._schema import quantity


@dataclass(frozen=True)
class MeasuredArrays:
    """Measurements laid out for a model: N feeds (sorted keys), up to M flux points per feed
    (sorted by Jv, then replicate), Q quantities, d species.

    A model gives permeate concentrations ``c_perm`` (N, M, d) in mol/m³ for ``c_feed`` at
    ``Jv``; a quantity is the linear combination ``c @ weights.T`` (ions: weight 1; salts:
    equivalent weights, see :class:`nanoutils.measurements.Quantity`), and its rejection is
    1 − q(c_perm) / q(c_feed) (:meth:`model_rejection`). ``intrinsic[n]`` says whether feed n's
    rejections refer to the membrane-surface concentration (compare without a film layer) or to
    the bulk feed (observed: the model needs a film layer).

    Padding: ``Jv`` repeats each feed's largest flux where ``flux_mask`` is False (so a batched
    solver can run the full grid); measured arrays are NaN where ``mask`` is False; ``row``
    indexes ``Measurements.table`` (−1 where empty).
    """

    feed_keys: tuple[str, ...]
    feeds: tuple[ions.Feed, ...]
    species: tuple[str, ...]
    c_feed: np.ndarray  # (N, d) mol/m³
    quantities: tuple[str, ...]
    weights: np.ndarray  # (Q, d)
    Jv: np.ndarray  # (N, M) m/s
    flux_mask: np.ndarray  # (N, M) bool
    R: np.ndarray  # (N, M, Q) rejection (fraction)
    sigma_R: np.ndarray  # (N, M, Q)
    c_perm: np.ndarray  # (N, M, Q) mol/m³ (of the quantity)
    sigma_c_perm: np.ndarray  # (N, M, Q) mol/m³
    mask: np.ndarray  # (N, M, Q) bool: a measurement exists
    intrinsic: np.ndarray  # (N,) bool
    T: np.ndarray  # (N,) K
    row: np.ndarray  # (N, M, Q) int

    @property
    def q_feed(self) -> np.ndarray:
        """Feed value of every quantity, (N, Q) mol/m³."""
        return self.c_feed @ self.weights.T

    def model_quantities(self, c: np.ndarray) -> np.ndarray:
        """Quantities (…, Q) from ion concentrations (…, d) in mol/m³; NaN only where an ion the quantity
        weighs is NaN (a model that cannot predict one ion still gives the quantities without it)."""
        c = np.asarray(c, dtype=float)
        missing = np.isnan(c)
        q = np.where(missing, 0.0, c) @ self.weights.T
        return np.where(missing.astype(float) @ (self.weights.T != 0) > 0, np.nan, q)

    def model_rejection(self, c_perm: np.ndarray) -> np.ndarray:
        """Rejection of every quantity (N, M, Q) from model permeate concentrations (N, M, d)."""
        q_feed = self.q_feed[:, None, :]
        q_perm = self.model_quantities(c_perm)
        out = np.full(q_perm.shape, np.nan)
        np.divide(q_perm, q_feed, out=out, where=np.broadcast_to(q_feed > 0, q_perm.shape))
        return 1.0 - out

    def normalized_residuals(self, R_model: np.ndarray) -> np.ndarray:
        """(R_model − R) / σ_R at every measurement, flat in (feed, flux, quantity) order; the
        sum of its squares is the objective of the paper's eq. 11."""
        return ((np.asarray(R_model, dtype=float) - self.R) / self.sigma_R)[self.mask]


def build_arrays(
    table: pd.DataFrame, feeds_by_key: Mapping[str, ions.Feed], species: Sequence[str] | None = None
) -> MeasuredArrays:
    """Lay a measurement table (``Measurements.table``, its feeds by key) out as :class:`MeasuredArrays`;
    ``species`` defaults to the ions of the feeds."""
    t = table
    keys = tuple(sorted(feeds_by_key))
    feeds = tuple(feeds_by_key[k] for k in keys)
    c_feed, names = ions.stack(feeds, species)
    quantities = _ordered_quantities(t["quantity"].unique())
    weights = np.zeros((len(quantities), len(names)))
    for qi, qname in enumerate(quantities):
        for ion, w in quantity(qname).weights.items():
            weights[qi, names.index(ion)] = w

    points = {k: sorted(set(zip(g["Jv_m_s"], g["replicate"], strict=True))) for k, g in t.groupby("feed_key")}
    N, M, Q = len(keys), max(len(p) for p in points.values()), len(quantities)
    Jv, flux_mask = np.zeros((N, M)), np.zeros((N, M), bool)
    for n, k in enumerate(keys):
        fluxes = [jv for jv, _ in points[k]]
        Jv[n] = fluxes + [fluxes[-1]] * (M - len(fluxes))
        flux_mask[n, : len(fluxes)] = True
    grids = {name: np.full((N, M, Q), np.nan) for name in ("R", "sigma_R", "c_perm", "sigma_c_perm")}
    mask, row = np.zeros((N, M, Q), bool), np.full((N, M, Q), -1)
    key_index = {k: n for n, k in enumerate(keys)}
    point_index = {k: {p: m for m, p in enumerate(pts)} for k, pts in points.items()}
    q_index = {q: i for i, q in enumerate(quantities)}
    cols = {"R": "R", "sigma_R": "sigma_R", "c_perm": "c_perm_mol_m3", "sigma_c_perm": "sigma_c_perm_mol_m3"}
    r: Any  # a row of the tidy table (pandas-stubs type every field as any scalar)
    for i, r in enumerate(t.itertuples(index=False)):
        n = key_index[r.feed_key]
        m = point_index[r.feed_key][(r.Jv_m_s, r.replicate)]
        q = q_index[r.quantity]
        for name, col in cols.items():
            grids[name][n, m, q] = t.at[i, col]
        mask[n, m, q], row[n, m, q] = True, i
    first = t.groupby("feed_key").first()
    return MeasuredArrays(
        feed_keys=keys,
        feeds=feeds,
        species=names,
        c_feed=c_feed,
        quantities=quantities,
        weights=weights,
        Jv=Jv,
        flux_mask=flux_mask,
        mask=mask,
        row=row,
        intrinsic=np.array([first.at[k, "rejection_type"] == "intrinsic" for k in keys]),
        T=np.array([first.at[k, "T_K"] for k in keys], dtype=float),
        **grids,
    )


def _ordered_quantities(names) -> tuple[str, ...]:
    order = ions.species()
    ion_q = sorted((q for q in names if q in order), key=order.index)
    return tuple(ion_q + sorted(q for q in names if q not in order))
