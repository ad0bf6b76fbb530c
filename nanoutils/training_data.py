"""The data set every learned model trains on: feeds × flux points × permeate targets.

:class:`TransportData` holds feeds (mol/m³), flux points (m/s) and permeate
targets (mean and σ, mol/m³) with masks for absent species, padded flux points
and missing targets, validates them, saves/loads them as ``.npz`` with JSON
metadata, and assembles simulated sets from DSPM-DE labels (dropping and
counting unconverged points). :func:`split_by_composition` splits whole feeds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import ions
from ._files import atomic_path
from ._inputs import ModelInputError, check_inputs

FORMAT_VERSION = 1
ARRAYS = ("feed", "species_mask", "flux", "flux_mask", "permeate", "sigma", "target_mask", "weight")


@dataclass
class TransportData:
    """N feeds × K flux points, species order ``species`` (default the ion table, d = 12).

    feed (N, d) mol/m³; species_mask (N, d) bool; flux (N, K) m/s; flux_mask
    (N, K) bool (False = padding); permeate (N, K, d) mol/m³ target means; sigma
    (N, K, d) mol/m³ target standard deviations (0 for simulated data);
    target_mask (N, K, d) bool (default: species present at a real flux point);
    weight (N,) > 0 per-sample loss weight; metadata: JSON-serialisable dict.
    observation (N, Q, d) or None: targets are the quantities W c (then permeate, sigma and target_mask are
    (N, K, Q), and W must not weight absent species); None means W = identity (Q = d).
    code (N, C) or None: the membrane code of each sample (:mod:`nanoutils.membrane_family`), the extra input of a
    membrane-aware model; a NaN row means "the model's own code" (measured feeds of the membrane being calibrated).
    """

    feed: np.ndarray
    species_mask: np.ndarray
    flux: np.ndarray
    permeate: np.ndarray
    # None: the default above, filled in by __post_init__ (so the attributes are always arrays)
    flux_mask: np.ndarray = None  # type: ignore[assignment]
    sigma: np.ndarray = None  # type: ignore[assignment]
    target_mask: np.ndarray = None  # type: ignore[assignment]
    weight: np.ndarray = None  # type: ignore[assignment]
    species: tuple[str, ...] = field(default_factory=ions.species)
    metadata: dict[str, Any] = field(default_factory=dict)
    observation: np.ndarray | None = None
    code: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.species = tuple(ions.canonical(s) for s in self.species)
        self.feed, self.flux, self.permeate = (
            np.asarray(a, dtype=float) for a in (self.feed, self.flux, self.permeate)
        )
        self.species_mask = np.asarray(self.species_mask, dtype=bool)
        n, k, d = len(self.feed), self.flux.shape[-1], len(self.species)
        self.flux_mask = np.ones((n, k), bool) if self.flux_mask is None else np.asarray(self.flux_mask, dtype=bool)
        observed = self.species_mask
        if self.observation is not None:
            self.observation = np.asarray(self.observation, dtype=float)
            if self.observation.ndim != 3 or self.observation.shape[0] != n or self.observation.shape[2] != d:
                raise ModelInputError(f"observation must have shape ({n}, Q, {d}), got {self.observation.shape}")
            bad = (self.observation != 0) & ~self.species_mask[:, None, :] | ~np.isfinite(self.observation)
            _no_bad(bad, "observation weights an absent species or is not finite", axes="(sample, quantity, species)")
            observed = (self.observation != 0).any(-1)
            d = self.observation.shape[1]
        self.sigma = np.zeros((n, k, d)) if self.sigma is None else np.asarray(self.sigma, dtype=float)
        default_target = observed[:, None, :] & self.flux_mask[:, :, None]
        self.target_mask = default_target if self.target_mask is None else np.asarray(self.target_mask, dtype=bool)
        self.weight = np.ones(n) if self.weight is None else np.asarray(self.weight, dtype=float)
        if self.code is not None:
            self.code = np.asarray(self.code, dtype=float)
            if self.code.ndim != 2 or len(self.code) != n:
                raise ModelInputError(f"code must have shape ({n}, C), got {self.code.shape}")
            rows = np.isnan(self.code).all(1) | np.isfinite(self.code).all(1)
            _no_bad(~rows[:, None], "a membrane code row is neither finite nor all NaN", axes="(sample, 0)")
        check_inputs(self.feed, self.species_mask, self.flux, self.flux_mask, self.species)
        for name in ("permeate", "sigma", "target_mask"):
            if getattr(self, name).shape != (n, k, d):
                raise ModelInputError(f"{name} must have shape {(n, k, d)}, got {getattr(self, name).shape}")
        if self.weight.shape != (n,) or not np.all(np.isfinite(self.weight) & (self.weight > 0)):
            raise ModelInputError(f"weight must be {n} finite positive numbers, got shape {self.weight.shape}")
        _no_bad(
            self.target_mask & ~default_target,
            "a target is marked for an absent species or quantity or a padded flux point",
        )
        _no_bad(self.target_mask & ~np.isfinite(self.permeate), "target permeate is not finite", self.permeate)
        _no_bad(self.target_mask & ~(self.sigma >= 0), "target σ is negative or NaN", self.sigma)
        self.permeate = np.where(self.target_mask, self.permeate, 0.0)
        self.metadata = dict(self.metadata)

    def __len__(self) -> int:
        return len(self.feed)

    def subset(self, index: Sequence[int] | np.ndarray) -> TransportData:
        """The samples at ``index`` (same species, flux padding and metadata)."""
        idx = np.asarray(index)
        obs = None if self.observation is None else self.observation[idx]
        code = None if self.code is None else self.code[idx]
        return TransportData(
            **{a: getattr(self, a)[idx] for a in ARRAYS},
            species=self.species,
            metadata=self.metadata,
            observation=obs,
            code=code,
        )

    @property
    def n_targets(self) -> int:
        """Q: quantities per flux point (d when there is no observation matrix)."""
        return self.permeate.shape[-1]

    def observe(self, c: np.ndarray) -> np.ndarray:
        """Observed quantities (N, K, Q) from permeate concentrations c (N, K, d) in mol/m³."""
        c = np.asarray(c, dtype=float)
        return c if self.observation is None else np.einsum("nkd,nqd->nkq", c, self.observation)

    def quantity_names(self) -> tuple[str, ...]:
        """Names of the Q target quantities: the species, or ``metadata["quantities"]``."""
        if self.observation is None:
            return self.species
        names = tuple(self.metadata.get("quantities", ()))
        return names if len(names) == self.n_targets else tuple(f"q{i}" for i in range(self.n_targets))

    @classmethod
    def concat(cls, parts: Sequence[TransportData], metadata: dict[str, Any] | None = None) -> TransportData:
        """Samples of several data sets (e.g. simulated + measured), flux axes padded to the longest."""
        if len({p.species for p in parts}) != 1:
            raise ModelInputError("data sets to concatenate have different species orders")
        k = max(p.flux.shape[1] for p in parts)
        obs = None
        if any(p.observation is not None for p in parts):  # identity for parts without one, Q padded with zeros
            parts = [p if p.observation is not None else p._with_identity() for p in parts]
            q = max(p.n_targets for p in parts)
            obs = np.concatenate([_pad_axis(p._observation(), q, 1) for p in parts])
            parts = [p._padded_targets(q) for p in parts]
        arrays = {
            a: np.concatenate(
                [
                    _pad_k(getattr(p, a), k) if a not in ("feed", "species_mask", "weight") else getattr(p, a)
                    for p in parts
                ]
            )
            for a in ARRAYS
        }
        meta = metadata if metadata is not None else {"parts": [p.metadata for p in parts]}
        return cls(**arrays, species=parts[0].species, metadata=meta, observation=obs, code=_codes(parts))

    def _observation(self) -> np.ndarray:
        """W (N, Q, d): ``observation``, or the identity on the present species where there is none."""
        if self.observation is not None:
            return self.observation
        return np.eye(len(self.species))[None] * self.species_mask[:, None, :]

    def _with_identity(self) -> TransportData:
        return TransportData(
            **{a: getattr(self, a) for a in ARRAYS},
            species=self.species,
            metadata=self.metadata,
            observation=self._observation(),
            code=self.code,
        )

    def _padded_targets(self, q: int) -> TransportData:
        arrays = {
            a: _pad_axis(getattr(self, a), q, 2) if a in ("permeate", "sigma", "target_mask") else getattr(self, a)
            for a in ARRAYS
        }
        return TransportData(
            **arrays,
            species=self.species,
            metadata=self.metadata,
            observation=_pad_axis(self._observation(), q, 1),
            code=self.code,
        )

    @classmethod
    def from_labels(
        cls,
        feed: np.ndarray,
        species_mask: np.ndarray,
        fluxes: np.ndarray,
        permeate: np.ndarray,
        converged: np.ndarray,
        species: Sequence[str],
        metadata: dict[str, Any] | None = None,
        code: np.ndarray | None = None,
    ) -> TransportData:
        """A simulated set from N feeds labelled at M fluxes (m/s), each on the membrane ``code`` (N, C) if given:
        unconverged points are dropped (flux_mask False), compositions with none left are removed, and both are
        counted in metadata."""
        converged = np.asarray(converged, dtype=bool)
        keep = converged.any(1)
        meta = dict(metadata or {})
        meta.update(
            n_compositions_labelled=int(len(converged)),
            n_points_labelled=int(converged.size),
            n_points_unconverged=int((~converged).sum()),
            n_compositions_dropped=int((~keep).sum()),
        )
        flux = np.broadcast_to(np.asarray(fluxes, dtype=float), converged.shape)
        perm = np.where(converged[..., None], np.nan_to_num(np.asarray(permeate, dtype=float)), 0.0)
        return cls(
            feed=np.asarray(feed)[keep],
            species_mask=np.asarray(species_mask)[keep],
            flux=flux[keep],
            flux_mask=converged[keep],
            permeate=perm[keep],
            species=tuple(species),
            metadata=meta,
            code=None if code is None else np.asarray(code, dtype=float)[keep],
        )

    def to_frame(self, predicted: np.ndarray | None = None) -> pd.DataFrame:
        """Tidy frame, one row per target (sample, flux point, ion or quantity): ``feed_id`` (sample index),
        ``Jv_m_s``, ``ion`` (the quantity's name), ``c_feed``, ``c_meas`` (mol/m³), ``R_meas``; with ``predicted``
        permeate (N, K, d) mol/m³ also ``c_pred`` and ``R_pred`` (the columns
        :func:`nanoutils.metrics.rejection_error` reads)."""
        i, k, j = np.nonzero(self.target_mask)
        q_feed = self.feed if self.observation is None else np.einsum("nd,nqd->nq", self.feed, self.observation)
        c_feed = q_feed[i, j]
        frame = pd.DataFrame(
            {
                "feed_id": i,
                "Jv_m_s": self.flux[i, k],
                "ion": np.asarray(self.quantity_names())[j],
                "c_feed": c_feed,
                "c_meas": self.permeate[i, k, j],
            }
        )
        frame["R_meas"] = 1.0 - frame["c_meas"] / c_feed
        if predicted is not None:
            predicted = np.asarray(predicted, dtype=float)
            expected = self.permeate.shape[:2] + (len(self.species),)
            if predicted.shape != expected:
                raise ModelInputError(f"predicted permeate has shape {predicted.shape}, expected {expected}")
            frame["c_pred"] = self.observe(predicted)[i, k, j]
            frame["R_pred"] = 1.0 - frame["c_pred"] / c_feed
        return frame

    def save(self, path: str | os.PathLike) -> Path:
        """Write a compressed ``.npz`` (arrays, species, metadata as JSON)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            header = json.dumps({"format": FORMAT_VERSION, "species": list(self.species), "metadata": self.metadata})
        except TypeError as err:
            raise ValueError(f"metadata is not JSON-serialisable: {err}") from None
        arrays = {a: getattr(self, a) for a in ARRAYS}
        if self.observation is not None:
            arrays["observation"] = self.observation
        if self.code is not None:
            arrays["code"] = self.code
        # a file of its own, then renamed: a reader (another process labelling the same cache) sees the old file
        # or the whole new one, never a part
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, header=np.array(header), **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> TransportData:
        """Read a data set written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as f:
            header = json.loads(str(f["header"]))
            if header.get("format") != FORMAT_VERSION:
                raise ValueError(f"{path}: data format {header.get('format')!r}, expected {FORMAT_VERSION}")
            obs = f["observation"] if "observation" in f.files else None
            return cls(
                **{a: f[a] for a in ARRAYS},
                species=tuple(header["species"]),
                metadata=header["metadata"],
                observation=obs,
                code=f["code"] if "code" in f.files else None,
            )


def split_by_composition(
    data: TransportData, val_fraction: float = 0.2, seed: int = 0
) -> tuple[TransportData, TransportData]:
    """(train, validation) split of whole feed compositions: identical feeds always land on the same side."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    _, group = np.unique(data.feed, axis=0, return_inverse=True)
    groups = np.random.default_rng(seed).permutation(group.max() + 1)
    n_val = min(max(1, round(val_fraction * len(groups))), len(groups) - 1)
    is_val = np.isin(group.ravel(), groups[:n_val])
    return data.subset(np.flatnonzero(~is_val)), data.subset(np.flatnonzero(is_val))


def _codes(parts: Sequence[TransportData]) -> np.ndarray | None:
    """The membrane codes of concatenated parts: None if no part has one, else NaN rows (the model's own code)
    for the parts without."""
    widths = {p.code.shape[1] for p in parts if p.code is not None}
    if not widths:
        return None
    if len(widths) > 1:
        raise ModelInputError(f"data sets to concatenate have membrane codes of different lengths {sorted(widths)}")
    c = widths.pop()
    return np.concatenate([p.code if p.code is not None else np.full((len(p), c), np.nan) for p in parts])


def _pad_k(a: np.ndarray, k: int) -> np.ndarray:
    widths = [(0, 0), (0, k - a.shape[1])] + [(0, 0)] * (a.ndim - 2)
    return np.pad(a, widths)


def _pad_axis(a: np.ndarray, n: int, axis: int) -> np.ndarray:
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, n - a.shape[axis])
    return np.pad(a, widths)


def _no_bad(
    bad: np.ndarray, what: str, values: np.ndarray | None = None, axes: str = "(sample, flux point, species)"
) -> None:
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        shown = f" ({values[where]!r})" if values is not None else ""
        raise ModelInputError(f"{what} at {axes} index {where}{shown}")
