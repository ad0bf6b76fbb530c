"""Validation of model inputs, shared by the models (torch) and the training container (numpy).

NumPy only, so the data layer can check feeds and fluxes without importing torch; torch tensors are
accepted (read as NumPy arrays on the CPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class ModelInputError(ValueError):
    """Inputs of a model or data set with the wrong shape or an invalid value; the message names it."""


def check_inputs(feed: Any, species_mask: Any, flux: Any, flux_mask: Any | None, species: Sequence[str]) -> None:
    """Raise :class:`ModelInputError` naming the first bad value.

    feed (N, d) mol/m³: finite, ≥ 0, zero where ``species_mask`` is false, some
    charged species per sample; species_mask (N, d); flux (N, K) m/s: finite, ≥ 0
    where ``flux_mask`` (N, K) is true. Arrays or torch tensors.
    """
    feed, species_mask, flux = (_numpy(a) for a in (feed, species_mask, flux))
    d = len(species)
    if feed.ndim != 2 or feed.shape[1] != d:
        raise ModelInputError(f"feed must have shape (N, {d}) (species {', '.join(species)}), got {tuple(feed.shape)}")
    if species_mask.shape != feed.shape:
        raise ModelInputError(
            f"species mask shape {tuple(species_mask.shape)} differs from feed shape {tuple(feed.shape)}"
        )
    if flux.ndim != 2 or flux.shape[0] != feed.shape[0]:
        raise ModelInputError(f"flux must have shape (N, K) with N = {feed.shape[0]}, got {tuple(flux.shape)}")
    fmask = np.ones(flux.shape, dtype=bool) if flux_mask is None else _numpy(flux_mask).astype(bool)
    if fmask.shape != flux.shape:
        raise ModelInputError(f"flux mask shape {tuple(fmask.shape)} differs from flux shape {tuple(flux.shape)}")
    mask = species_mask.astype(bool)
    with np.errstate(invalid="ignore"):
        _first_bad(~np.isfinite(feed), "feed concentration is not finite", feed, species)
        _first_bad(feed < 0, "feed concentration is negative", feed, species, unit=" mol/m³")
        _first_bad((feed != 0) & ~mask, "feed concentration of an absent (masked) species is not 0", feed, species)
        _first_bad(~np.isfinite(flux) & fmask, "flux is not finite", flux)
        _first_bad((flux < 0) & fmask, "flux is negative", flux, unit=" m/s")
        empty = ~((feed > 0) & mask).any(-1)
    if empty.any():
        raise ModelInputError(
            f"sample {int(np.flatnonzero(empty)[0])} has no species present with a positive concentration"
        )


def _numpy(a: Any) -> np.ndarray:
    """A NumPy view of an array or a (CPU copy of a) torch tensor."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _first_bad(
    bad: np.ndarray, what: str, values: np.ndarray, species: Sequence[str] | None = None, unit: str = ""
) -> None:
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        where = f"species {species[j]}" if species is not None else f"flux point {j}"
        raise ModelInputError(f"{what}: sample {i}, {where}: {float(values[i, j])!r}{unit}")
