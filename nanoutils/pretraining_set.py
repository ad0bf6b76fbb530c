"""The simulated pre-training set (paper Section 2.2), generated once and cached.

:class:`PretrainingSpec` names everything that decides the labels: compositions
(:func:`nanoutils.sampling.sobol_compositions`: count, seed, bounds, subset
sizes), the flux grid (:func:`nanoutils.sampling.flux_grid`: points, maximum in
m/s), the membrane (Table 2 NF270 by default), the temperature (25 °C), no film
layer, the DSPM-DE discretisation and the package version. :func:`pretraining_set`
labels the compositions with the batched DSPM-DE, drops unconverged points and
counts them (:meth:`TransportData.from_labels`), and saves the set with that
specification as metadata under ``runs/<profile>/data/`` (:meth:`PretrainingSpec.file_name`); a later call with the
same specification loads the file instead (it prints "cache hit" or "cache miss"
with the reason). :func:`split` cuts train/validation/test by composition.

Two switches choose the labels. ``activity``: ``"ideal"`` (default; the single-membrane set of chapters 03–06) or
``"pitzer"`` (Pitzer–Kim activity coefficients in eq. 8, the paper's choice; about 2× the ideal cost at a
128-composition batch, benchmarks/RESULTS.md). ``family``: False labels every composition on ``membrane``
(Table 2's Z); True labels each block of ``membrane_block`` compositions on its own membrane drawn from the
membrane family's prior (:mod:`nanoutils.membrane_family`; Sobol draws seeded with ``seed + 1``), and the set
carries each sample's membrane code (``TransportData.code``), the extra input of a membrane-aware model; the
prior is then part of the cache key (the family set of chapters 04–06 is Pitzer-labelled, sized by the knob
``family_set``). The single-membrane, ideal set has the cache key and file it always had.

Labelling runs in chunks of :data:`CHUNK` compositions (the batched solver's rounding depends on the batch,
so the chunks are fixed whatever runs them): one after the other (``scheduler=None``) or in parallel with
dask (``"threads"`` or ``"processes"`` on this machine, ``"tcp://host:8786"`` or a ``distributed.Client``
on a cluster). Every scheduler gives bit-identical labels, and the scheduler is not part of the cache key.
Start dask-distributed workers under ``dask.config.set(DASK_CONFIG)`` (or the same setting in the cluster's
dask configuration): distributed's default ``MALLOC_TRIM_THRESHOLD_=65536`` in worker processes makes the
solver's many array allocations about 2.5× slower.
"""

from __future__ import annotations

import importlib.metadata
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import dspmde, membrane_family, sampling, units
from .profiles import SETTINGS, Profile, get
from .training_data import TransportData, split_by_composition

FILE_NAME = "pretraining.npz"
#: Compositions per labelling chunk (one batched DSPM-DE solve; one dask task).
CHUNK = 128
#: Dask configuration for worker processes: one BLAS thread each, glibc's default malloc trimming.
DASK_CONFIG = {
    "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}
}
#: Local dask schedulers by name.
LOCAL_SCHEDULERS = ("threads", "processes", "synchronous")


class LabellingError(ValueError):
    """A scheduler :func:`label` cannot use; names it."""


def _version() -> str:
    try:
        return importlib.metadata.version("nanoutils")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


