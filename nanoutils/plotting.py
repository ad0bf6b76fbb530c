"""One look for every figure of the series, and saving them as PNG and PDF."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from numpy.typing import ArrayLike

from . import ions, prediction, units


def style() -> None:
    """The series' matplotlib/seaborn style (call once at the top of a notebook)."""
    sns.set_theme(context="notebook", style="ticks", palette="colorblind", font_scale=0.95)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 200, "axes.grid": True, "grid.alpha": 0.3})


def ion_label(name: str) -> str:
    """Pretty label of an ion (``"SO4-2"`` → ``"SO₄²⁻"``)."""
    return ions.get(name).label


def ion_colors(names: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """A stable colour per ion, by its position in the ion table."""
    palette = sns.color_palette("tab20", len(ions.species()))
    return {n: palette[ions.species().index(ions.canonical(n))] for n in names}


def save(fig: plt.Figure, directory: Path, name: str) -> list[Path]:
    """Save ``fig`` as ``<directory>/<name>.png`` and ``.pdf``; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.{ext}" for ext in ("png", "pdf")]
    for path in paths:
        fig.savefig(path, bbox_inches="tight")
    return paths


def parity(
    ax: plt.Axes, measured: ArrayLike, predicted: ArrayLike, *, lim: tuple[float, float] | None = None, **scatter
) -> None:
    """Parity plot of predicted against measured values with the y = x line."""
    measured, predicted = np.asarray(measured, float), np.asarray(predicted, float)
    if lim is None:
        both = np.concatenate([measured, predicted])
        pad = 0.05 * (np.nanmax(both) - np.nanmin(both) or 1.0)
        lim = (float(np.nanmin(both) - pad), float(np.nanmax(both) + pad))
    ax.plot(lim, lim, color="0.4", lw=1, ls="--", zorder=0)
    ax.scatter(measured, predicted, **{"s": 18, "alpha": 0.8, **scatter})
    ax.set_xlim(lim)
    ax.set_ylim(lim)
    ax.set_aspect("equal")


#: Marker per ion (by position in the ion table), so ions stay distinguishable in print.
MARKERS = "osD^vP*Xph<>"


def ion_markers(names: Sequence[str]) -> dict[str, str]:
    """A stable marker per ion, by its position in the ion table."""
    return {n: MARKERS[ions.species().index(ions.canonical(n)) % len(MARKERS)] for n in names}


def parity_by_ion(ax: plt.Axes, frame: pd.DataFrame, *, lim: tuple[float, float] | None = None) -> None:
    """Predicted vs measured rejection (``frame``: ion, R_meas, R_pred, split) with a marker and colour per
    ion; ``split == "real"`` points large with a black edge, ``"virtual"`` points small and open."""
    ions_present = sorted(
        frame["ion"].unique(),
        key=lambda n: ions.species().index(ions.canonical(n)) if n in ions.species() else len(ions.species()),
    )
    known = [n for n in ions_present if n in ions.species()]
    colors, markers = ion_colors(known), ion_markers(known)
    parity(ax, frame["R_meas"], frame["R_pred"], lim=lim, s=0)
    for ion in ions_present:
        color, marker = colors.get(ion, "0.3"), markers.get(ion, "o")
        label = ion_label(ion) if ion in ions.species() else ion
        for split, style in (
            ("virtual", dict(s=16, facecolors="none", edgecolors=[color], linewidths=0.8, alpha=0.7)),
            ("real", dict(s=42, color=color, edgecolors="black", linewidths=0.8)),
        ):
            sel = frame[(frame["ion"] == ion) & (frame["split"] == split)]
            if len(sel):
                ax.scatter(sel["R_meas"], sel["R_pred"], marker=marker, label=f"{label} ({split})", **style)
    ax.set(xlabel="measured rejection", ylabel="predicted rejection")


def rejection_curves(
    ax: plt.Axes,
    meas,
    predictors: Mapping[str, object],
    *,
    feed: int = 0,
    n_points: int = 60,
    flux_scale_m_s: float = 1.0,
) -> None:
    """Rejection of every measured quantity of feed ``feed`` of ``meas`` (:class:`nanoutils.measurements.Measurements`)
    vs flux / ``flux_scale_m_s``: each model's curve (``predictors``: label → any model
    :func:`nanoutils.prediction.quantity_curves` takes, or a list of them — an ensemble drawn as its mean
    with a ±2 std band; solid for the first, dashed, dotted … after; None: a model that cannot predict this
    feed, not drawn, its line style kept) on ``n_points`` fluxes from 0 to 1.05 × the highest measured one, and
    the measurements with their σ_R."""
    arrays = meas.arrays()
    grid = np.linspace(0.0, 1.05 * arrays.Jv[arrays.flux_mask].max(), n_points)
    curves, bands = {}, {}
    slot = {label: i for i, label in enumerate(predictors)}
    for label, model in predictors.items():
        if model is None:
            continue
        if isinstance(model, (list, tuple)):
            members = np.stack([prediction.quantity_curves(meas, m, grid) for m in model])
            curves[label], bands[label] = np.nanmean(members, axis=0), np.nanstd(members, axis=0)
        else:
            curves[label] = prediction.quantity_curves(meas, model, grid)
    styles = ("-", "--", ":", "-.")
    x = grid / flux_scale_m_s
    for q, name in enumerate(arrays.quantities):
        m = arrays.mask[feed, :, q]
        if not m.any():
            continue
        color = f"C{q % 10}"
        label = ion_label(name) if name in ions.species() else name
        for first, (name, R) in enumerate(curves.items()):
            i = slot[name]
            ax.plot(
                x,
                R[feed, :, q],
                color=color,
                ls=styles[i % len(styles)],
                lw=1.4 if i == 0 else 1.1,
                label=label if first == 0 else None,
            )
            if name in bands:
                spread = 2 * bands[name][feed, :, q]
                ax.fill_between(x, R[feed, :, q] - spread, R[feed, :, q] + spread, color=color, alpha=0.15, lw=0)
        ax.errorbar(
            arrays.Jv[feed, m] / flux_scale_m_s,
            arrays.R[feed, m, q],
            arrays.sigma_R[feed, m, q],
            fmt="o",
            ms=3.5,
            color=color,
            capsize=2,
        )
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set(xlabel="flux (normalised)" if flux_scale_m_s != 1.0 else "flux (m/s)", ylabel="rejection")


def departure_map(ax: plt.Axes, departure, concentrations: Sequence[float]):
    """A :class:`nanoutils.dspmde.Departure` of feeds at ``concentrations`` (mol/m³, one per feed) as a map
    over flux (LMH) × concentration: colour log10 max |ΔR| (1e-6 … 1), × where only the single element
    failed. Returns the mesh (for a colour bar)."""
    lmh = units.m_s_to_lmh(departure.fluxes)
    mesh = ax.pcolormesh(
        lmh,
        concentrations,
        np.log10(np.maximum(departure.dR, 1e-7)),
        vmin=-6,
        vmax=0,
        cmap="viridis",
        shading="nearest",
    )
    jj, cc = np.meshgrid(lmh, concentrations)
    ax.plot(jj[departure.failed], cc[departure.failed], "rx", ms=8)
    ax.set(xscale="log", yscale="log", xlabel="J_v (LMH)")
    return mesh
