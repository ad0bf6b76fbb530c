"""One prediction API for every model: permeate concentrations and rejections.

``predict(feeds, fluxes_m_s, model)`` accepts a trained torch model (e.g. the
neural ODE, loaded with :func:`nanoutils.training.load_model`), a list of such
models (an ensemble: the frame then carries the spread), a
:class:`nanoutils.dspmde.Membrane` (DSPM-DE with those parameters), or a mechanistic model
with a ``solve(feeds, fluxes)`` method returning a :class:`nanoutils.dspmde.Result` (the
solution-friction :class:`nanoutils.friction.SFModel`, the SDEM :class:`nanoutils.sdem.SDEMModel`), a list of those,
or a model bundle
(:func:`nanoutils.load`). It returns
the same tidy frame as :meth:`nanoutils.dspmde.Result.to_frame`:
feed_id, Jv_m_s, ion, c_feed, c_perm (mol/m³), R, converged. Rejections are intrinsic: ``c_feed`` is the
concentration at the membrane surface (no concentration-polarisation film), R = 1 − c_perm/c_feed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from . import dspmde, ions

Feeds = Sequence[Mapping[str, float]] | Mapping[str, float]


def _as_feed_list(feeds: Feeds) -> list[ions.Feed]:
    if isinstance(feeds, Mapping):
        feeds = [feeds]
    return [f if isinstance(f, ions.Feed) else ions.Feed(f) for f in feeds]


def _fluxes(fluxes_m_s) -> np.ndarray:
    j = np.atleast_1d(np.asarray(fluxes_m_s, dtype=float))
    if j.ndim != 1 or j.size == 0:
        raise ValueError(f"fluxes must be a non-empty 1-D list of m/s values, got shape {j.shape}")
    bad = ~np.isfinite(j) | (j < 0)
    if bad.any():
        raise ValueError(f"fluxes must be finite and ≥ 0 m/s; got {float(j[bad][0])}")
    return j


def _torch_permeate(model, conc: np.ndarray, fluxes: np.ndarray, batch_size: int) -> np.ndarray:
    import torch

    param = next(model.parameters())
    out = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(conc), batch_size):
            c = torch.as_tensor(conc[start : start + batch_size], dtype=param.dtype, device=param.device)
            j = torch.as_tensor(fluxes, dtype=param.dtype, device=param.device).expand(len(c), -1)
            out.append(model(c, c > 0, j).cpu().double().numpy())
    return np.concatenate(out)


def _is_mechanistic(model) -> bool:
    return isinstance(model, dspmde.Membrane) or (
        callable(getattr(model, "solve", None)) and not hasattr(model, "parameters")
    )


def _mechanistic_permeate(
    model, feeds: list[ions.Feed], fluxes: np.ndarray, species: tuple[str, ...], temperature: float
) -> np.ndarray:
    """Permeate (N, M, d) of a membrane or a model with ``solve`` at ``temperature`` (K); NaN where a case did
    not converge."""
    res = (
        dspmde.solve(feeds, fluxes, membrane=model, species=species, temperature=temperature)
        if isinstance(model, dspmde.Membrane)
        else model.solve(feeds, fluxes, species=species, temperature=temperature)
    )
    return np.where(res.converged[..., None], res.permeate, np.nan)


def members_permeate(
    members: Sequence,
    feeds: list[ions.Feed],
    fluxes: np.ndarray,
    *,
    temperature: float | None = None,
    batch_size: int = 256,
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(species, feed (N, d), permeate (K, N, M, d)) mol/m³ of K members — torch models, or mechanistic ones
    (:func:`_is_mechanistic`) — one batched evaluation of all N feeds × M fluxes (m/s) per member; NaN where a
    mechanistic case did not converge. Mechanistic members are solved at ``temperature`` (K; None: 298.15 K);
    torch models have no temperature input and predict at the temperature they were trained at."""
    torch_members = bool(members) and all(hasattr(m, "parameters") for m in members)
    if not (torch_members or (members and all(_is_mechanistic(m) for m in members))):
        kinds = ", ".join(sorted({type(m).__name__ for m in members})) or "nothing"
        raise TypeError(
            f"model must be a dspmde.Membrane, a model with .solve (friction.SFModel), a torch model "
            f"or a list of either, got {kinds}"
        )
    if torch_members:
        species = tuple(members[0].config.species)
        conc, _ = ions.stack(feeds, species)
        return species, conc, np.stack([_torch_permeate(m, conc, fluxes, batch_size) for m in members])
    conc, species = ions.stack(feeds)
    T = 298.15 if temperature is None else temperature
    return species, conc, np.stack([_mechanistic_permeate(m, feeds, fluxes, species, T) for m in members])


