"""Feed compositions and flux grids for the simulated pre-training set (paper Section 2.2).

Compositions: each sample keeps a random subset of the ion table (``min_species``
to ``max_species`` ions, always at least one cation and one anion; the mask
records which). Concentrations come from a scrambled, seeded Sobol sequence
(one Sobol coordinate per species) mapped to log10 space over [c_min, c_max]
(default 0.1–1000 mol/m³). They are then made exactly electroneutral by this rule:

1. scale: with cation and anion charges P = Σ_cat z c and N = Σ_an |z| c, all
   cations are multiplied by √(N/P) and all anions by √(P/N), a shift in log
   space that meets at the geometric mean √(P N) and keeps the Sobol ratios
   within each side;
2. clip every ion to [c_min, c_max] (≈ 4 % of ions for the full table);
3. where clipping left a residual charge, both sides are brought to
   Q* = √(P N) (recomputed, and clipped to [c_min max(Z+, Z−), c_max min(Z+, Z−)],
   Z± = Σ |z| of a side, the range both sides can reach within the bounds):
   a side with too much charge has its largest ions capped at a common level T
   (Σ |z| min(c, T) = Q*), a side with too little has its smallest ions raised to
   a common floor L (Σ |z| max(c, L) = Q*).

Every step is closed form (the levels by sorting a piecewise-linear function), so
the result is deterministic for a seed, every ion stays in [c_min, c_max], and no
rejection loop is involved.

Flux grid: 0 < Jv ≤ J_MAX_M_S = 6e-5 m/s (216 LMH): the NF270 operating range with the highest fluxes
of the measured sets inside it (FdL 2021 reach 5.6e-5 m/s), so a trained model never extrapolates in flux.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import qmc

from . import ions, units

C_MIN_MOL_M3, C_MAX_MOL_M3 = 0.1, 1000.0
J_MAX_M_S = 6e-5  # = 216 LMH; models.FLUX_SCALE_M_S is the same value
_ABSENT = 1e300  # sorts after every concentration; its weight is 0


@dataclass(frozen=True)
class Compositions:
    """N feed compositions: concentration (N, d) mol/m³ (0 where absent), mask (N, d) bool, species names."""

    concentration: np.ndarray
    mask: np.ndarray
    species: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.concentration)

    def feeds(self) -> list[ions.Feed]:
        """The compositions as validated :class:`nanoutils.ions.Feed` objects."""
        return [
            ions.Feed({s: c for s, c, m in zip(self.species, row, mrow, strict=True) if m})
            for row, mrow in zip(self.concentration, self.mask, strict=True)
        ]


def sobol_compositions(
    n: int,
    *,
    seed: int = 0,
    species: Sequence[str] | None = None,
    c_min: float = C_MIN_MOL_M3,
    c_max: float = C_MAX_MOL_M3,
    min_species: int = 2,
    max_species: int | None = None,
) -> Compositions:
    """``n`` electroneutral feed compositions (mol/m³) over random subsets of ``species`` (default: the whole table).

    See the module docstring for the sampling and neutralisation rule.
    """
    names = tuple(ions.canonical(s) for s in (species or ions.species()))
    z = ions.charges(names)
    d = len(names)
    max_species = d if max_species is None else max_species
    if n < 1:
        raise ValueError(f"number of compositions must be ≥ 1, got {n}")
    if not 0 < c_min < c_max or not np.isfinite(c_max):
        raise ValueError(f"need 0 < c_min < c_max < ∞ (mol/m³), got c_min={c_min}, c_max={c_max}")
    if not (z > 0).any() or not (z < 0).any():
        raise ValueError(f"species {names} need at least one cation and one anion")
    if not 2 <= min_species <= max_species <= d:
        raise ValueError(f"need 2 ≤ min_species ≤ max_species ≤ {d}, got {min_species}, {max_species}")
    worst = max(z[z > 0].sum() / -z[z < 0].max(), -z[z < 0].sum() / z[z > 0].min())  # all of one side vs one ion
    if c_max / c_min < worst:
        raise ValueError(
            f"c_max/c_min = {c_max / c_min:g} < {worst:g}: some subsets of {names} "
            "cannot be made electroneutral within the bounds"
        )
    ss_sobol, ss_subset = np.random.SeedSequence(seed).spawn(2)
    x = _sobol(d, n, np.random.default_rng(ss_sobol))
    conc = 10.0 ** (np.log10(c_min) + x * (np.log10(c_max) - np.log10(c_min)))
    mask = _subsets(n, z, min_species, max_species, np.random.default_rng(ss_subset))
    conc = _neutralise(np.where(mask, conc, 0.0), mask, z, c_min, c_max)
    return Compositions(conc, mask, names)


def random_mixtures(
    n: int,
    rng: np.random.Generator,
    species: Sequence[str] | None = None,
    *,
    n_ions: tuple[int, int] | None = None,
    c_min: float = C_MIN_MOL_M3,
    c_max: float = C_MAX_MOL_M3,
) -> Compositions:
    """``n`` random electroneutral feeds (mol/m³) over ``species`` (default: the ion table), drawn from ``rng``.

    Each feed holds between ``n_ions[0]`` and ``n_ions[1]`` ions (default: all of ``species``): one random
    cation, one random anion and random others, each log-uniform in [c_min, c_max]; then the picked cation
    (net charge < 0) or anion (net charge > 0) is raised until Σ z c = 0, so it may end above c_max. For
    tests and demonstrations; the pre-training set uses :func:`sobol_compositions`.
    """
    names = tuple(ions.canonical(s) for s in (species or ions.species()))
    z = ions.charges(names)
    cations, anions = np.flatnonzero(z > 0), np.flatnonzero(z < 0)
    lo, hi = (len(names), len(names)) if n_ions is None else n_ions
    if not (len(cations) and len(anions)):
        raise ValueError(f"random mixtures need a cation and an anion among {names}")
    if not 2 <= lo <= hi <= len(names) or n < 1 or not 0 < c_min <= c_max:
        raise ValueError(
            f"need n ≥ 1, 2 ≤ n_ions[0] ≤ n_ions[1] ≤ {len(names)} and 0 < c_min ≤ c_max; "
            f"got n={n}, n_ions={n_ions}, c_min={c_min}, c_max={c_max}"
        )
    out = np.zeros((n, len(names)))
    for row in range(n):
        k = rng.integers(lo, hi + 1)
        picked = [rng.choice(cations), rng.choice(anions)]
        rest = np.setdiff1d(np.arange(len(names)), picked)
        chosen = np.concatenate([picked, rng.choice(rest, k - 2, replace=False)])
        out[row, chosen] = np.exp(rng.uniform(np.log(c_min), np.log(c_max), k))
        net = out[row] @ z
        fix = picked[1] if net > 0 else picked[0]
        out[row, fix] += abs(net) / abs(z[fix])
    return Compositions(out, out > 0, names)


def flux_grid(n: int, j_max: float = J_MAX_M_S, *, include_zero: bool = False) -> np.ndarray:
    """``n`` evenly spaced fluxes in m/s up to ``j_max`` (default 6e-5 m/s = 216 LMH), from ``j_max/n``
    (or 0 with ``include_zero``, where permeate = feed by construction)."""
    if n < 1 or not (np.isfinite(j_max) and j_max > 0):
        raise ValueError(f"need n ≥ 1 and 0 < j_max < ∞ m/s, got n={n}, j_max={j_max}")
    if j_max > 1e-3:
        raise ValueError(
            f"j_max = {j_max} m/s ({units.m_s_to_lmh(j_max):.3g} LMH) is not a nanofiltration flux; give m/s"
        )
    return np.linspace(0.0, j_max, n) if include_zero else np.linspace(j_max / n, j_max, n)


def label_with_dspmde(
    compositions: Compositions, fluxes: np.ndarray, membrane=None, **solver_options
) -> tuple[np.ndarray, np.ndarray]:
    """DSPM-DE permeate (N, M, d) mol/m³ and converged mask (N, M) for N compositions × M fluxes (m/s).

    A thin call to :func:`nanoutils.dspmde.solve` (``solver_options`` such as
    ``temperature`` in K or ``n_cells`` are passed on); unconverged points are kept and
    flagged here, and dropped (and counted) when the data set is assembled
    (:meth:`nanoutils.training_data.TransportData.from_labels`).
    """
    from . import dspmde

    fluxes = np.asarray(fluxes, dtype=float)
    result = dspmde.solve(
        compositions.concentration, fluxes, species=compositions.species, membrane=membrane, **solver_options
    )
    permeate, converged = np.asarray(result.permeate, dtype=float), np.asarray(result.converged, dtype=bool)
    n, m, d = len(compositions), len(fluxes), len(compositions.species)
    if permeate.shape != (n, m, d) or converged.shape != (n, m):
        raise RuntimeError(
            f"dspmde.solve returned shapes {permeate.shape}, {converged.shape}; expected {(n, m, d)}, {(n, m)}"
        )
    return permeate, converged


def _sobol(d: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """First n points of a scrambled Sobol sequence in [0, 1)^d (drawn as a power of two)."""
    key = "rng" if "rng" in inspect.signature(qmc.Sobol).parameters else "seed"  # scipy ≥ 1.15 renamed it
    sampler = qmc.Sobol(d, scramble=True, **{key: rng})
    return sampler.random_base2(max(0, int(np.ceil(np.log2(n)))))[:n]


def _subsets(n: int, z: np.ndarray, k_min: int, k_max: int, rng: np.random.Generator) -> np.ndarray:
    """(n, d) masks with k ∈ [k_min, k_max] species each, one cation and one anion always included."""
    keys = rng.random((n, len(z)))
    rows = np.arange(n)
    for sign, rank in ((1, -2.0), (-1, -1.0)):  # force the lowest-key cation and anion to be picked first
        side = np.where(np.sign(z) == sign, keys, np.inf)
        keys[rows, side.argmin(1)] = rank
    k = rng.integers(k_min, k_max + 1, size=n)
    return keys.argsort(1).argsort(1) < k[:, None]


def _neutralise(c: np.ndarray, mask: np.ndarray, z: np.ndarray, c_min: float, c_max: float) -> np.ndarray:
    """Scale, clip, then cap/floor cation and anion charge to a common Q* (module docstring)."""
    w = np.abs(z)[None, :] * mask
    cat, an = mask & (z > 0), mask & (z < 0)
    q = {s: (w * c * side).sum(1) for s, side in (("+", cat), ("-", an))}
    shift = np.sqrt(q["-"] / q["+"])[:, None]
    c = np.where(mask, np.clip(np.where(cat, c * shift, c / shift), c_min, c_max), 0.0)
    out = c.copy()
    q = {s: (w * c * side).sum(1) for s, side in (("+", cat), ("-", an))}
    big_z = {s: (w * side).sum(1) for s, side in (("+", cat), ("-", an))}
    lo = c_min * np.maximum(big_z["+"], big_z["-"])
    hi = c_max * np.minimum(big_z["+"], big_z["-"])
    target = np.clip(np.sqrt(q["+"] * q["-"]), lo, hi)
    for s, side in (("+", cat), ("-", an)):
        ws = w * side
        cap = q[s] > target
        level = np.where(
            cap, _level(np.where(side, c, _ABSENT), ws, target), -_level(np.where(side, -c, _ABSENT), ws, -target)
        )
        level = np.clip(level, c_min, c_max)[:, None]
        out = np.where(side & cap[:, None], np.minimum(c, level), out)
        out = np.where(side & ~cap[:, None] & (q[s] < target)[:, None], np.maximum(c, level), out)
    return out


def _level(c: np.ndarray, w: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per row, T with Σ w min(c, T) = target (entries with w = 0 sit at _ABSENT and do not count).

    f(T) = Σ w min(c, T) is piecewise linear and increasing; with c sorted, the
    segment is the first breakpoint c_k where f(c_k) ≥ target.
    """
    order = np.argsort(c, axis=1)
    cs, ws = np.take_along_axis(c, order, 1), np.take_along_axis(w, order, 1)
    cs = np.where(ws > 0, cs, 0.0)
    below = np.concatenate([np.zeros((len(c), 1)), np.cumsum(ws * cs, 1)[:, :-1]], 1)  # Σ_{i<k} w_i c_i
    above = ws[:, ::-1].cumsum(1)[:, ::-1]  # Σ_{i≥k} w_i
    f_at = below + cs * above
    n_present = (ws > 0).sum(1)
    k = np.minimum((f_at < target[:, None]).sum(1), n_present - 1)
    rows = np.arange(len(c))
    return (target - below[rows, k]) / above[rows, k]
