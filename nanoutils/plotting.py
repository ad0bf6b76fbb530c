"""One look for every figure of the series, and saving them as PNG and PDF."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from . import ions


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


def parity(ax: plt.Axes, measured: np.ndarray, predicted: np.ndarray, *, lim: tuple[float, float] | None = None, **scatter) -> None:
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