def ensemble_frame(
    species: tuple[str, ...],
    conc: np.ndarray,
    fluxes: np.ndarray,
    permeate: np.ndarray,
    point: np.ndarray | None = None,
) -> pd.DataFrame:
    """The tidy frame (:meth:`nanoutils.dspmde.Result.to_frame`) of K members' ``permeate`` (K, N, M, d) for feeds
    ``conc`` (N, d) at ``fluxes`` (M,): ``c_perm`` and ``R`` of ``point`` (N, M, d) when given, else the members'
    mean; ``c_perm_std`` and ``R_std`` their spread (members whose case did not converge left out); ``converged``
    where the point converged, or without one, where every member did."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a case no member converged on stays NaN
        mean, std = np.nanmean(permeate, axis=0), np.nanstd(permeate, axis=0)
    best = mean if point is None else point
    converged = np.isfinite(permeate).all(axis=(0, -1)) if point is None else np.isfinite(point).all(axis=-1)
    result = dspmde.Result(
        species=species,
        feed=conc,
        fluxes=fluxes,
        permeate=best,
        membrane_surface=np.broadcast_to(conc[:, None, :], best.shape),
        converged=converged,
    )
    frame = result.to_frame()
    present = np.broadcast_to(conc[:, None, :] > 0, best.shape)
    frame["c_perm_std"] = std[present]
    frame["R_std"] = frame["c_perm_std"] / frame["c_feed"]
    return frame


def predict(
    feeds: Feeds, fluxes_m_s, model, *, temperature: float | None = None, batch_size: int = 256
) -> pd.DataFrame:
    """Tidy predictions for N feeds × M fluxes (m/s) from ``model`` (see module docstring) at ``temperature``
    (K). Predictions are intrinsic: ``c_feed`` is the concentration at the membrane surface (no
    concentration-polarisation film).

    ``temperature``: None takes 298.15 K for a membrane or mechanistic model and, for a model bundle, the
    temperature it was calibrated at (:meth:`nanoutils.bundle.Bundle.predict_frame`). Torch models have no
    temperature input: they predict at their training temperature, and a ``temperature`` given for them is
    refused (a bundle flags it per row instead).

    For an ensemble (a list of torch models, or of mechanistic models such as posterior draws of a fit)
    ``c_perm`` and ``R`` are ensemble means and the columns ``c_perm_std`` and ``R_std`` give the spread
    across members (members whose case did not converge are left out of both; ``converged`` is True where
    every member converged). A model bundle (:func:`nanoutils.load`) adds ``R_std`` (predictive standard
    deviation), ``R_std_param`` and the validity columns ``extrapolated`` and ``why``.
    """
    if hasattr(model, "predict_frame"):
        return model.predict_frame(feeds, fluxes_m_s, temperature=temperature, batch_size=batch_size)
    feed_list = _as_feed_list(feeds)
    fluxes = _fluxes(fluxes_m_s)
    if temperature is not None:
        temperature = dspmde.check_temperature(temperature)
    members = list(model) if isinstance(model, (list, tuple)) else [model]
    if temperature is not None and members and all(hasattr(m, "parameters") for m in members):
        raise ValueError(
            f"temperature {temperature:g} K: a torch model has no temperature input (it predicts at "
            "its training temperature); leave temperature unset or use a model bundle, which flags it"
        )
    if len(members) == 1 and _is_mechanistic(members[0]):
        T = 298.15 if temperature is None else temperature
        m = members[0]
        res = (
            dspmde.solve(feed_list, fluxes, membrane=m, temperature=T)
            if isinstance(m, dspmde.Membrane)
            else m.solve(feed_list, fluxes, temperature=T)
        )
        return res.to_frame()
    species, conc, permeate = members_permeate(
        members, feed_list, fluxes, temperature=temperature, batch_size=batch_size
    )
    frame = ensemble_frame(species, conc, fluxes, permeate)
    return frame if len(members) > 1 else frame.drop(columns=["c_perm_std", "R_std"])


def read_feeds_csv(path) -> tuple[list[str], list[ions.Feed]]:
    """Feeds from a CSV: one row per feed, a ``feed_id`` column (optional) and either a
    ``salts`` column (``"NaCl 10 mM + MgSO4 5 mM"``) or one ``<ion>_mM`` column per ion.
    Errors name the file, line and column."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    ids = list(frame.pop("feed_id")) if "feed_id" in frame else [str(i) for i in range(len(frame))]
    if frame.empty:
        raise ValueError(f"{path}: no feeds (rows) found")
    ion_cols = [c for c in frame.columns if c != "salts"]
    bad = [c for c in ion_cols if not c.endswith("_mM")]
    if bad or ("salts" in frame and ion_cols):
        raise ValueError(
            f"{path}: columns must be feed_id plus either 'salts' or '<ion>_mM' columns; cannot use {bad or ion_cols}"
        )
    feeds = []
    for line, (_, row) in enumerate(frame.iterrows(), start=2):
        try:
            if "salts" in frame:
                feeds.append(ions.Feed.from_salts(row["salts"]))
            else:
                feeds.append(ions.Feed({c[:-3]: float(row[c] or 0.0) for c in ion_cols}))
        except ValueError as err:
            raise type(err)(f"{path}, line {line}: {err}") from None
    return ids, feeds


