"""Eq. 11 on a data set (:class:`Objective`), and the per-measurement predictions and errors of a model."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from .. import dspmde
from ..measurements import Measurements
from ._space import _OVERHEAD_CASES, FILM_COLUMN, PENALTY_R, FitError, Model


@dataclass
class Objective:
    """Eq. 11 on a data set: ``chi2(membrane)``; keeps a trace of every evaluation.

    ``activity`` and ``n_cells`` are passed to :func:`nanoutils.dspmde.solve`.
    """

    meas: Measurements
    activity: str | None = None
    n_cells: int = 20
    trace: list[tuple[str, float, int]] = field(default_factory=list, repr=False)
    phase: str = "start"

    def __post_init__(self) -> None:
        if not isinstance(self.meas, Measurements):
            raise FitError(f"expected nanoutils.measurements.Measurements, got {type(self.meas).__name__}")
        if len(self.meas) == 0:
            raise FitError("no measurements to fit (empty data set)")
        self.arrays = a = self.meas.arrays()
        film = self._film_coefficients()
        self.groups = []  # (feed indices, fluxes, index of each (feed, point) into the fluxes, T, film)
        keys = sorted({(float(a.T[n]), film[n]) for n in range(len(a.feed_keys))}, key=str)
        for T, k in keys:
            idx = np.array([n for n in range(len(a.feed_keys)) if a.T[n] == T and film[n] == k])
            union = np.unique(a.Jv[idx])
            own = sum(len(np.unique(a.Jv[n])) for n in idx)
            if len(idx) * len(union) <= own + _OVERHEAD_CASES * (len(idx) - 1):
                self.groups.append((idx, union, np.searchsorted(union, a.Jv[idx]), T, k))
            else:  # sparse union: one solve per feed on its own points
                for n in idx:
                    own_j = np.unique(a.Jv[n])
                    self.groups.append((np.array([n]), own_j, np.searchsorted(own_j, a.Jv[[n]]), T, k))
        self.n_points = int(a.mask.sum())

    def _film_coefficients(self) -> list[float | None]:
        a, t = self.arrays, self.meas.table
        out: list[float | None] = []
        for n, key in enumerate(a.feed_keys):
            if a.intrinsic[n]:
                out.append(None)
                continue
            rows = t[t["feed_key"] == key]
            values = pd.to_numeric(rows[FILM_COLUMN], errors="coerce") if FILM_COLUMN in rows else pd.Series([np.nan])
            if not (values.notna().all() and (values > 0).all() and values.nunique() == 1):
                raise FitError(
                    f"feed {key!r} has observed rejections but no single positive film mass-transfer "
                    f"coefficient in column {FILM_COLUMN!r} (m/s); the model needs it to compare"
                )
            out.append(float(values.iloc[0]))
        return out

    def permeate(self, mem: Any, fluxes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Model permeate (N, M, d) mol/m³ at every measured (feed, flux) and ``converged`` (N, M); with
        ``fluxes`` (G,) m/s, at those fluxes for every feed instead: (N, G, d) and (N, G).

        ``mem`` is a :class:`dspmde.Membrane` or any model with DSPM-DE's ``solve(feeds, fluxes, species=,
        temperature=, film=, activity=, n_cells=)`` returning a :class:`dspmde.Result` (e.g. the SF model)."""
        a = self.arrays
        solve = mem.solve if hasattr(mem, "solve") else partial(dspmde.solve, membrane=mem)
        shape = a.Jv.shape if fluxes is None else (len(a.feed_keys), len(fluxes))
        c_perm = np.full(shape + (len(a.species),), np.nan)
        converged = np.zeros(shape, bool)
        for idx, union, where, T, k in self.groups:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", dspmde.ConvergenceWarning)
                res = solve(
                    a.c_feed[idx],
                    union if fluxes is None else fluxes,
                    species=a.species,
                    temperature=T,
                    film=None if k is None else dspmde.Film(k=k),
                    activity=self.activity,
                    n_cells=self.n_cells,
                )
            cols = where if fluxes is None else slice(None)
            rows = np.arange(len(idx))[:, None] if fluxes is None else slice(None)
            c_perm[idx] = res.permeate[rows, cols]
            converged[idx] = res.converged[rows, cols]
        return c_perm, converged

    def residuals(self, mem: Any) -> tuple[np.ndarray, int]:
        """Normalised residuals (R_mod − R)/σ at every measurement (unconverged: ±PENALTY_R/σ) and the
        number of measurements whose case did not converge; ``mem`` as for :meth:`permeate`."""
        a = self.arrays
        c_perm, converged = self.permeate(mem)
        r = a.normalized_residuals(a.model_rejection(c_perm))
        bad = ~np.isfinite(r)
        r[bad] = PENALTY_R / a.sigma_R[a.mask][bad]
        return r, int(bad.sum())

    def chi2(self, mem: dspmde.Membrane, prior: np.ndarray | None = None) -> float:
        """The objective of eq. 11 for ``mem``, plus the squares of the ``prior`` residuals (a Gaussian
        prior's share, :meth:`Spec.prior_residuals`); appended to :attr:`trace`."""
        return float(np.sum(self.traced_residuals(mem, prior) ** 2))

    def traced_residuals(self, mem: Any, prior: np.ndarray | None = None) -> np.ndarray:
        """:meth:`residuals` followed by the ``prior`` residuals; the sum of squares is appended to :attr:`trace`."""
        r, n_bad = self.residuals(mem)
        r = np.concatenate([r, np.asarray(prior if prior is not None else [], dtype=float)])
        self.trace.append((self.phase, float(r @ r), n_bad))
        return r

    def trace_frame(self) -> pd.DataFrame:
        """Every evaluation: index, phase, objective, running best, unconverged measurements."""
        t = pd.DataFrame(self.trace, columns=["phase", "objective", "unconverged"])
        t.insert(0, "evaluation", np.arange(1, len(t) + 1))
        t["best"] = t["objective"].cummin()
        return t


