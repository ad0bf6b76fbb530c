"""Regression of SDEM ion permeances on measured rejections (eq. 11), with σ and correlations.

    arg min_θ  Σ_ij [R_mod_ij(θ) − R_exp_ij]² / σ_ij² + Σ_k (θ_k − ln P_k,prior)² / s_k²   (eq. 11 + prior)

θ = ln P_i (m/s) of every ion that occurs in the training feeds (``per_feed=True``: one per feed for
each ion not in ``shared``) and, with ``fit_exponent``, the exponent a of P_i ∝ c_eq^a. Residuals
come from :class:`nanoutils.fitting.Objective` (the data layer's normalised residuals, film layer for
observed feeds, penalty for unconverged cases). Optimiser: scipy's bounded trust-region-reflective
least squares from a start at P_i = D_i · 10³ m⁻¹ (the bulk diffusivity over a 1 mm "length") plus
``n_starts − 1`` seeded log-uniform starts in [10⁻⁸, 10⁻⁴] m/s. Uncertainty: the Gauss–Newton
covariance s² (JᵀJ)⁻¹ at the optimum, J the forward-difference Jacobian of the residuals in θ and
s² = max(1, χ²/(n − p)); parameters within 0.1 % of the θ range from a bound are flagged (their σ is
not meaningful).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from .. import ions
from ..fitting import FitError, Objective
from ..measurements import Measurements
from ._model import C_REF, SDEMModel

#: Bounds of the fitted quantities: ion permeance P (m/s) and the concentration exponent a (–).
BOUNDS: dict[str, tuple[float, float]] = {"P": (1e-11, 1e-3), "exponent": (-3.0, 3.0)}
#: Cells across the layer in the fit (the solve's default is finer; the difference in R is ≤ 3e-3 on the
#: FdL feeds, below the σ floor of 0.02, and halves the fit time).
FIT_CELLS = 20
_START_PER_METRE = 1e3  # fixed start P_i = D_i · 10³ m⁻¹ (≈ 1.3 µm/s for Na⁺)
_RANDOM_P = (1e-8, 1e-4)  # range of the random starts (m/s)


@dataclass(frozen=True)
class SDEMFit:
    """A fitted SDEM: ``models`` feed key → :class:`SDEMModel` (all the same model unless ``per_feed``),
    ``names`` of θ (``P[ion]``, ``P[ion]@feed``, ``a``), ``theta`` and its ``covariance``, ``chi2`` (eq. 11,
    data only), ``n_points``, ``n_unconverged`` measurements at the optimum, ``at_bounds`` (parameters
    that ended at a bound), ``starts`` (objective reached from each start), ``trace``, ``wall_s``."""

    models: dict[str, SDEMModel]
    per_feed: bool
    names: tuple[str, ...]
    theta: np.ndarray
    covariance: np.ndarray
    chi2: float
    n_points: int
    n_unconverged: int
    at_bounds: tuple[str, ...]
    starts: list[float]
    trace: pd.DataFrame
    wall_s: float

    @property
    def model(self) -> SDEMModel:
        """The one fitted model (transfer form); a per-feed fit has no single model."""
        if self.per_feed:
            raise FitError("a per-feed SDEM fit has one model per feed: use .models[feed_key]")
        return next(iter(self.models.values()))

    @property
    def stderr(self) -> np.ndarray:
        """Standard errors of θ (ln P: relative errors of P; a: absolute)."""
        return np.sqrt(np.abs(np.diag(self.covariance)))

    @property
    def correlation(self) -> pd.DataFrame:
        """Correlation matrix of θ (identifiability: |ρ| near 1 means only a combination is fitted)."""
        s = self.stderr
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = self.covariance / np.outer(s, s)
        return pd.DataFrame(rho, index=self.names, columns=self.names)

    @property
    def reduced_chi2(self) -> float:
        return self.chi2 / max(self.n_points - len(self.names), 1)

    def table(self) -> pd.DataFrame:
        """Fitted values in display units (P in µm/s, with σ by the delta method), and the bound flags."""
        rows = []
        for name, t, s in zip(self.names, self.theta, self.stderr, strict=True):
            if name == "a":
                rows.append((name, "–", t, s, name in self.at_bounds))
            else:
                p = 1e6 * float(np.exp(t))
                rows.append((name, "µm/s", p, p * s, name in self.at_bounds))
        columns = ["parameter", "unit", "fitted", "stderr", "at bound"]
        return pd.DataFrame(rows, columns=columns).set_index("parameter")


class _Space:
    """θ ↔ per-feed :class:`SDEMModel` for the feeds ``feeds`` (key → ions present)."""

    def __init__(
        self,
        feeds: dict[str, tuple[str, ...]],
        per_feed: bool,
        shared: Sequence[str],
        fit_exponent: bool,
        exponent: float,
        c_ref: float,
        fallback: str | None,
    ):
        self.feeds, self.per_feed, self.fit_exponent, self.exponent = feeds, per_feed, fit_exponent, exponent
        self.c_ref, self.fallback = c_ref, fallback
        every = tuple(s for s in ions.species() if any(s in f for f in feeds.values()))
        extra = [s for s in ions.species() if s in tuple(shared) and s not in every]
        if extra:
            raise FitError(f"shared ion(s) {extra} occur in no training feed; feeds hold {list(every)}")
        self.slots: dict[tuple[str, str], int] = {}  # (feed key, ion) → index into θ
        names: list[str] = []
        for ion in every:
            own = per_feed and ion not in shared
            for key, present in feeds.items():
                if ion not in present:
                    continue
                label = f"P[{ion}]@{key}" if own else f"P[{ion}]"
                if label not in names:
                    names.append(label)
                self.slots[(key, ion)] = names.index(label)
        self.ions_of = [n[2 : n.index("]")] for n in names]
        if fit_exponent:
            names.append("a")
        self.names = tuple(names)
        n_p = len(self.ions_of)
        lo_p, hi_p = np.log(BOUNDS["P"])
        self.lo = np.array([lo_p] * n_p + ([BOUNDS["exponent"][0]] if fit_exponent else []))
        self.hi = np.array([hi_p] * n_p + ([BOUNDS["exponent"][1]] if fit_exponent else []))

    def models(self, theta: np.ndarray) -> dict[str, SDEMModel]:
        a = float(theta[-1]) if self.fit_exponent else self.exponent

        def model(pairs) -> SDEMModel:
            return SDEMModel(
                {ion: float(np.exp(theta[i])) for ion, i in pairs}, exponent=a, c_ref=self.c_ref, fallback=self.fallback
            )

        if not self.per_feed:  # one model with every ion, the same for all feeds
            one = model(zip(self.ions_of, range(len(self.ions_of)), strict=True))
            return dict.fromkeys(self.feeds, one)
        return {key: model((ion, self.slots[(key, ion)]) for ion in present) for key, present in self.feeds.items()}

    def start(self) -> np.ndarray:
        p = [np.log(_START_PER_METRE * ions.get(ion).diffusivity) for ion in self.ions_of]
        return np.clip(np.array(p + ([self.exponent] if self.fit_exponent else [])), self.lo, self.hi)

    def random(self, rng: np.random.Generator) -> np.ndarray:
        lo, hi = np.log(_RANDOM_P)
        p = rng.uniform(lo, hi, size=len(self.ions_of))
        return np.concatenate([p, rng.uniform(-1.0, 1.0, 1) if self.fit_exponent else []])

    def at_bounds(self, theta: np.ndarray) -> tuple[str, ...]:
        u = (theta - self.lo) / (self.hi - self.lo)
        return tuple(n for n, v in zip(self.names, u, strict=True) if v < 1e-3 or v > 1 - 1e-3)


def _check_prior(prior: Mapping[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]]:
    out = {}
    for name, value in (prior or {}).items():
        try:
            centre, width = (float(v) for v in value)
        except (TypeError, ValueError):
            raise FitError(f"prior[{name!r}] must be (P m/s, σ of ln P), got {value!r}") from None
        if not (np.isfinite(centre) and centre > 0 and np.isfinite(width) and width > 0):
            raise FitError(f"prior[{name!r}] must have P > 0 and σ > 0, got {value!r}")
        out[ions.canonical(name)] = (np.log(centre), width)
    return out


def fit(
    meas: Measurements,
    *,
    per_feed: bool = False,
    shared: Sequence[str] = (),
    prior: Mapping[str, tuple[float, float]] | None = None,
    fit_exponent: bool = False,
    exponent: float = 0.0,
    c_ref: float = C_REF,
    fallback: str | None = None,
    n_starts: int = 3,
    max_nfev: int = 100,
    seed: int = 0,
    n_cells: int = FIT_CELLS,
) -> SDEMFit:
    """Fit SDEM permeances to ``meas`` (a training split) by eq. 11 (module docstring for the method).

    ``per_feed``: one permeance per ion and feed (reproduces per-feed fits such as the source paper's),
    except the ions in ``shared``, which keep one value for all feeds; ``per_feed=False`` (default) fits
    one set for all feeds, the form that transfers to a feed not measured (``shared`` is then moot).
    ``prior``: ion → (P m/s, σ of ln P), a Gaussian prior added to eq. 11 for every permeance of that ion.
    ``fit_exponent``: also fit a of P_i ∝ (c_eq/``c_ref``)^a (otherwise a = ``exponent``); ``fallback`` is
    stored in the models."""
    t0 = time.perf_counter()
    if not isinstance(n_starts, int) or n_starts < 1:
        raise FitError(f"n_starts must be an integer ≥ 1, got {n_starts!r}")
    if not isinstance(max_nfev, int) or max_nfev < 1:
        raise FitError(f"max_nfev must be an integer ≥ 1, got {max_nfev!r}")
    if not isinstance(meas, Measurements) or len(meas) == 0:
        raise FitError(f"expected non-empty nanoutils.measurements.Measurements, got {meas!r}")
    priors = _check_prior(prior)
    shared = tuple(ions.canonical(s) for s in shared)
    keys = meas.feed_keys
    if per_feed and not shared and not fit_exponent and len(keys) > 1:  # independent problems: fit one by one
        return _combine(
            [
                fit(
                    meas.subset([k]),
                    per_feed=True,
                    prior=prior,
                    exponent=exponent,
                    c_ref=c_ref,
                    fallback=fallback,
                    n_starts=n_starts,
                    max_nfev=max_nfev,
                    seed=seed,
                    n_cells=n_cells,
                )
                for k in keys
            ],
            t0,
        )
    feeds = {k: tuple(s for s, c in meas.feeds[k].items() if c > 0) for k in keys}
    space = _Space(feeds, per_feed, shared, fit_exponent, exponent, c_ref, fallback)
    objectives = (
        {k: Objective(meas.subset([k]), n_cells=n_cells) for k in keys}
        if per_feed
        else {None: Objective(meas, n_cells=n_cells)}
    )
    prior_rows = [(i, *priors[ion]) for i, ion in enumerate(space.ions_of) if ion in priors]
    trace: list[tuple[str, float, int]] = []
    phase = ["start 0"]

    def data_residuals(theta: np.ndarray) -> tuple[np.ndarray, int]:
        models = space.models(theta)
        parts = [obj.residuals(models[k] if k is not None else models[keys[0]]) for k, obj in objectives.items()]
        return np.concatenate([p[0] for p in parts]), sum(p[1] for p in parts)

    def residuals(theta: np.ndarray) -> np.ndarray:
        r, n_bad = data_residuals(theta)
        r = np.concatenate([r, [(theta[i] - c) / w for i, c, w in prior_rows]])
        trace.append((phase[0], float(r @ r), n_bad))
        return r

    rng = np.random.default_rng(seed)
    starts = [space.start()] + [np.clip(space.random(rng), space.lo, space.hi) for _ in range(n_starts - 1)]
    sols = []
    for i, th in enumerate(starts):
        phase[0] = f"start {i}"
        sols.append(
            least_squares(residuals, th, bounds=(space.lo, space.hi), method="trf", diff_step=1e-5, max_nfev=max_nfev)
        )
    reached = [2.0 * float(sol.cost) for sol in sols]
    best = min(sols, key=lambda sol: sol.cost)  # the first of equal ones
    r, n_bad = data_residuals(best.x)
    chi2 = float(r @ r)
    n_points = sum(obj.n_points for obj in objectives.values())
    s2 = max(1.0, 2.0 * float(best.cost) / max(len(best.fun) - len(best.x), 1))
    cov = s2 * np.linalg.pinv(best.jac.T @ best.jac)
    frame = pd.DataFrame(trace, columns=["phase", "objective", "unconverged"])
    frame.insert(0, "evaluation", np.arange(1, len(frame) + 1))
    frame["best"] = frame["objective"].cummin()
    return SDEMFit(
        space.models(best.x),
        per_feed,
        space.names,
        best.x,
        cov,
        chi2,
        n_points,
        n_bad,
        space.at_bounds(best.x),
        reached,
        frame,
        time.perf_counter() - t0,
    )


def _combine(fits: list[SDEMFit], t0: float) -> SDEMFit:
    """Independent per-feed fits as one: block-diagonal covariance, summed χ², traces one after another."""
    names = tuple(n for f in fits for n in f.names)
    cov = np.zeros((len(names), len(names)))
    i = 0
    for f in fits:
        k = len(f.names)
        cov[i : i + k, i : i + k] = f.covariance
        i += k
    trace = pd.concat(
        [f.trace.assign(phase=f"{next(iter(f.models))}: " + f.trace["phase"]) for f in fits], ignore_index=True
    )
    trace["evaluation"] = np.arange(1, len(trace) + 1)
    trace["best"] = np.nan  # objectives of different feeds: a running best across them means nothing
    return SDEMFit(
        {k: m for f in fits for k, m in f.models.items()},
        True,
        names,
        np.concatenate([f.theta for f in fits]),
        cov,
        sum(f.chi2 for f in fits),
        sum(f.n_points for f in fits),
        sum(f.n_unconverged for f in fits),
        tuple(n for f in fits for n in f.at_bounds),
        [sum(v) for v in zip(*(f.starts for f in fits), strict=True)],
        trace,
        time.perf_counter() - t0,
    )