@dataclass(frozen=True)
class PretrainingSpec:
    """What decides the simulated set. Concentrations in mol/m³, fluxes in m/s, temperature in K;
    ``membrane`` is a :class:`nanoutils.dspmde.Membrane` (default Table 2 NF270); ``val_fraction``
    and ``test_fraction`` are fractions of compositions held out by :func:`split`; ``activity`` (``"ideal"`` or
    ``"pitzer"``), ``family`` and ``membrane_block`` as the module docstring (``membrane`` is unused when
    ``family``)."""

    n_compositions: int = SETTINGS["pretraining_compositions"].default
    n_flux: int = SETTINGS["pretraining_fluxes"].default
    j_max: float = sampling.J_MAX_M_S
    seed: int = 0
    c_min: float = sampling.C_MIN_MOL_M3
    c_max: float = sampling.C_MAX_MOL_M3
    min_species: int = 2
    max_species: int | None = None
    membrane: dspmde.Membrane = field(default_factory=dspmde.Membrane.nf270)
    temperature: float = 298.15
    n_cells: int = 20  # finite volumes across the pore (the solver's default)
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    activity: str = "ideal"
    family: bool = False
    membrane_block: int = SETTINGS["family_set"].default["membrane_block"]

    def __post_init__(self) -> None:
        if self.activity not in ("ideal", "pitzer"):
            raise ValueError(f"activity must be 'ideal' or 'pitzer', got {self.activity!r}")
        if self.membrane_block < 1:
            raise ValueError(f"membrane_block must be ≥ 1, got {self.membrane_block}")
        if self.n_compositions < 3 or self.n_flux < 1:
            raise ValueError(f"need ≥ 3 compositions and ≥ 1 flux point, got {self.n_compositions}, {self.n_flux}")
        if not (
            0 < self.val_fraction < 1 and 0 < self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1
        ):
            raise ValueError(
                f"val_fraction and test_fraction must be in (0, 1) with a sum < 1, "
                f"got {self.val_fraction}, {self.test_fraction}"
            )

    @classmethod
    def for_profile(cls, profile: str | Profile, **overrides: Any) -> PretrainingSpec:
        """The sizes of a run profile, with ``overrides``: knobs ``pretraining_compositions`` and
        ``pretraining_fluxes`` of :data:`nanoutils.profiles.SETTINGS`, or knob ``family_set`` when ``family=True`` is
        among the overrides (the flux grid runs from J_max/n to J_max)."""
        s = get(profile).settings
        if overrides.get("family", False):
            f = s.family_set
            spec = cls(n_compositions=f["compositions"], n_flux=f["fluxes"], membrane_block=f["membrane_block"])
        else:
            spec = cls(n_compositions=s.pretraining_compositions, n_flux=s.pretraining_fluxes)
        return replace(spec, **overrides)

    def file_name(self) -> str:
        """``pretraining.npz`` for the single-membrane ideal set, else e.g. ``pretraining_family_pitzer.npz``."""
        tags = ("_family" if self.family else "") + ("" if self.activity == "ideal" else f"_{self.activity}")
        return FILE_NAME.replace(".npz", f"{tags}.npz")

    def membranes(self) -> list[membrane_family.FamilyMembrane]:
        """The family membranes of the composition blocks (``family`` sets only), one per ``membrane_block``."""
        if not self.family:
            raise ValueError("a single-membrane specification (family=False) draws no membranes")
        return membrane_family.draw(-(-self.n_compositions // self.membrane_block), seed=self.seed + 1)

    def fluxes(self) -> np.ndarray:
        """The flux grid in m/s."""
        return sampling.flux_grid(self.n_flux, self.j_max)

    def compositions(self) -> sampling.Compositions:
        """The Sobol feed compositions this specification labels."""
        return sampling.sobol_compositions(
            self.n_compositions,
            seed=self.seed,
            c_min=self.c_min,
            c_max=self.c_max,
            min_species=self.min_species,
            max_species=self.max_species,
        )

    def metadata(self) -> dict[str, Any]:
        """JSON-serialisable description (the cache key): every field, the film (none) and the package version."""
        meta = asdict(self)
        for name in ("activity", "family", "membrane_block"):  # absent from the single-membrane ideal key, as before
            meta.pop(name)
        if self.activity != "ideal":
            meta["activity"] = self.activity
        if self.family:
            meta.update(family=membrane_family.metadata(), membrane_block=self.membrane_block, membrane=None)
        meta.update(
            j_max_lmh=float(units.m_s_to_lmh(self.j_max)),
            film=None,
            nanoutils_version=_version(),
            labeller="nanoutils.dspmde.solve",
        )
        return meta


def label(spec: PretrainingSpec, scheduler: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """DSPM-DE permeate (N, M, d) mol/m³, converged mask (N, M) and membrane codes (N, C) (None for a
    single-membrane set) of ``spec``'s compositions × fluxes, in chunks of :data:`CHUNK` compositions (a family
    set: one chunk per membrane block) run by ``scheduler``: None (serially, here), a name of
    :data:`LOCAL_SCHEDULERS`, a dask-distributed scheduler address (``"tcp://host:8786"``) or a
    ``distributed.Client``. The result does not depend on the scheduler."""
    comp, fluxes = spec.compositions(), spec.fluxes()
    base = {"temperature": spec.temperature, "n_cells": spec.n_cells, "activity": spec.activity}
    size = spec.membrane_block if spec.family else CHUNK
    starts = range(0, len(comp), size)
    chunks = [
        replace(comp, concentration=comp.concentration[i : i + size], mask=comp.mask[i : i + size]) for i in starts
    ]
    membranes = spec.membranes() if spec.family else None
    options = (
        [{**base, **m.solve_options()} for m in membranes] if membranes else [{**base, "membrane": spec.membrane}]
    ) * (1 if membranes else len(chunks))
    if scheduler is None:
        parts = [sampling.label_with_dspmde(c, fluxes, **o) for c, o in zip(chunks, options, strict=True)]
    else:
        parts = _dask_map(chunks, fluxes, options, scheduler)
    codes = (
        np.concatenate([np.repeat(m.code()[None], len(c), axis=0) for m, c in zip(membranes, chunks, strict=True)])
        if membranes
        else None
    )
    return np.concatenate([p for p, _ in parts]), np.concatenate([c for _, c in parts]), codes


def _dask_map(
    chunks: list[sampling.Compositions], fluxes: np.ndarray, options: list[dict[str, Any]], scheduler: Any
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``label_with_dspmde`` of every chunk (with its solver options) as dask tasks on ``scheduler`` (see
    :func:`label`)."""
    import dask

    tasks = [
        dask.delayed(sampling.label_with_dspmde, pure=True)(c, fluxes, **o)
        for c, o in zip(chunks, options, strict=True)
    ]
    if isinstance(scheduler, str) and scheduler in LOCAL_SCHEDULERS:
        return list(dask.compute(*tasks, scheduler=scheduler))
    if isinstance(scheduler, str) and "://" in scheduler:
        from distributed import Client

        with Client(scheduler) as client:
            return list(dask.compute(*tasks, scheduler=client))
    if hasattr(scheduler, "get") and hasattr(scheduler, "gather"):  # a distributed.Client
        return list(dask.compute(*tasks, scheduler=scheduler))
    raise LabellingError(
        f"scheduler {scheduler!r}: expected None, one of {', '.join(LOCAL_SCHEDULERS)}, "
        f"an address such as 'tcp://host:8786', or a distributed.Client"
    )


def pretraining_set(
    spec: PretrainingSpec | None = None,
    directory: str | Path | None = None,
    *,
    profile: str | Profile = "default",
    verbose: bool = True,
    scheduler: Any = None,
) -> TransportData:
    """The labelled set of ``spec`` (default: the profile's), loaded from ``directory`` (default
    ``runs/<profile>/data/``) when its metadata matches, otherwise labelled with DSPM-DE by ``scheduler``
    (:func:`label`; None: serially) and saved.

    The returned metadata holds the specification, ``n_compositions_labelled``,
    ``n_points_unconverged``, ``n_compositions_dropped`` and ``labelling_seconds``.
    """
    spec = spec or PretrainingSpec.for_profile(profile)
    path = Path(directory or get(profile).subdir("data")) / spec.file_name()
    key = spec.metadata()
    if path.exists():
        try:
            cached = TransportData.load(path)
            reason = None if cached.metadata.get("spec") == key else "its specification differs"
        except (ValueError, KeyError, OSError) as err:
            reason = f"it could not be read ({err})"
        if reason is None:
            _say(verbose, f"cache hit: {path} ({len(cached)} compositions)")
            return cached
        _say(verbose, f"cache miss: {path} exists but {reason}; labelling again")
    else:
        _say(verbose, f"cache miss: no {path}; labelling")
    comp = spec.compositions()
    t0 = time.perf_counter()
    permeate, converged, codes = label(spec, scheduler)
    seconds = time.perf_counter() - t0
    data = TransportData.from_labels(
        comp.concentration,
        comp.mask,
        spec.fluxes(),
        permeate,
        converged,
        comp.species,
        {"spec": key, "labelling_seconds": round(seconds, 3)},
        code=codes,
    )
    data.save(path)
    _say(
        verbose,
        f"labelled {len(comp)} compositions × {spec.n_flux} fluxes in {seconds:.1f} s; "
        f"{data.metadata['n_points_unconverged']} points unconverged, "
        f"{data.metadata['n_compositions_dropped']} compositions dropped; saved {path}",
    )
    return data


def split(data: TransportData, spec: PretrainingSpec | None = None) -> dict[str, TransportData]:
    """``{"train", "val", "test"}`` by whole composition, with the fractions and seed of ``spec``; a family set
    (with membrane codes) by whole membrane, so validation and test membranes are unseen in training."""
    spec = spec or PretrainingSpec(
        **{k: v for k, v in data.metadata["spec"].items() if k in ("seed", "val_fraction", "test_fraction")}
    )
    cut = split_by_membrane if data.code is not None else split_by_composition
    rest, test = cut(data, spec.test_fraction, seed=spec.seed)
    train, val = cut(rest, spec.val_fraction / (1 - spec.test_fraction), seed=spec.seed + 1)
    return {"train": train, "val": val, "test": test}


def split_by_membrane(
    data: TransportData, val_fraction: float = 0.2, seed: int = 0
) -> tuple[TransportData, TransportData]:
    """(train, held-out) split of a family set by whole membrane (rows of equal code), seeded."""
    if data.code is None:
        raise ValueError("split_by_membrane needs a family set (TransportData with membrane codes)")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    _, group = np.unique(data.code, axis=0, return_inverse=True)
    group = group.ravel()
    n_groups = group.max() + 1
    if n_groups < 2:
        raise ValueError(f"a family set with {n_groups} membrane cannot be split by membrane")
    order = np.random.default_rng(seed).permutation(n_groups)
    held = order[: min(max(1, round(val_fraction * n_groups)), n_groups - 1)]
    is_held = np.isin(group, held)
    return data.subset(np.flatnonzero(~is_held)), data.subset(np.flatnonzero(is_held))


def _say(verbose: bool, message: str) -> None:
    if verbose:
        print(message, flush=True)
