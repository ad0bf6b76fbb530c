"""Fit the DSPM-DE membrane Z = {r_p, Δx_e, ε_p, X_d} to measured rejections (paper eq. 11, Table 2).

    arg min_Z  Σ_i Σ_j [R_mod_ij(Z) − R_exp_ij]² / σ_ij²                        (eq. 11)

over every measured quantity i (ion or salt) and flux point j, by simulated annealing
(``scipy.optimize.dual_annealing``, no local search) followed by Nelder–Mead, both in a unit
box mapped to physical bounds (log scale for r_p, Δx_e and ε_p; linear for the signed X_d).
Residuals come from the data layer (:meth:`MeasuredArrays.normalized_residuals`); every
objective call solves all feeds with the batched DSPM-DE (one call per group of feeds that share
temperature and film). Intrinsic feeds are compared at the membrane surface (no film); observed
feeds need the film's mass-transfer coefficient in the column ``x_k_film_m_s`` (m/s).

Beyond Z, :func:`fit` can fit a composition-dependent charge (:class:`nanoutils.dspmde.ChargeIsotherm`,
chosen by name): ``isotherm="freundlich"`` adds the exponent n (linear), ``isotherm="langmuir"`` the
site density Γ and a binding constant K_i per ion of ``binding_ions`` (both log scale); the
``temperature_model`` is passed to :func:`nanoutils.dspmde.solve`. :class:`Spec` names the variant,
:class:`Model` is the fitted DSPM-DE (``FitResult.model``) that every function here accepts.

>>> from nanoutils import data, fitting
>>> result = fitting.fit(data.load_dataset("nf270_fdl2021"), anneal_maxiter=10, nm_maxiter=100)  # doctest: +SKIP
>>> result.table()                                                                            # doctest: +SKIP
>>> fitting.fit(data.load_dataset("nf270_fdl2021"), isotherm="langmuir", binding_ions=("Mg2+",),
...             temperature_model="stokes_einstein").model                                   # doctest: +SKIP
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from scipy.optimize import dual_annealing, minimize

from . import dspmde, ions
from .data import Measurements

PARAMETERS = ("r_p", "dx_e", "eps_p", "X_d")
UNITS = {"r_p": ("nm", 1e9), "dx_e": ("µm", 1e6), "eps_p": ("–", 1.0), "X_d": ("mol/m³", 1.0),
         "n": ("–", 1.0), "sites": ("mol/m³", 1.0), "K": ("m³/mol", 1.0)}
#: Physical bounds (SI): pores wider than the largest hydrated ion of the table but still NF; a
#: thickness from a thin active layer to a thick, tortuous one; ε_p between a strongly ordered
#: pore fluid and bulk water; charge from strongly negative to moderately positive.
BOUNDS: dict[str, tuple[float, float]] = {"r_p": (0.3e-9, 1.5e-9), "dx_e": (0.1e-6, 50e-6),
                                          "eps_p": (15.0, 78.54), "X_d": (-400.0, 200.0)}
#: Charge-isotherm parameters (SI), fitted only with ``fit(isotherm=...)``: the Freundlich exponent n of
#: X = X_d (I_f/I_ref)^n, from a charge falling as 1/I_f to one growing as I_f; the Langmuir site
#: density Γ ("sites", mol/m³ of pore volume), from practically none to a few mol/L (the carboxyl
#: content of polyamide), and binding constants K ("K[Mg2+]", m³/mol), from K c = 10⁻³ at 10 mol/m³ of
#: the binding ion (no binding) to half-occupied sites at 0.01 mol/m³.
ISOTHERM_BOUNDS: dict[str, tuple[float, float]] = {"n": (-1.0, 1.0), "sites": (1e-2, 5e3), "K": (1e-4, 1e2)}
#: Start of the isotherm parameters when ``start`` gives Z only: constant charge (n = 0) or a moderate
#: binding (Γ = 20 mol/m³, K = 0.05 m³/mol: ≈ 10 mol/m³ of charge from 10 mM of a divalent ion).
ISOTHERM_START = {"n": 0.0, "sites": 20.0, "K": 0.05}
LOG_SCALE = {"r_p": True, "dx_e": True, "eps_p": True, "X_d": False, "n": False, "sites": True, "K": True}
_LINEAR_SCALE = {"X_d": 100.0}  # θ = value / scale for the linear parameters (else 1)
#: Paper's Table 2 (NF270).
PAPER_TABLE2 = {"r_p": 0.51e-9, "dx_e": 1.27e-6, "eps_p": 43.56, "X_d": -51.23}
#: A measurement whose case does not converge counts as a rejection error of this size (the
#: full span of physically seen rejections, −1 to 1), divided by its σ.
PENALTY_R = 2.0
FILM_COLUMN = "x_k_film_m_s"
_OVERHEAD_CASES = 20  # one extra solve call costs about as much as this many cases


class FitError(ValueError):
    """Bad input to a fit (inverted bounds, empty data, missing film coefficient…); names the culprit."""


def _family(name: str) -> str:
    """The parameter family of a name: "K" for the binding constants "K[ion]", else the name."""
    return "K" if name.startswith("K[") else name


def check_bounds(bounds: Mapping[str, tuple[float, float]] | None, names: tuple[str, ...] = PARAMETERS
                 ) -> dict[str, tuple[float, float]]:
    """Validated bounds for the parameters ``names`` (defaults from :data:`BOUNDS`, :data:`ISOTHERM_BOUNDS`)."""
    out = {n: BOUNDS[n] if n in BOUNDS else ISOTHERM_BOUNDS[_family(n)] for n in names}
    for name, pair in (bounds or {}).items():
        if name not in names:
            raise FitError(f"unknown parameter {name!r} in bounds; parameters are {', '.join(names)}")
        out[name] = tuple(float(v) for v in pair)
    for name, (lo, hi) in out.items():
        if not (np.isfinite(lo) and np.isfinite(hi)) or not lo < hi:
            raise FitError(f"bounds of {name} must be finite with lower < upper, got ({lo!r}, {hi!r})")
        if LOG_SCALE[_family(name)] and lo <= 0:
            raise FitError(f"bounds of {name} must be > 0 (log scale), got ({lo!r}, {hi!r})")
    return out


class Space:
    """Map between physical parameters ``names`` and the unit box [0, 1]^len(names) the optimisers search."""

    def __init__(self, bounds: Mapping[str, tuple[float, float]] | None = None, names: tuple[str, ...] = PARAMETERS):
        self.names = tuple(names)
        self.bounds = check_bounds(bounds, self.names)
        lo, hi = (np.array([self._t(n, self.bounds[n][k]) for n in self.names]) for k in (0, 1))
        self.lo, self.span = lo, hi - lo

    @staticmethod
    def _t(name: str, value: float) -> float:
        return float(np.log(value)) if LOG_SCALE[_family(name)] else float(value) / _LINEAR_SCALE.get(name, 1.0)

    @staticmethod
    def _inv(name: str, t: float) -> float:
        return float(np.exp(t)) if LOG_SCALE[_family(name)] else float(t) * _LINEAR_SCALE.get(name, 1.0)

    def theta(self, params: Mapping[str, float]) -> np.ndarray:
        """Transformed coordinates θ (ln of r_p, Δx_e, ε_p, Γ, K_i; X_d/100 mol m⁻³; n)."""
        return np.array([self._t(n, params[n]) for n in self.names])

    def params(self, theta: np.ndarray) -> dict[str, float]:
        """Physical parameters (SI) from θ."""
        return {n: self._inv(n, t) for n, t in zip(self.names, theta)}

    def to_unit(self, params: Mapping[str, float]) -> np.ndarray:
        u = (self.theta(params) - self.lo) / self.span
        if np.any(u < 0) or np.any(u > 1):
            raise FitError(f"start {dict(params)} lies outside the bounds {self.bounds}")
        return u

    def to_unit_clipped(self, params: Mapping[str, float]) -> np.ndarray:
        return np.clip((self.theta(params) - self.lo) / self.span, 0.0, 1.0)

    def from_unit(self, u: np.ndarray) -> dict[str, float]:
        return self.params(self.lo + np.clip(u, 0.0, 1.0) * self.span)


def membrane(params: Mapping[str, float]) -> dspmde.Membrane:
    """A :class:`dspmde.Membrane` from a mapping with r_p (m), dx_e (m), eps_p, X_d (mol/m³)."""
    return dspmde.Membrane(**{n: float(params[n]) for n in PARAMETERS})


@dataclass(frozen=True)
class Model:
    """A DSPM-DE: ``membrane`` Z, charge ``isotherm`` (``None``: constant X_d) and ``temperature_model``
    (a key of :data:`dspmde.TEMPERATURE_MODELS`). :meth:`solve` is :func:`dspmde.solve` with them, so
    :class:`Objective`, :func:`predictions` and :func:`performance` take a Model as they take a Membrane."""

    membrane: dspmde.Membrane
    isotherm: dspmde.ChargeIsotherm | None = None
    temperature_model: str = "none"

    def solve(self, feeds, fluxes, **options) -> dspmde.Result:
        """:func:`dspmde.solve` of ``feeds`` at ``fluxes`` (m/s) with this membrane, isotherm and temperature model."""
        return dspmde.solve(feeds, fluxes, membrane=self.membrane, isotherm=self.isotherm,
                            temperature_model=self.temperature_model, **options)

    def charge(self, c_feed: np.ndarray, species: tuple[str, ...]) -> np.ndarray:
        """Membrane charge X (mol/m³) for feeds ``c_feed`` (…, d) in mol/m³ of ``species``, shape (…)."""
        return (self.isotherm or dspmde.ChargeIsotherm()).charge(self.membrane.X_d, c_feed, species)


@dataclass(frozen=True)
class Spec:
    """The DSPM-DE variant a fit adjusts: Z plus the parameters of the charge isotherm ``isotherm`` (a key
    of :data:`dspmde.ISOTHERMS`) — none for ``"constant"``; ``"n"`` for ``"freundlich"`` (X = X_d (I_f/I_ref)^n
    with I_ref = ``I_ref`` mol/m³, so X_d is the charge at I_f = I_ref); ``"sites"`` Γ (mol/m³) and
    ``"K[ion]"`` (m³/mol) for each of ``binding_ions`` for ``"langmuir"``. ``temperature_model`` is passed
    to :func:`dspmde.solve`. Bad names raise :class:`FitError` naming them."""

    isotherm: str = "constant"
    binding_ions: tuple[str, ...] = ()
    temperature_model: str = "none"
    I_ref: float = 10.0

    def __post_init__(self) -> None:
        if self.isotherm not in dspmde.ISOTHERMS:
            raise FitError(f"unknown isotherm {self.isotherm!r}; choose one of {', '.join(dspmde.ISOTHERMS)}")
        if self.temperature_model not in dspmde.TEMPERATURE_MODELS:
            raise FitError(f"unknown temperature_model {self.temperature_model!r}; "
                           f"choose one of {', '.join(dspmde.TEMPERATURE_MODELS)}")
        given = (self.binding_ions,) if isinstance(self.binding_ions, str) else tuple(self.binding_ions)
        try:
            binding = tuple(dict.fromkeys(ions.canonical(i) for i in given))
        except ions.UnknownIonError as err:
            raise FitError(f"binding_ions: {err}") from None
        if self.isotherm == "langmuir" and not binding:
            raise FitError("isotherm 'langmuir' needs at least one binding ion, e.g. binding_ions=('Mg2+',)")
        if self.isotherm != "langmuir" and binding:
            raise FitError(f"binding_ions {binding} apply to isotherm 'langmuir' only, not {self.isotherm!r}")
        object.__setattr__(self, "binding_ions", binding)

    @property
    def names(self) -> tuple[str, ...]:
        """The fitted parameters: :data:`PARAMETERS`, then the isotherm's."""
        extra = {"freundlich": ("n",), "langmuir": ("sites", *(f"K[{i}]" for i in self.binding_ions))}
        return PARAMETERS + extra.get(self.isotherm, ())

    def model(self, params: Mapping[str, float]) -> Model:
        """The :class:`Model` of physical parameters ``params`` (SI; keys :attr:`names`)."""
        if self.isotherm == "freundlich":
            iso = dspmde.ChargeIsotherm.freundlich(float(params["n"]), self.I_ref)
        elif self.isotherm == "langmuir":
            iso = dspmde.ChargeIsotherm.langmuir(float(params["sites"]),
                                                 {i: float(params[f"K[{i}]"]) for i in self.binding_ions})
        else:
            iso = None
        return Model(membrane(params), iso, self.temperature_model)


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
            raise FitError(f"expected nanoutils.data.Measurements, got {type(self.meas).__name__}")
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
                raise FitError(f"feed {key!r} has observed rejections but no single positive film mass-transfer "
                               f"coefficient in column {FILM_COLUMN!r} (m/s); the model needs it to compare")
            out.append(float(values.iloc[0]))
        return out

    def permeate(self, mem, fluxes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
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
                res = solve(a.c_feed[idx], union if fluxes is None else fluxes, species=a.species, temperature=T,
                            film=None if k is None else dspmde.Film(k=k), activity=self.activity, n_cells=self.n_cells)
            cols = where if fluxes is None else slice(None)
            rows = np.arange(len(idx))[:, None] if fluxes is None else slice(None)
            c_perm[idx] = res.permeate[rows, cols]
            converged[idx] = res.converged[rows, cols]
        return c_perm, converged

    def residuals(self, mem: dspmde.Membrane) -> tuple[np.ndarray, int]:
        """Normalised residuals (R_mod − R)/σ at every measurement (unconverged: ±PENALTY_R/σ) and the
        number of measurements whose case did not converge."""
        a = self.arrays
        c_perm, converged = self.permeate(mem)
        r = a.normalized_residuals(a.model_rejection(c_perm))
        bad = ~np.isfinite(r)
        r[bad] = PENALTY_R / a.sigma_R[a.mask][bad]
        return r, int(bad.sum())

    def chi2(self, mem: dspmde.Membrane) -> float:
        """The objective of eq. 11 for ``mem``; appended to :attr:`trace`."""
        r, n_bad = self.residuals(mem)
        value = float(r @ r)
        self.trace.append((self.phase, value, n_bad))
        return value

    def trace_frame(self) -> pd.DataFrame:
        """Every evaluation: index, phase, objective, running best, unconverged measurements."""
        t = pd.DataFrame(self.trace, columns=["phase", "objective", "unconverged"])
        t.insert(0, "evaluation", np.arange(1, len(t) + 1))
        t["best"] = t["objective"].cummin()
        return t


@dataclass(frozen=True)
class FitResult:
    """A fitted Z (and isotherm parameters, see :class:`Spec`): ``params`` (SI), standard errors ``stderr``
    (SI, from the Gauss–Newton Hessian scaled by the reduced χ²), ``covariance`` of θ (:meth:`Space.theta`:
    ln r_p, ln Δx_e, ln ε_p, X_d/100[, n | ln Γ, ln K_i]), ``chi2`` (eq. 11), ``n_points``, ``trace`` (every
    evaluation), ``n_unconverged`` at the optimum, ``start``, ``wall_s``, ``bounds`` and the ``spec``."""

    params: dict[str, float]
    stderr: dict[str, float]
    covariance: np.ndarray
    chi2: float
    n_points: int
    n_unconverged: int
    trace: pd.DataFrame
    start: dict[str, float]
    wall_s: float
    bounds: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(BOUNDS))
    spec: Spec = field(default_factory=Spec)

    @property
    def names(self) -> tuple[str, ...]:
        return self.spec.names

    @property
    def at_bounds(self) -> tuple[str, ...]:
        """Parameters that ended within 0.1 % (of the transformed range) of a bound: their standard
        errors are not meaningful and the data would pull them further out."""
        u = Space(self.bounds, self.names).to_unit_clipped(self.params)
        return tuple(n for n, v in zip(self.names, u) if v < 1e-3 or v > 1 - 1e-3)

    @property
    def membrane(self) -> dspmde.Membrane:
        return membrane(self.params)

    @property
    def model(self) -> Model:
        """The fitted DSPM-DE with its isotherm and temperature model (use it for predictions)."""
        return self.spec.model(self.params)

    @property
    def reduced_chi2(self) -> float:
        return self.chi2 / max(self.n_points - len(self.names), 1)

    @property
    def correlation(self) -> np.ndarray:
        s = np.sqrt(np.diag(self.covariance))
        return self.covariance / np.outer(s, s)

    def table(self) -> pd.DataFrame:
        """Fitted values and standard errors in display units (nm, µm, –, mol/m³, m³/mol) beside Table 2."""
        units = {n: UNITS[_family(n)] for n in self.names}
        return pd.DataFrame([{"parameter": n, "unit": unit, "fitted": self.params[n] * scale,
                              "stderr": self.stderr[n] * scale, "at bound": n in self.at_bounds,
                              "paper Table 2": PAPER_TABLE2.get(n, np.nan) * scale}
                             for n, (unit, scale) in units.items()]).set_index("parameter")