def to_csv_frame(frame: pd.DataFrame, feed_ids: Sequence[str]) -> pd.DataFrame:
    """A prediction frame in the units people read (mM, LMH), with the user's feed ids."""
    from .units import m_s_to_lmh

    out = frame.assign(feed_id=np.asarray(feed_ids, dtype=object)[frame["feed_id"]], Jv_LMH=m_s_to_lmh(frame["Jv_m_s"]))
    out = out.rename(columns={"c_feed": "c_feed_mM", "c_perm": "c_perm_mM", "c_perm_std": "c_perm_std_mM"})
    first = ["feed_id", "Jv_m_s", "Jv_LMH", "ion", "c_feed_mM", "c_perm_mM", "R"]
    return out[first + [c for c in out.columns if c not in first]]


def quantity_curves(meas, model, grid_m_s) -> np.ndarray:
    """Rejection (N, G, Q) of every measured quantity of ``meas`` (:class:`nanoutils.measurements.Measurements`, N
    feeds) on the flux grid ``grid_m_s`` (G,) m/s, for drawing model curves through measurements.

    ``model``: a torch model (quantities from its permeate, laid out as ``meas.arrays(model species)``) or
    a DSPM-DE membrane / mechanistic model with ``solve``, evaluated as in scoring — at each feed's
    temperature and with its film layer when the rejections are observed ones (:mod:`nanoutils.fitting`).
    """
    from . import fitting

    grid = _fluxes(grid_m_s)
    if hasattr(model, "parameters"):
        arrays = meas.arrays(tuple(model.config.species))
        permeate = _torch_permeate(model, arrays.c_feed, grid, 256)
    else:
        objective = fitting.Objective(meas)
        arrays, permeate = objective.arrays, objective.permeate(model, fluxes=grid)[0]
    return arrays.model_rejection(permeate)