def predictions(meas: Measurements, mem, *, activity: str | None = None) -> pd.DataFrame:
    """One row per measurement of ``mem`` (a Membrane, a :class:`Model` such as ``FitResult.model``, or any
    model with ``solve``, see :meth:`Objective.permeate`): feed_id (``study/feed``), study, ion (the measured
    quantity), Jv_um_s, R_meas, sigma_R, R_pred (NaN if unconverged), residual (R_pred − R_meas)/σ, converged —
    the frame :func:`nanoutils.metrics.rejection_error` scores."""
    obj = Objective(meas, activity=activity)
    return prediction_frame(obj.arrays, *obj.permeate(mem))


def prediction_frame(a, c_perm: np.ndarray, converged: np.ndarray) -> pd.DataFrame:
    """The frame of :func:`predictions` from measured arrays ``a`` (:class:`nanoutils.data.MeasuredArrays`)
    and a model's permeate ``c_perm`` (N, M, d) mol/m³ and ``converged`` (N, M) at their points."""
    R_pred = a.model_rejection(c_perm)
    n, m, q = np.nonzero(a.mask)
    frame = pd.DataFrame(
        {
            "feed_id": np.asarray(a.feed_keys, dtype=object)[n],
            "ion": np.asarray(a.quantities, dtype=object)[q],
            "Jv_um_s": a.Jv[n, m] * 1e6,
            "R_meas": a.R[n, m, q],
            "sigma_R": a.sigma_R[n, m, q],
            "R_pred": R_pred[n, m, q],
            "converged": converged[n, m],
        }
    )
    frame.insert(1, "study", frame["feed_id"].str.split("/").str[0])
    frame["residual"] = (frame["R_pred"] - frame["R_meas"]) / frame["sigma_R"]
    return frame


def performance(
    meas: Measurements, membranes: Mapping[str, dspmde.Membrane | Model], *, activity: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean absolute rejection error (pp, :func:`nanoutils.metrics.rejection_error`) of each named
    membrane or :class:`Model` on ``meas``: (per feed with an "all" row and its 95 % feed-bootstrap
    interval, per ion)."""
    from ..metrics import rejection_error

    by_feed, by_ion = {}, {}
    for label, mem in membranes.items():
        frame = predictions(meas, mem, activity=activity)
        if not frame["converged"].all():
            raise FitError(f"{label}: {int((~frame['converged']).sum())} measurements did not converge; cannot score")
        score = rejection_error(frame)
        per_feed = (100 * (frame["R_pred"] - frame["R_meas"]).abs()).groupby(frame["feed_id"]).mean()
        by_feed[label] = pd.concat(
            [per_feed, pd.Series({"all": score.value, "all, 95% CI": f"[{score.ci[0]:.1f}, {score.ci[1]:.1f}]"})]
        )
        by_ion[label] = score.per_ion
    return pd.DataFrame(by_feed), pd.DataFrame(by_ion)