def uncertainty(objective: Objective, params: Mapping[str, float], space: Space, step: float = 1e-3,
                spec: Spec | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """Covariance of θ from central-difference residual Jacobians, cov = s² (JᵀJ)⁻¹ with
    s² = max(1, χ²/(n − p)) (inflated when the model does not fit to within σ), and standard errors
    of the physical parameters by the delta method. ``spec`` (default :class:`Spec`) builds the model."""
    model = (spec or Spec()).model
    theta = space.theta(params)
    cols = []
    for i in range(len(theta)):
        plus, minus = theta.copy(), theta.copy()
        plus[i] += step
        minus[i] -= step
        cols.append((objective.residuals(model(space.params(plus)))[0]
                     - objective.residuals(model(space.params(minus)))[0]) / (2 * step))
    jac = np.stack(cols, axis=1)
    r = objective.residuals(model(params))[0]
    s2 = max(1.0, float(r @ r) / max(len(r) - len(theta), 1))
    cov = s2 * np.linalg.pinv(jac.T @ jac)
    sd = np.sqrt(np.diag(cov))
    stderr = {n: float(params[n] * s) if LOG_SCALE[_family(n)] else float(_LINEAR_SCALE.get(n, 1.0) * s)
              for n, s in zip(space.names, sd)}
    return cov, stderr


def fit(meas: Measurements, *, bounds: Mapping[str, tuple[float, float]] | None = None,
        start: Mapping[str, float] | None = None, seed: int = 0, anneal_maxiter: int = 40,
        nm_maxiter: int = 400, activity: str | None = None, n_cells: int = 20,
        with_uncertainty: bool = True, isotherm: str = "constant", binding_ions: tuple[str, ...] = (),
        temperature_model: str = "none") -> FitResult:
    """Fit Z to ``meas`` by eq. 11: dual annealing (``anneal_maxiter`` iterations of 2 evaluations per
    parameter, seeded; 0 skips it) from ``start`` (default: a random point inside the bounds drawn with
    ``seed``), then bounded Nelder–Mead (``nm_maxiter`` iterations) from the best point found.

    ``isotherm`` (``"constant"``, ``"freundlich"`` or ``"langmuir"`` with ``binding_ions``) adds the charge
    isotherm's parameters (:class:`Spec`; bounds :data:`ISOTHERM_BOUNDS`, overridable by name in ``bounds``,
    e.g. ``"K[Mg2+]"``); a ``start`` with Z only takes :data:`ISOTHERM_START` for them. ``temperature_model``
    goes to :func:`dspmde.solve` (``"stokes_einstein"`` for data away from 25 °C)."""
    t0 = time.perf_counter()
    spec = Spec(isotherm, binding_ions, temperature_model)
    space = Space(bounds, spec.names)
    obj = Objective(meas, activity=activity, n_cells=n_cells)
    absent = [i for i in spec.binding_ions if i not in obj.arrays.species]
    if absent:
        raise FitError(f"binding ion(s) {', '.join(absent)} occur in no feed of the data "
                       f"(species: {', '.join(obj.arrays.species)})")
    if int(anneal_maxiter) < 0 or int(nm_maxiter) < 0:
        raise FitError(f"iteration budgets must be ≥ 0, got anneal_maxiter={anneal_maxiter}, nm_maxiter={nm_maxiter}")
    dim = len(space.names)
    if start is not None:
        start = {**{n: ISOTHERM_START[_family(n)] for n in spec.names[len(PARAMETERS):]}, **start}
    u0 = space.to_unit(start) if start is not None else np.random.default_rng(seed).uniform(0.0, 1.0, dim)

    def f(u: np.ndarray) -> float:
        return obj.chi2(spec.model(space.from_unit(u)))

    obj.phase = "start"
    best_u, best_f = u0, f(u0)
    if anneal_maxiter:
        obj.phase = "annealing"
        da = dual_annealing(f, [(0.0, 1.0)] * dim, maxiter=int(anneal_maxiter), rng=seed, x0=u0, no_local_search=True)
        if da.fun < best_f:
            best_u, best_f = da.x, da.fun
    if nm_maxiter:
        obj.phase = "nelder-mead"
        simplex = np.vstack([best_u] + [best_u + np.where(best_u[i] < 0.5, 0.05, -0.05) * np.eye(dim)[i]
                                        for i in range(dim)])
        nm = minimize(f, best_u, method="Nelder-Mead", bounds=[(0.0, 1.0)] * dim,
                      options={"maxiter": int(nm_maxiter), "initial_simplex": simplex, "xatol": 1e-6, "fatol": 1e-10})
        if nm.fun <= best_f:
            best_u, best_f = nm.x, nm.fun
    params = space.from_unit(best_u)
    obj.phase = "final"
    _, n_bad = obj.residuals(spec.model(params))
    if with_uncertainty:
        cov, stderr = uncertainty(obj, params, space, spec=spec)
    else:
        cov, stderr = np.full((dim, dim), np.nan), {n: float("nan") for n in space.names}
    return FitResult(params, stderr, cov, float(best_f), obj.n_points, n_bad, obj.trace_frame(),
                     space.from_unit(u0), time.perf_counter() - t0, space.bounds, spec)


def predictions(meas: Measurements, mem, *, activity: str | None = None) -> pd.DataFrame:
    """One row per measurement of ``mem`` (a Membrane, a :class:`Model` such as ``FitResult.model``, or any
    model with ``solve``, see :meth:`Objective.permeate`): feed_id (``study/feed``), study, ion (the measured
    quantity), Jv_um_s, R_meas, sigma_R, R_pred (NaN if unconverged), residual (R_pred − R_meas)/σ, converged —
    the frame :func:`nanoutils.metrics.rejection_error` scores."""
    obj = Objective(meas, activity=activity)
    a = obj.arrays
    c_perm, converged = obj.permeate(mem)
    R_pred = a.model_rejection(c_perm)
    n, m, q = np.nonzero(a.mask)
    frame = pd.DataFrame({"feed_id": np.asarray(a.feed_keys, dtype=object)[n],
                          "ion": np.asarray(a.quantities, dtype=object)[q], "Jv_um_s": a.Jv[n, m] * 1e6,
                          "R_meas": a.R[n, m, q], "sigma_R": a.sigma_R[n, m, q], "R_pred": R_pred[n, m, q],
                          "converged": converged[n, m]})
    frame.insert(1, "study", frame["feed_id"].str.split("/").str[0])
    frame["residual"] = (frame["R_pred"] - frame["R_meas"]) / frame["sigma_R"]
    return frame


def performance(meas: Measurements, membranes: Mapping[str, dspmde.Membrane | Model], *, activity: str | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean absolute rejection error (pp, :func:`nanoutils.metrics.rejection_error`) of each named
    membrane or :class:`Model` on ``meas``: (per feed with an "all" row and its 95 % feed-bootstrap
    interval, per ion)."""
    from .metrics import rejection_error

    by_feed, by_ion = {}, {}
    for label, mem in membranes.items():
        frame = predictions(meas, mem, activity=activity)
        if not frame["converged"].all():
            raise FitError(f"{label}: {int((~frame['converged']).sum())} measurements did not converge; cannot score")
        score = rejection_error(frame)
        per_feed = (100 * (frame["R_pred"] - frame["R_meas"]).abs()).groupby(frame["feed_id"]).mean()
        by_feed[label] = pd.concat([per_feed, pd.Series({"all": score.value,
                                                         "all, 95% CI": f"[{score.ci[0]:.1f}, {score.ci[1]:.1f}]"})])
        by_ion[label] = score.per_ion
    return pd.DataFrame(by_feed), pd.DataFrame(by_ion)


def table2(results: Mapping[str, FitResult]) -> pd.DataFrame:
    """Table 2: the paper's values beside each fit's value ± standard error, in display units; isotherm
    parameters (:class:`Spec`) follow Z, empty for the fits without them."""
    names = list(dict.fromkeys(n for res in results.values() for n in res.names)) if results else list(PARAMETERS)
    rows = []
    for n in names:
        unit, scale = UNITS[_family(n)]
        row = {"parameter": n, "unit": unit, "paper": PAPER_TABLE2.get(n, np.nan) * scale}
        for label, res in results.items():
            if n not in res.params:
                row[label], row[f"{label} ± σ"] = np.nan, ""
                continue
            row[label] = res.params[n] * scale
            row[f"{label} ± σ"] = res.stderr[n] * scale
            if n in res.at_bounds:
                row[f"{label} ± σ"] = f"at bound ({row[f'{label} ± σ']:.3g})"
        rows.append(row)
    return pd.DataFrame(rows)
